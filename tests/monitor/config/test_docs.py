"""The generated configuration reference documents every key the schema accepts."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from monitor.config.docs import END, START, config_reference_markdown, update_readme
from monitor.config.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def schema_paths(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Key paths walked independently of monitor.config.docs, so a bug there cannot hide a key."""
    paths = []
    for name, field in model.model_fields.items():
        path = prefix + name
        paths.append(path)
        inner = field.annotation
        for _ in range(3):  # unwrap `X | None` and `tuple[X, ...]`
            args = [
                arg
                for arg in typing.get_args(inner)
                if arg is not type(None) and arg is not Ellipsis
            ]
            if len(args) == 1:
                is_list = typing.get_origin(inner) is tuple
                inner = args[0]
                if is_list:
                    path += "[]"
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            paths += schema_paths(inner, path + ".")
    return paths


def row_of(markdown: str, path: str) -> list[str]:
    for line in markdown.splitlines():
        if line.startswith(f"| `{path}` |"):
            return [cell.strip() for cell in line.strip("|").split(" | ")]
    raise AssertionError(f"no row for {path}")


def test_every_settings_key_path_is_in_the_reference() -> None:
    markdown = config_reference_markdown()
    paths = schema_paths()
    assert "sources[].selectors.item" in paths and "topics[].impact.signals[].weight" in paths
    missing = [path for path in paths if f"| `{path}` |" not in markdown]
    assert missing == []


def test_every_key_has_help_text() -> None:
    markdown = config_reference_markdown()
    undocumented = [path for path in schema_paths() if not row_of(markdown, path)[3]]
    assert undocumented == [], "add description= to these fields in monitor/config/settings.py"


def test_rows_show_type_and_default_as_an_operator_writes_them() -> None:
    markdown = config_reference_markdown()
    assert row_of(markdown, "defaults.interval")[1:3] == ["duration", "`15m`"]
    assert row_of(markdown, "http.max_body")[1:3] == ["size", "`10MB`"]
    assert row_of(markdown, "sources[].id")[1:3] == ["string", "required"]
    assert row_of(markdown, "sources[].kind")[1:3] == ["`feed` \\| `page`", "`feed`"]
    assert row_of(markdown, "store.url")[2] == "`sqlite:///monitor.db`"
    assert row_of(markdown, "server.enabled")[1:3] == ["boolean", "`false`"]
    assert "#### `sources`" in markdown and "#### `slack`" in markdown


def test_update_readme_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Title\n\nBefore.\n\n{START}\nstale table\n{END}\n\nAfter.\n", encoding="utf-8"
    )
    assert update_readme(readme) is True
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nBefore.\n\n")
    assert text.endswith(f"{END}\n\nAfter.\n")
    assert "stale table" not in text
    assert config_reference_markdown() in text
    assert update_readme(readme) is False  # a second run changes nothing


def test_update_readme_without_markers_says_what_to_add(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n", encoding="utf-8")
    with pytest.raises(ValueError, match="add the markers"):
        update_readme(readme)
    assert readme.read_text(encoding="utf-8") == "# Title\n"


def test_python_dash_m_monitor_docs_check_and_update(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n", encoding="utf-8")
    command = [sys.executable, "-m", "monitor.config.docs"]
    check = subprocess.run(
        [*command, "--check", str(readme)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert check.returncode == 1 and "out of date" in check.stdout
    assert (
        subprocess.run(
            [*command, str(readme)], capture_output=True, cwd=ROOT, check=False
        ).returncode
        == 0
    )
    check = subprocess.run(
        [*command, "--check", str(readme)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert check.returncode == 0, check.stdout


def test_project_readme_reference_is_current() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    if START not in text:
        pytest.skip("README.md has no config-reference markers yet")
    block = text[text.index(START) + len(START) : text.index(END)]
    assert block == "\n" + config_reference_markdown(), "run: python -m monitor.config.docs"
