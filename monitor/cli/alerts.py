"""`monitor silence add|list|remove` and `monitor digest`: thin handlers over the store.

Each handler reads `args.config` (the global `--config`), opens the store (migrating it, as
every command that touches the store does) and returns an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.clock import format_utc, utc_now
from monitor.config.settings import parse_duration

log = logging.getLogger(__name__)


def add_commands(subparsers: Any) -> None:
    """Register `silence` (add, list, remove) and `digest` on the `monitor` subparsers."""
    _add_silence_commands(subparsers)
    digest = subparsers.add_parser("digest", help="show (or post) a digest of a recent period")
    digest.add_argument("--since", default="24h", type=_duration, help="period length, ending now (default: %(default)s)")
    digest.add_argument("--digest", dest="digest_id", metavar="ID", help="use this configured digest's channel, topics and sections (default: the first)")
    digest.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output format (default: %(default)s)")
    digest.add_argument("--post", action="store_true", help="also post it to the digest's Slack channel (through the outbox)")
    digest.set_defaults(handler=cmd_digest)


def _add_silence_commands(subparsers: Any) -> None:
    silence = subparsers.add_parser("silence", help="mute alerts by topic, development, source or headline text")
    sub = silence.add_subparsers(dest="silence_command", metavar="COMMAND", required=True)

    add = sub.add_parser("add", help="add a silence (silenced alerts are recorded, not posted)")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--topic", help="topic id")
    what.add_argument("--development", type=int, help="development id")
    what.add_argument("--source", help="source id: alerts triggered only by this source's articles")
    what.add_argument("--match", metavar="TEXT", help="text in the headline (case-insensitive)")
    add.add_argument("--for", dest="duration", default="24h", type=_duration, help="how long (default: %(default)s)")
    add.add_argument("--reason", required=True, help="why; shown in `silence list` and on every silenced alert")
    add.set_defaults(handler=cmd_silence_add)

    listing = sub.add_parser("list", help="list active silences")
    listing.add_argument("--all", action="store_true", help="include expired and removed silences")
    listing.set_defaults(handler=cmd_silence_list)

    remove = sub.add_parser("remove", help="end a silence now")
    remove.add_argument("id", type=int, help="silence id (see `silence list`)")
    remove.set_defaults(handler=cmd_silence_remove)


def _duration(text: str) -> Any:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if value.total_seconds() <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return value


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """(settings, store) for a handler; the store is closed on the way out."""
    from monitor.config.load import load_settings, resolve_store_url
    from monitor.store.db import Store

    path = Path(getattr(args, "config", None) or "feeds.yaml")
    settings = load_settings(path)
    store = Store.open(resolve_store_url(settings, path))
    try:
        store.upgrade()
        yield settings, store
    finally:
        store.close()


# --- silence --------------------------------------------------------------------------


def _matcher(args: argparse.Namespace) -> tuple[str, str]:
    for matcher in ("topic", "development", "source", "match"):
        value = getattr(args, matcher, None)
        if value is not None:
            return matcher, str(value)
    raise ValueError("one of --topic, --development, --source, --match is required")


def cmd_silence_add(args: argparse.Namespace) -> int:
    from monitor.store.silences import add_silence

    matcher, value = _matcher(args)
    now = utc_now()
    with _opened(args) as (settings, store):
        if matcher == "topic" and value not in {t.id for t in settings.topics}:
            print(f"note: no topic {value!r} in {args.config}; the silence is added anyway", file=sys.stderr)
        try:
            with store.transaction() as conn:
                silence_id = add_silence(conn, matcher, value, args.reason, now, now + args.duration)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"silence #{silence_id}: {matcher}={value} until {_when(now + args.duration)} ({args.reason})")
    return 0


def cmd_silence_list(args: argparse.Namespace) -> int:
    from monitor.store.silences import list_silences

    with _opened(args) as (_settings, store), store.connect() as conn:
        rows = list_silences(conn, utc_now(), include_expired=args.all)
    if not rows:
        print("no silences" if args.all else "no active silences")
        return 0
    table = [["ID", "MATCH", "UNTIL", "STATUS", "REASON"]]
    for row in rows:
        table.append([f"#{row.id}", f"{row.matcher}={row.value}", _when(row.expires), row.status, row.reason])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])
    return 0


def cmd_silence_remove(args: argparse.Namespace) -> int:
    from monitor.store.silences import remove_silence

    with _opened(args) as (_settings, store), store.transaction() as conn:
        removed = remove_silence(conn, args.id, utc_now())
    if not removed:
        print(f"error: no active silence #{args.id}", file=sys.stderr)
        return 1
    print(f"silence #{args.id} removed")
    return 0


def _when(moment: Any) -> str:
    return format_utc(moment) if isinstance(moment, datetime) else "-"


# --- digest ---------------------------------------------------------------------------


def _digest_settings(settings: Any, digest_id: str | None) -> Any:
    from monitor.config.load import ConfigError, ConfigProblem
    from monitor.config.settings import Digest

    if digest_id:
        for digest in settings.digests:
            if digest.id == digest_id:
                return digest
        known = ", ".join(d.id for d in settings.digests) or "none configured"
        raise ConfigError([ConfigProblem(file="", line=None, key_path="digests", message=f"no digest {digest_id!r} (known: {known})")])
    if settings.digests:
        return settings.digests[0]
    # No schedule configured: an on-demand digest of everything, for the ops channel if any.
    return Digest.model_validate({"id": "on-demand", "cron": "0 8 * * *", "channel": settings.slack.ops_channel or ""})


async def cmd_digest(args: argparse.Namespace) -> int:
    from alerts import digest as digests
    from alerts import digest_render

    now = utc_now()
    since = now - args.since
    with _opened(args) as (settings, store):
        chosen = _digest_settings(settings, args.digest_id)
        with store.connect() as conn:
            digest = digests.build_digest(
                conn, since=since, until=now, settings_digest=chosen, now=now,
                failures_before_alert=settings.health.failures_before_alert,
            )
        render = {"text": digest_render.render_text, "markdown": digest_render.render_markdown, "json": digest_render.render_json}[args.format]
        sys.stdout.write(render(digest))
        if not args.post:
            return 0
        return await _post(store, settings, digest, now)


async def _post(store: Any, settings: Any, digest: Any, now: datetime) -> int:
    """Queue the digest under an on-demand key and run the relay once to deliver it."""
    from alerts import digest as digests

    if not digest.channel:
        print("error: no channel to post to: configure a digest (digests:) or slack.ops_channel", file=sys.stderr)
        return 2
    key = f"manual-digest:{digest.digest_id}:{now.astimezone(UTC).isoformat()}"
    with store.transaction() as conn:
        digests.enqueue_digest(conn, digest, key=key, now=now)
    from alerts.deliver import Relay

    relay = Relay.from_settings(store, settings)
    try:
        report = await relay.deliver_due()
    finally:
        relay.release()
    log.debug("relay after digest: %s", report)
    if report.held_by:
        print(f"digest queued for {digest.channel}; the running monitor ({report.held_by}) delivers it", file=sys.stderr)
    else:
        print(f"digest queued for {digest.channel} and handed to the relay", file=sys.stderr)
    return 0
