"""The README's configuration reference, generated from the schema in `monitor.config.settings`.

Every key's type, default and help text come from the pydantic models, so the reference cannot
drift from what `load_settings` accepts. The README holds the generated block between

    <!-- config-reference:start -->
    <!-- config-reference:end -->

`python -m monitor.config.docs` rewrites that block in README.md; `python -m monitor.config.docs --check`
exits 1 when it is out of date (for CI), without writing.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from monitor.config.settings import Settings, format_duration, parse_size

__all__ = ["START", "END", "ConfigKey", "config_keys", "config_reference_markdown", "update_readme"]

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", timedelta: "duration"}


class ConfigKey(typing.NamedTuple):
    """One documented key: `sources[].interval`, its type, default and help text."""

    path: str
    type: str
    default: str
    help: str


def config_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[ConfigKey]:
    """Every key path of the schema, depth first, in declaration order."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested, is_list = _nested_model(field.annotation)
        yield ConfigKey(path, _type_name(field), _default(field, nested), field.description or "")
        if nested is not None:
            yield from config_keys(nested, f"{path}[]." if is_list else f"{path}.")


def config_reference_markdown() -> str:
    """One markdown table per top-level section of feeds.yaml."""
    lines = [
        "<!-- Generated from monitor/config/settings.py by `python -m monitor.config.docs`; edit the schema, not this block. -->",
        "",
        "Durations are written like `45s`, `10m`, `1h30m`, `2d`; sizes like `10MB` or `512KiB`. "
        "String values may use `${VAR}` or `${VAR:-default}` from the environment. "
        "`[]` in a key path marks a list item.",
    ]
    for name, field in Settings.model_fields.items():
        lines += [
            "",
            f"#### `{name}`",
            "",
            field.description or "",
            "",
            "| Key | Type | Default | Description |",
            "|---|---|---|---|",
        ]
        keys = [
            key
            for key in config_keys()
            if key.path == name or key.path.startswith((f"{name}.", f"{name}[]"))
        ]
        lines += [_row(key) for key in keys]
    return "\n".join(lines) + "\n"


def update_readme(path: str | Path) -> bool:
    """Rewrite the block between the markers in `path`; True when the file changed."""
    readme = Path(path)
    text = readme.read_text(encoding="utf-8")
    new = _with_reference(text, readme)
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True


def _with_reference(text: str, readme: Path) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(
            f"{readme}: add the markers {START} and {END} where the configuration reference goes"
        )
    return f"{text[: start + len(START)]}\n{config_reference_markdown()}{text[end:]}"


# ------------------------------------------------------------------------- rendering


def _row(key: ConfigKey) -> str:
    cells = (f"`{key.path}`", key.type, key.default, key.help)
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model, is_list) when the key holds a mapping or a list of mappings."""
    inner, _ = _strip_optional(annotation)
    is_list = typing.get_origin(inner) is tuple
    if is_list:
        inner = typing.get_args(inner)[0]
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner, is_list
    return None, False


def _type_name(field: FieldInfo) -> str:
    annotation, optional = _strip_optional(field.annotation)
    name = _describe_type(annotation, field.metadata)
    return f"{name}, optional" if optional and field.default is None else name


def _describe_type(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _describe_type(base, extra)
    if origin is typing.Literal:
        return " | ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin is tuple:
        return f"list of {_plural(_describe_type(typing.get_args(annotation)[0]))}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    if annotation is int and any(getattr(item, "func", None) is parse_size for item in metadata):
        return "size"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(name: str) -> str:
    return name if "`" in name else f"{name}s"


def _default(field: FieldInfo, nested: type[BaseModel] | None) -> str:
    if field.default_factory is not None:
        return "see below" if nested is not None else _show(field.default_factory())  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "—"
    if _describe_type(*_annotation_and_metadata(field)) == "size":
        return _show_size(field.default)
    return _show(field.default)


def _annotation_and_metadata(field: FieldInfo) -> tuple[Any, Sequence[Any]]:
    annotation, _ = _strip_optional(field.annotation)
    return annotation, field.metadata


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(str(item) for item in value) + "]`"
    return f"`{value}`"


def _show_size(value: int) -> str:
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if value >= size and value % size == 0:
            return f"`{value // size}{unit}`"
    return f"`{value}`"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.config.docs",
        description="Regenerate the README's configuration reference.",
    )
    parser.add_argument(
        "readme", nargs="?", default=str(Path(__file__).resolve().parents[2] / "README.md")
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the block is out of date; do not write"
    )
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    try:
        if args.check:
            text = readme.read_text(encoding="utf-8")
            current = _with_reference(text, readme) == text
            print(
                f"{readme}: configuration reference is {'up to date' if current else 'out of date: run python -m monitor.config.docs'}"
            )
            return 0 if current else 1
        changed = update_readme(readme)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{readme}: configuration reference {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
