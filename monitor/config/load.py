"""feeds.yaml → validated, frozen `Settings`; every problem named by file:line and key path.

Loading is one parse: PyYAML composes the node tree (which knows the line of every key and
list item) and constructs the plain data from that same tree. `${VAR}` and `${VAR:-default}`
in string values are replaced from the environment, pydantic validates, and a few checks that
need the whole file follow (duplicate ids, routes and sources naming unknown topics). Each
error becomes a `ConfigProblem`, so an operator reads

    feeds.yaml:12: sources[2].interval: invalid duration '10x': use a number and a unit ...

A relative SQLite path in `store.url` is taken relative to the config file's directory, not the
working directory, so `monitor run --config /etc/monitor/feeds.yaml` finds the same database
wherever it is started from.

Public API: `load_settings`, `ConfigProblem`, `ConfigError`, `resolve_store_url`,
`format_key_path`. Sources with their inherited values are in `monitor.config.sources`, the
reloading holder in `monitor.config.holder`, `monitor check` in `monitor.cli.check`.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.config.settings import Settings

__all__ = ["ConfigError", "ConfigProblem", "format_key_path", "load_settings", "plural", "resolve_store_url"]

log = logging.getLogger(__name__)

Loc = tuple[str | int, ...]

# Values that are secrets: never echoed in a message, and "unset" means "not configured".
_SECRET_PATHS: frozenset[Loc] = frozenset({("slack", "token"), ("slack", "webhook_url")})

# Keys earlier versions accepted, and what to do instead (a clearer line than "unknown key").
REMOVED_KEYS = {
    "act_threshold": "nothing read it; on-call alerts follow routes[].oncall_threshold, so delete it",
}

# A billion-laughs alias bomb must not expand into memory (a real file has a few thousand values).
_MAX_NODES = 200_000


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, at a line and key path."""

    file: str
    line: int | None
    key_path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = ": ".join(part for part in (where, self.key_path, self.message) if part)
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(Exception):
    """A config file that cannot be used; `problems` lists every reason, in file order."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def format_key_path(loc: Sequence[str | int]) -> str:
    """('sources', 2, 'interval') → 'sources[2].interval'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# --------------------------------------------------------------------------------- loading


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate and validate a config file; raise `ConfigError` listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [ConfigProblem(file, None, "", f"cannot read the file: {_os_reason(exc)}")]
        ) from None
    return settings_from_text(text, file, env, path=path)


def settings_from_text(
    text: str, file: str, env: Mapping[str, str] | None = None, *, path: str | Path | None = None
) -> Settings:
    """`load_settings` for a file's text (the distributed mode keeps the leader's file in the
    store: each process interpolates its own environment, so no secret is stored there)."""
    env = os.environ if env is None else env
    data, lines = _parse_yaml(text, file)
    located = _Located(file, lines)
    data = _interpolate(data, (), env, located)
    if located.problems:
        raise ConfigError(located.sorted())
    _cross_check(data, located)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            located.add(*_describe_error(error))
    if located.problems:
        raise ConfigError(located.sorted())
    store = settings.store.model_copy(update={"url": resolve_store_url(settings, path if path is not None else file)})
    return settings.model_copy(update={"store": store})


def _os_reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"not UTF-8 text ({exc})"


class _Located:
    """Collects problems, turning a key location into the line it was written on."""

    def __init__(self, file: str, lines: Mapping[Loc, int]) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[ConfigProblem] = []

    def line_of(self, loc: Loc) -> int | None:
        # A missing key has no line of its own: point at the closest enclosing one.
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def add(self, loc: Loc, message: str, hint: str = "") -> None:
        self.problems.append(
            ConfigProblem(self.file, self.line_of(loc), format_key_path(loc), message, hint)
        )

    def sorted(self) -> list[ConfigProblem]:
        return sorted(self.problems, key=lambda p: (p.line or 0, p.key_path))


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: only true/false are booleans, no base-60 numbers.

    YAML 1.1 reads `name: Off` as False, `country: NO` as False and `start: 07:30` as 450;
    an operator means the text. Strings such as "no" still become False where the schema wants
    a boolean, because pydantic accepts them there.
    """


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _parse_yaml(text: str, file: str) -> tuple[dict[str, Any], dict[Loc, int]]:
    """Parse once: the node tree gives lines, the same tree gives the data (safe types only)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, file)]) from None
    except RecursionError:
        raise ConfigError(
            [ConfigProblem(file, None, "", "the file is nested too deeply")]
        ) from None
    finally:
        loader.dispose()
    if root is None or data is None:
        raise ConfigError(
            [ConfigProblem(file, 1, "", "the file is empty", "start from the bundled feeds.yaml")]
        )
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    root.start_mark.line + 1,
                    "",
                    f"expected a mapping of keys at the top level, got {_kind(data)}",
                )
            ]
        )
    problems: list[ConfigProblem] = []
    lines = _line_map(root, file, problems)
    if problems:
        raise ConfigError(problems)
    return data, lines


