"""`monitor check [FILE]`: validate a feeds.yaml and print what it will do.

Problems go to stderr as `file:line: key.path: message` and the exit code is 1; a valid file
prints its sources (with when each runs next, read from the store when one exists), topics,
routes and digests.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.clock import format_utc
from monitor.config.load import SQLITE_URL, ConfigError, load_settings, plural
from monitor.config.settings import Settings, format_duration
from monitor.config.sources import EffectiveSource, effective_source

log = logging.getLogger(__name__)


def summary_lines(
    settings: Settings,
    path: str | Path,
    now: datetime,
    next_runs: Mapping[str, datetime] | None = None,
) -> list[str]:
    """What `monitor check` prints for a valid file: counts, sources with next run, topics, routes, digests."""
    sources = [effective_source(settings, source) for source in settings.sources]
    enabled = sum(source.enabled for source in sources)
    lines = [
        f"{path}: OK — {plural(len(sources), 'source')} ({enabled} enabled), {plural(len(settings.topics), 'topic')}, "
        f"{plural(len(settings.routes), 'route')}, {plural(len(settings.digests), 'digest')}",
        f"store: {settings.store.url}",
        f"slack: {_slack_mode(settings)}",
        "",
        "sources:",
    ]
    rows = [_source_row(source, now, next_runs) for source in sources]
    lines += _table(["id", "kind", "tier", "interval", "next run"], rows)
    lines += ["", "topics:"]
    lines += [
        f"  {t.id}: {t.name} — any {len(t.rules.any)}, all {len(t.rules.all)}, none {len(t.rules.none)} terms; alert at {t.min_sources} independent sources"
        for t in settings.topics
    ]
    lines += ["", "routes:"]
    lines += [f"  {_route_line(route)}" for route in settings.routes] or [
        "  (none: alerts go nowhere but the log)"
    ]
    if settings.digests:
        lines += ["", "digests:"]
        lines += [
            f"  {d.id}: '{d.cron}' {d.timezone} → {d.channel}, next {_next_cron(d.cron, d.timezone, now)}"
            for d in settings.digests
        ]
    return lines




def _slack_mode(settings: Settings) -> str:
    # Never print the token itself: only which delivery mode it selects.
    if settings.slack.token:
        return f"bot token set (chat.postMessage via {settings.slack.base_url})"
    if settings.slack.webhook_url:
        return "incoming webhook set (no updates or threads)"
    return "not configured: alerts are printed to the console"


def _source_row(
    source: EffectiveSource, now: datetime, next_runs: Mapping[str, datetime] | None
) -> list[str]:
    interval = f"every {format_duration(source.interval)}"
    if not source.enabled:
        when = "disabled"
    elif next_runs is not None and source.id in next_runs:
        when = _when(next_runs[source.id], now)
    else:
        when = "at start"
    return [source.id, source.kind, source.tier, interval, when]


def _when(moment: datetime, now: datetime) -> str:
    delta = moment - now
    stamp = format_utc(moment)
    if delta <= timedelta(0):
        return f"{stamp} (due now)"
    if delta >= timedelta(minutes=1):
        delta -= timedelta(seconds=delta.seconds % 60)  # minutes are precise enough here
    return f"{stamp} (in {format_duration(delta)})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _route_line(route: Any) -> str:
    text = f"{route.topic} → {route.channel}"
    if route.oncall_channel:
        text += f"; impact ≥ {route.oncall_threshold} also → {route.oncall_channel}"
    if route.quiet_hours:
        quiet = route.quiet_hours
        text += f"; quiet {quiet.start}–{quiet.end} {quiet.timezone}"
    return text


def _next_cron(expression: str, timezone: str, now: datetime) -> str:
    from zoneinfo import ZoneInfo

    from croniter import croniter

    local = now.astimezone(ZoneInfo(timezone))
    moment = croniter(expression, local).get_next(datetime)
    return _when(moment, now)


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register `check [FILE]` on the `monitor` command's subparsers."""
    parser = subparsers.add_parser("check", help="validate a config file and print what it will do")
    parser.add_argument(
        "file", nargs="?", default=None, help="config file (default: --config, else feeds.yaml)"
    )
    # `handler` is what monitor.cli.main dispatches on; `func` is the usual argparse idiom.
    parser.set_defaults(handler=cmd_check, func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the file: problems to stderr and 1, or the summary to stdout and 0."""
    path = getattr(args, "file", None) or getattr(args, "config", None) or "feeds.yaml"
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {plural(len(exc.problems), 'problem')}", file=sys.stderr)
        return 1
    next_runs = _stored_next_runs(settings)
    print("\n".join(summary_lines(settings, path, datetime.now(UTC), next_runs)))
    return 0


def _stored_next_runs(settings: Settings) -> dict[str, datetime] | None:
    """Next runs recorded by a monitor that used this store, when it is an existing SQLite file.

    Best effort and read-only: `check` must work before the first run and never create,
    migrate or wait on a database, so PostgreSQL and missing files give None ("at start").
    """
    match = SQLITE_URL.match(settings.store.url)
    if not match or not Path(match.group(2).partition("?")[0]).is_file():
        return None
    try:
        from monitor.store import sources
        from monitor.store.db import Store

        store = Store.open(settings.store.url)
        try:
            with store.engine.connect() as conn:
                health = sources.load_all_health(conn)
        finally:
            store.engine.dispose()
    except Exception as exc:  # an old schema or a locked file: the summary still helps
        log.debug("no stored next runs: %s", exc)
        return None
    return {key: value.next_due for key, value in health.items() if value.next_due is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m monitor.cli.check [FILE]`: the same as `monitor check [FILE]`."""
    parser = argparse.ArgumentParser(prog="python -m monitor.cli.check")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check", *(sys.argv[1:] if argv is None else argv)])
    return cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
