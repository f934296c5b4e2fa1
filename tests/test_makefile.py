"""The README's quickstart runs `make run`: its command line must be one the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from monitor.cli.main import build_parser

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def recipe(target: str) -> list[str]:
    text = MAKEFILE.read_text()
    match = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE)
    assert match, f"no '{target}' target in the Makefile"
    for line in match.group(1).splitlines():
        words = shlex.split(line.strip().replace("$(CONFIG)", "feeds.yaml"))
        if words and words[0].endswith("/monitor"):
            return words[1:]
    raise AssertionError(f"'{target}' does not run the monitor command")


@pytest.mark.parametrize("target", ["run", "check", "demo"])
def test_make_targets_call_the_cli_with_arguments_it_accepts(target: str) -> None:
    args = build_parser().parse_args(recipe(target))
    assert args.command == target
    assert getattr(args, "config", "feeds.yaml") == "feeds.yaml"
