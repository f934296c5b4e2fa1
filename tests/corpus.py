"""Where the evaluation corpora are, for every test that reads them.

The corpora (`../shared/corpus` beside the repository on our build machines, or
`MONITOR_CORPUS_DIR`) are real data nobody on this project wrote, so they are not in the
repository. A clone from the project's public home has no `../shared`: tests that need the
corpora skip there and say why. CI has them and sets `MONITOR_REQUIRE_CORPUS=1`, which turns
that skip into a failure, so a gate can never go quiet because the data went missing.

    path = corpus_file("clusters", "ecbplus.jsonl")     # skips (or fails in CI) if absent
    @pytest.mark.parametrize("path", corpus_params("feeds", collect=feed_files))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

CORPUS_ENV = "MONITOR_CORPUS_DIR"
REQUIRE_ENV = "MONITOR_REQUIRE_CORPUS"
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_root() -> Path:
    """The corpora folder: `$MONITOR_CORPUS_DIR`, else `../shared/corpus` beside the repo."""
    configured = os.environ.get(CORPUS_ENV)
    return Path(configured).expanduser() if configured else DEFAULT


def required() -> bool:
    """Whether a missing corpus is a failure (CI) rather than a skip (a public clone)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def missing_reason(path: Path) -> str:
    return f"corpus not found at {path}: the evaluation gates need it (set {CORPUS_ENV})"


def corpus_path(*parts: str) -> Path:
    """A file or folder of the corpora; skips the test, or fails it under CI, when absent."""
    path = corpus_root().joinpath(*parts)
    if not path.exists():
        if required():
            pytest.fail(f"{missing_reason(path)}; {REQUIRE_ENV} is set", pytrace=False)
        pytest.skip(missing_reason(path))
    return path


def corpus_params(*parts: str, collect: Callable[[Path], Sequence[Any]]) -> list[Any]:
    """Parameters for a test over a corpus folder, built at collection time.

    With the folder absent, one parameter marked `corpus_missing`: `conftest.py` skips it
    (or, under CI, fails it) with the reason, so the report says what is missing instead of
    silently collecting nothing.
    """
    path = corpus_root().joinpath(*parts)
    if path.exists():
        return list(collect(path))
    return [pytest.param(None, marks=pytest.mark.corpus_missing(missing_reason(path)), id="missing")]


def check_missing_marker(item: pytest.Item) -> None:
    """Skip or fail (under CI) a test parameter that stands for an absent corpus."""
    marker = item.get_closest_marker("corpus_missing")
    if marker is None:
        return
    reason = str(marker.args[0])
    if required():
        pytest.fail(f"{reason}; {REQUIRE_ENV} is set", pytrace=False)
    pytest.skip(reason)
