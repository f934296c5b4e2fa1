"""The README documents exactly what exists: every config key, CLI command and metric, and
nothing that is gone.

- Configuration: the block between the config-reference markers is what `python -m
  monitor.config.docs` generates from the schema now; a `section.key` path named anywhere else in
  the README (in backticks) must be a real key.
- Commands: every command of `monitor` (walked from `monitor.cli.main.build_parser()`, e.g.
  `monitor silence add`) is mentioned in the README's "Commands" section, and every
  `monitor ...` mention there names a command that exists.
- Metrics: every name in `monitor.ops.metrics.METRIC_NAMES` is in the README, and every
  `monitor_...` metric name in the README is one of them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from monitor.cli.main import build_parser
from monitor.config.docs import END, START, config_keys, config_reference_markdown
from monitor.config.settings import Settings
from monitor.ops import metrics

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The body of the `## title` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        pytest.fail(f"README.md has no '## {title}' section")
    return match.group(1)


# --- the command tree ------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse has no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def command_paths(parser: argparse.ArgumentParser, prefix: str = "monitor") -> list[str]:
    """Every runnable command, e.g. `monitor silence add` (groups like `monitor silence` are not)."""
    children = subcommands(parser)
    if not children:
        return [prefix]
    paths = []
    for name, child in children.items():
        paths += command_paths(child, f"{prefix} {name}")
    return paths


def resolve(words: list[str]) -> tuple[str, str | None]:
    """Walk `monitor w1 w2 ...` down the parser: (command path, problem or None).

    A word that is not a subcommand ends the path when the command takes arguments; where
    only a subcommand can follow (`monitor`, `monitor silence`), it is a command that is gone.
    """
    parser, path = build_parser(), "monitor"
    for word in words:
        if word.startswith(("-", "[", "<", "$")) or not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            break
        children = subcommands(parser)
        if word in children:
            parser, path = children[word], f"{path} {word}"
            continue
        if children:
            return path, f"`{path} {word}`: no such command (choose from {', '.join(children)})"
        break
    if subcommands(parser):
        return path, f"`{path}` needs a subcommand ({', '.join(subcommands(parser))})"
    return path, None


def mentions(text: str) -> list[list[str]]:
    """`monitor ...` in inline code and at the start of lines in fenced blocks, as word lists."""
    found = []
    for span in INLINE.findall(FENCE.sub("", text)):
        if span.startswith("monitor "):
            found.append(span.split()[1:])
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith(("monitor ", ".venv/bin/monitor ")):
                found.append(line.split("#")[0].split()[1:])
    return found


def test_the_command_tree_is_walked_to_the_leaves() -> None:
    paths = command_paths(build_parser())
    assert {"monitor run", "monitor silence add", "monitor db upgrade", "monitor status"} <= set(paths)
    assert "monitor silence" not in paths


def test_every_command_is_in_the_commands_section() -> None:
    commands = section(readme(), "Commands")
    documented = {resolve(words)[0] for words in mentions(commands)}
    missing = [path for path in command_paths(build_parser()) if path not in documented]
    assert missing == [], f"document these in README.md's Commands section: {missing}"


def test_no_documented_command_is_gone() -> None:
    problems = [problem for words in mentions(readme()) if (problem := resolve(words)[1])]
    assert problems == []


def test_a_stale_command_mention_would_be_caught() -> None:
    assert resolve(["frobnicate"])[1] is not None
    assert resolve(["silence", "mute"])[1] is not None
    assert resolve(["check", "feeds.yaml"]) == ("monitor check", None)
    assert resolve(["sources", "test", "ID"]) == ("monitor sources test", None)


# --- configuration -----------------------------------------------------------------------------


def test_readme_holds_the_current_generated_config_reference() -> None:
    text = readme()
    start, end = text.find(START), text.find(END)
    assert 0 <= start < end, "README.md needs the config-reference markers"
    block = text[start + len(START) : end].strip("\n")
    assert block == config_reference_markdown().strip("\n"), "run `python -m monitor.config.docs` and commit README.md"


def test_every_key_is_in_the_readme() -> None:
    text = readme()
    missing = [key.path for key in config_keys() if f"| `{key.path}` |" not in text]
    assert missing == []


def test_key_paths_named_in_prose_exist() -> None:
    text = FENCE.sub("", readme())
    start, end = text.find(START), text.find(END)
    prose = text[:start] + text[end:]
    sections = "|".join(Settings.model_fields)
    named = {
        span
        for span in INLINE.findall(prose)
        if re.fullmatch(rf"(?:{sections})(?:\[\])?\.[a-z_]+(?:(?:\[\])?\.[a-z_]+)*", span)
        and not re.search(r"\.(py|ya?ml|md|json|toml|db)$", span)  # file names such as slack.py
    }
    known = {key.path for key in config_keys()}
    assert named, "expected the README to name some keys, e.g. `server.enabled`"
    assert sorted(named - known) == []


# --- metrics ----------------------------------------------------------------------------------


def test_every_metric_is_documented() -> None:
    text = readme()
    missing = [name for name in metrics.METRIC_NAMES if f"`{name}`" not in text]
    assert missing == [], "list these in README.md's Metrics section"


def test_no_documented_metric_is_gone() -> None:
    named = set(re.findall(r"\bmonitor_[a-z_]+[a-z]", readme()))
    suffixes = ("_bucket", "_sum", "_count")
    gone = sorted(
        name for name in named
        if name not in metrics.METRIC_NAMES
        and not any(name.endswith(s) and name.removesuffix(s) in metrics.METRIC_NAMES for s in suffixes)
    )
    assert gone == []