def _yaml_problem(exc: yaml.YAMLError, file: str) -> ConfigProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    message = f"invalid YAML: {problem}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        message += f" ({context} at line {context_mark.line + 1})"
    return ConfigProblem(file, mark.line + 1 if mark else None, "", message)


def _line_map(root: Node, file: str, problems: list[ConfigProblem]) -> dict[Loc, int]:
    """Line (1-based) of every mapping key and sequence item, by key location.

    Each node is walked once: a key reached only through an alias reports the alias's line.
    A self-referencing alias and an alias bomb are refused here, before anything expands them.
    """
    lines: dict[Loc, int] = {(): root.start_mark.line + 1}
    sizes: dict[int, int] = {}

    def walk(node: Node, loc: Loc, ancestors: frozenset[int]) -> int:
        size = 1
        for child_loc, line, child in _children(node, loc):
            if child_loc in lines and isinstance(node, MappingNode):
                # PyYAML silently keeps the last of two equal keys; an operator would not expect that.
                message = f"duplicate key '{child_loc[-1]}' (first at line {lines[child_loc]})"
                problems.append(ConfigProblem(file, line, format_key_path(child_loc), message))
                continue
            lines[child_loc] = line
            if id(child) in ancestors:
                raise _Refused(
                    ConfigProblem(
                        file,
                        line,
                        format_key_path(child_loc),
                        "an alias refers to the value that contains it",
                    )
                )
            if id(child) not in sizes:
                sizes[id(child)] = walk(child, child_loc, ancestors | {id(child)})
            size += sizes[id(child)]
            if size > _MAX_NODES:
                raise _Refused(
                    ConfigProblem(
                        file,
                        line,
                        format_key_path(child_loc),
                        f"aliases expand this file to more than {_MAX_NODES} values",
                    )
                )
        return size

    try:
        walk(root, (), frozenset({id(root)}))
    except _Refused as refused:
        problems.append(refused.problem)
    except RecursionError:
        problems.append(ConfigProblem(file, None, "", "the file is nested too deeply"))
    return lines


class _Refused(Exception):
    def __init__(self, problem: ConfigProblem) -> None:
        self.problem = problem


def _children(node: Node, loc: Loc) -> Iterator[tuple[Loc, int, Node]]:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value != "<<":
                yield (*loc, key_node.value), key_node.start_mark.line + 1, value_node
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield (*loc, index), item.start_mark.line + 1, item


