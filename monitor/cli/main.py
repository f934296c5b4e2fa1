"""The `monitor` command. Each subcommand is a thin handler; the work lives in the modules.

Handlers return an exit code. Expected failures (a broken feeds.yaml, an unreachable store)
print one clear message and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from monitor.config.load import ConfigError
from monitor.run.roles import DistributedError

DEFAULT_CONFIG = os.environ.get("MONITOR_CONFIG", "feeds.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch news feeds and tell Slack when a development is corroborated by independent sources.",
    )
    parser.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="path to feeds.yaml (default: %(default)s, or $MONITOR_CONFIG)")
    parser.add_argument(
        "--log-level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default=os.environ.get("MONITOR_LOG_LEVEL", "INFO").upper(), help="(default: %(default)s, or $MONITOR_LOG_LEVEL)",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("MONITOR_LOG_FORMAT", "text"), help="log format (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in command_modules():
        register(sub)
    accept_config_anywhere(sub)
    return parser


def accept_config_anywhere(sub: argparse._SubParsersAction) -> None:
    """`monitor run --config X` works as well as `monitor --config X run`.

    SUPPRESS as the default keeps a --config given before the command from being reset.
    """
    for command in set(sub.choices.values()):
        if not any("--config" in action.option_strings for action in command._actions):
            command.add_argument("--config", "-c", default=argparse.SUPPRESS, help="path to feeds.yaml (as before the command)")
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                accept_config_anywhere(action)


def command_modules() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Every module that contributes subcommands; the order is the order of `monitor --help`."""
    from monitor.cli import alerts as alert_commands
    from monitor.cli import check, commands, db

    return [commands.add_commands, check.add_commands, db.add_commands, db.add_copy_command, alert_commands.add_commands]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from monitor.ops.logs import configure_logging

    configure_logging(args.log_level, args.log_format)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        result = handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except DistributedError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        # An unreachable or broken database: one line an operator can act on.
        print(f"store error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main"]
_log = logging.getLogger(__name__)
