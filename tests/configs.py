"""feeds.yaml files for tests that watch one source: a SQLite store beside the test, no
jitter, no article pacing, and one topic that keeps "Entity List" stories."""

from __future__ import annotations

from pathlib import Path


def write_one_source_config(
    tmp_path: Path,
    url: str,
    *,
    source_id: str,
    name: str,
    source_lines: str = "    allow_private: true\n",
    http_lines: str = "",
    extra: str = "",
) -> Path:
    """Write tmp_path/feeds.yaml; the *_lines arguments are indented YAML added to the source
    and to `http`, `extra` is top-level YAML added at the end."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"""store:
  url: sqlite:///{tmp_path / "monitor.db"}
http:
  deadline: 5s
  article_min_interval: 0s
{http_lines}defaults:
  jitter: 0s
sources:
  - id: {source_id}
    name: {name}
    url: {url}
{source_lines}topics:
  - id: ai
    name: AI export controls
    rules:
      any: ["Entity List"]
{extra}""",
        encoding="utf-8",
    )
    return path
