"""`monitor db upgrade | current | copy`: the store's migrations, and moving it to another
database. The store takes a URL; the URL comes from `--url`, or from the feeds.yaml of
`--config` (read here, so the store never reads the configuration).

    python -m monitor.cli.db copy --to postgresql+psycopg://monitor:PW@db/monitor
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from monitor.config.load import ConfigError, load_settings, resolve_store_url
from monitor.store import Store
from monitor.store.copy import CopyError, copy_database
from monitor.store.db import first_line


def add_commands(subparsers: Any) -> None:
    """Register `db upgrade` and `db current` on the `monitor` command's subparsers."""
    db = subparsers.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    for name, handler, help_text in (
        ("upgrade", cmd_db_upgrade, "apply database migrations up to the newest"),
        ("current", cmd_db_current, "show the applied and the newest migration"),
    ):
        sub = db_commands.add_parser(name, help=help_text)
        # SUPPRESS: a --config given before `db` (on the main parser) is not overwritten.
        sub.add_argument("--config", default=argparse.SUPPRESS, help="feeds.yaml to read")
        sub.add_argument("--url", help="database URL; overrides the config file's store")
        sub.set_defaults(handler=handler)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    store = _store_from_args(args)
    try:
        before = store.current_revision()
        store.upgrade()
        after = store.current_revision()
    except SQLAlchemyError as exc:
        print(f"{store.url}: cannot upgrade: {first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if before == after:
        print(f"{store.url}: already at {after}")
    else:
        print(f"{store.url}: upgraded {before or '(empty)'} -> {after}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    store = _store_from_args(args)
    try:
        current, head = store.current_revision(), store.head_revision()
    except SQLAlchemyError as exc:
        print(f"{store.url}: cannot read the revision: {first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    status = "up to date" if current == head else "needs `monitor db upgrade`"
    print(f"{store.url}: at {current or '(empty)'}, newest {head} ({status})")
    return 0 if current == head else 1


def _store_from_args(args: argparse.Namespace) -> Store:
    url = getattr(args, "url", None)
    if not url:
        config_path = Path(getattr(args, "config", None) or "feeds.yaml")
        url = resolve_store_url(load_settings(config_path), config_path)
    return Store.open(str(url))


def add_copy_command(subparsers: Any) -> None:
    """Add `copy` to the `monitor db` group (after `add_commands`)."""
    db = subparsers.choices.get("db")
    if db is None:
        return
    group = next(a for a in db._actions if isinstance(a, argparse._SubParsersAction))
    copy = group.add_parser("copy", help="copy the store into an empty database (e.g. SQLite to PostgreSQL); stop the monitor first")
    copy.add_argument("--to", required=True, metavar="URL", help="target database URL")
    copy.add_argument("--from", dest="source", metavar="URL", help="source database URL (default: the store of --config)")
    copy.set_defaults(handler=lambda args: run(args.source, args.to, args.config))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m monitor.cli.db copy|upgrade|current ...`: `monitor db ...` on its own."""
    from monitor.cli.main import main as monitor

    return monitor(["db", *(sys.argv[1:] if argv is None else argv)])


def run(source_url: str | None, target_url: str, config: str) -> int:
    if source_url is None:
        try:
            source_url = resolve_store_url(load_settings(config), config)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 1
    source, target = Store.open(source_url), Store.open(target_url)
    try:
        counts = copy_database(source, target)
    except CopyError as exc:
        print(f"not copied: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a driver error: say which side and why, without a traceback
        print(f"not copied: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        source.close()
        target.close()
    print(f"copied {source.url} -> {target.url}")
    for name, rows in counts.items():
        print(f"  {name:<14} {rows:>10} rows")
    print("now point store.url (or MONITOR_STORE_URL) at the new database and start the monitor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