# ----------------------------------------------------------------------- env interpolation

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Unset(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _interpolate(value: Any, loc: Loc, env: Mapping[str, str], located: _Located) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string value; `$$` is a literal `$`."""
    if isinstance(value, dict):
        return {key: _interpolate(item, (*loc, key), env, located) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, (*loc, index), env, located) for index, item in enumerate(value)]
    if loc in _SECRET_PATHS and isinstance(value, str) and value and "${" not in value:
        # Not an error (a local experiment may do it), but a file is copied, committed and mounted.
        where = f"{located.file}:{located.line_of(loc)}: {format_key_path(loc)}"
        log.warning(
            "%s: a secret written in the file; use ${SLACK_BOT_TOKEN} and the environment", where
        )
    if not isinstance(value, str) or "$" not in value:
        return value
    try:
        result = _VAR.sub(lambda match: _lookup(match, env), value)
    except _Unset as unset:
        if loc in _SECRET_PATHS:
            return None  # no token in the environment: alerts go to the console
        located.add(
            loc,
            f"environment variable '{unset.name}' is not set",
            f"set it, or give a default: ${{{unset.name}:-value}}",
        )
        return value
    if loc in _SECRET_PATHS and not result:
        return None
    return result


def _lookup(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    name, default = match.group(1), match.group(2)
    if name in env:
        return env[name]
    if default is not None:
        return default
    raise _Unset(name)


# ------------------------------------------------------------------- validation messages

_TYPE_NOUNS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
}


def _describe_error(error: Mapping[str, Any]) -> tuple[Loc, str, str]:
    """A pydantic error → (location, message, hint) in the words an operator reads."""
    loc: Loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    shown = "" if loc[:2] in _SECRET_PATHS else f", got {_show(value)}"
    if kind == "extra_forbidden":
        removed = REMOVED_KEYS.get(str(loc[-1]))
        if removed:
            return loc, f"'{loc[-1]}' is no longer a setting: {removed}", ""
        return loc, f"unknown key '{loc[-1]}'", _key_hint(loc)
    if kind == "missing":
        return loc, "required key is missing", ""
    if kind in ("value_error", "assertion_error"):
        return loc, str(error["ctx"]["error"]), _value_hint(loc, value)
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", error["ctx"]["expected"])
        return (
            loc,
            f"invalid value {_show(value)}: expected one of {', '.join(options)}",
            _closest(value, options),
        )
    if kind == "string_pattern_mismatch":
        return loc, _pattern_message(str(error["ctx"]["pattern"]), value), ""
    if kind in _TYPE_NOUNS:
        return loc, f"expected {_TYPE_NOUNS[kind]}{shown}", ""
    message = (
        str(error["msg"]).replace("Input should be", "must be").replace("String should", "must")
    )
    return loc, f"{message[:1].lower()}{message[1:]}{shown}", ""


def _pattern_message(pattern: str, value: object) -> str:
    if pattern.startswith("^[a-z0-9]"):
        return f"invalid id {_show(value)}: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
    if r"\d{2}:\d{2}" in pattern:
        return f"invalid time {_show(value)}: use HH:MM, e.g. 07:30"
    return f"invalid value {_show(value)}: must match {pattern}"


def _value_hint(loc: Loc, value: object) -> str:
    if (
        loc[-1:] == ("url",)
        and isinstance(value, str)
        and value.lower().startswith(("file:", "ftp:"))
    ):
        return "sources are fetched over HTTP; local files and FTP are never read"
    return ""


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _kind(value: object) -> str:
    names: dict[type, str] = {list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _closest(word: object, options: Sequence[str]) -> str:
    matches = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""


def _key_hint(loc: Loc) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    names = list(model.model_fields)
    return _closest(loc[-1], names) or f"valid keys: {', '.join(names)}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model whose fields are valid at `loc`, following the schema's annotations."""
    current: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue  # list items: the item type was unwrapped with the field
        if (
            not (isinstance(current, type) and issubclass(current, BaseModel))
            or part not in current.model_fields
        ):
            return None
        current = _unwrap(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """X | None, tuple[X, ...], Annotated[X, ...] → X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        elif origin in (tuple, list, typing.Annotated):
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


# ------------------------------------------------------------------------- cross checks


def _cross_check(data: Mapping[str, Any], located: _Located) -> None:
    """Checks that need the whole file: ids are unique, every topic reference exists.

    Runs on the raw data, beside pydantic, so one `monitor check` reports every problem.
    """
    for section, what in (("sources", "source"), ("topics", "topic"), ("digests", "digest")):
        _unique(located, what, _values(data, section, "id"))
    topics = [topic for _, topic in _values(data, "topics", "id")]
    for loc, topic in _values(data, "routes", "topic"):
        _known_topic(located, loc, topic, topics)
    for section in ("sources", "digests"):
        for loc, names in _values(data, section, "topics"):
            for position, topic in enumerate(names if isinstance(names, list) else []):
                _known_topic(located, (*loc, position), topic, topics)


def _values(data: Mapping[str, Any], section: str, key: str) -> list[tuple[Loc, Any]]:
    """(location, value) of `key` in each item of the list `section`, where present."""
    items = data.get(section)
    if not isinstance(items, list):
        return []
    return [
        ((section, index, key), item[key])
        for index, item in enumerate(items)
        if isinstance(item, dict) and key in item
    ]


def _unique(located: _Located, what: str, values: Sequence[tuple[Loc, Any]]) -> None:
    first: dict[str, Loc] = {}
    for loc, ident in values:
        if not isinstance(ident, str):
            continue  # pydantic reports the wrong type
        if ident in first:
            located.add(
                loc,
                f"duplicate {what} id '{ident}' (first defined at line {located.line_of(first[ident])})",
            )
        else:
            first[ident] = loc


def _known_topic(located: _Located, loc: Loc, topic: object, topics: Sequence[str]) -> None:
    if not isinstance(topic, str) or topic in topics:
        return
    hint = _closest(topic, topics) or (
        f"known topics: {', '.join(topics)}" if topics else "no topics are defined"
    )
    located.add(loc, f"unknown topic '{topic}'", hint)


# ------------------------------------------------------------------------------ store url

SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?):///(.*)$")


def resolve_store_url(settings: Settings, config_path: str | Path) -> str:
    """`sqlite:///monitor.db` → an absolute path next to the config file; other URLs unchanged.

    Idempotent: an absolute SQLite path, `:memory:` and non-SQLite URLs are returned as they are.
    """
    url = settings.store.url
    match = SQLITE_URL.match(url)
    if not match:
        return url
    scheme, rest = match.groups()
    path, sep, query = rest.partition("?")
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).is_absolute():
        return url
    absolute = (Path(config_path).resolve().parent / path).resolve()
    return f"{scheme}:///{absolute}{sep}{query}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
