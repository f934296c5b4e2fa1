"""Composition root: builds the store, fetcher, runtime and alert relay from a feeds.yaml,
and the commands that run them (`run`, `demo`, `sources`, `developments`, `status`,
`eval`, `replay`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config.load import ConfigHolder, load_settings, resolve_store_url
from monitor.config.settings import Settings, parse_duration
from monitor.ingest.fetch import Fetcher
from monitor.run.pipeline import Runtime, build_runtime, utcnow
from monitor.store import Store

if TYPE_CHECKING:
    from alerts.deliver import Relay, RelayReport

log = logging.getLogger(__name__)


@dataclass
class App:
    holder: ConfigHolder
    store: Store
    runtime: Runtime
    relay: Relay

    @property
    def settings(self) -> Settings:
        return self.holder.settings


def open_store(settings: Settings, config_path: str | Path) -> Store:
    store = Store.open(resolve_store_url(settings, config_path))
    store.upgrade()
    return store


@contextlib.asynccontextmanager
async def open_app(config_path: str | Path, *, clock=utcnow) -> AsyncIterator[App]:
    """Everything `monitor run` needs, closed in the right order on the way out."""
    from alerts.deliver import Relay

    holder = ConfigHolder.load(config_path)
    store = open_store(holder.settings, config_path)
    try:
        async with Fetcher(holder.settings.http) as fetcher:
            runtime = build_runtime(holder.settings, store, fetcher, clock=clock)
            relay = Relay.from_settings(store, holder.settings, clock=clock)
            try:
                yield App(holder, store, runtime, relay)
            finally:
                with contextlib.suppress(Exception):  # a broken store must not hide the real error
                    relay.release()
    finally:
        store.close()


# -- commands ------------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="poll the sources on schedule and alert Slack (or the console)")
    run.add_argument("--once", action="store_true", help="poll every source once, deliver alerts, and exit (for cron)")
    run.set_defaults(handler=cmd_run)

    demo = sub.add_parser("demo", help="run the whole flow against local sample feeds, no internet or Slack needed")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's feeds.yaml and store in DIR (for `monitor digest` afterwards)")
    demo.set_defaults(handler=cmd_demo)

    sources = sub.add_parser("sources", help="list sources, or test one now")
    sources_sub = sources.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    listing = sources_sub.add_parser("list", help="sources with their health")
    listing.set_defaults(handler=cmd_sources_list)
    test = sources_sub.add_parser("test", help="fetch one source now and show every item with the topics it matched and why (writes nothing)")
    test.add_argument("source_id", metavar="ID")
    test.set_defaults(handler=cmd_sources_test)

    devs = sub.add_parser("developments", help="recent developments with their sources and decision")
    devs.add_argument("--since", default="24h", type=duration_argument, help="how far back, e.g. 12h or 7d (default: %(default)s)")
    devs.add_argument("--json", action="store_true", help="print JSON")
    devs.set_defaults(handler=cmd_developments)

    status = sub.add_parser("status", help="one screen for operators: sources, alerts, silences, config")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.set_defaults(handler=cmd_status)

    evaluate = sub.add_parser("eval", help="measure clustering or extraction on a labelled corpus")
    eval_sub = evaluate.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    from monitor.eval import clusters as cluster_eval
    from monitor.eval import pages as eval_pages
    from monitor.eval import stories as eval_stories

    cluster_eval.add_eval_clusters_parser(eval_sub)
    eval_pages.add_eval_pages_parser(eval_sub)
    eval_stories.add_eval_stories_parser(eval_sub)
    cluster_eval.add_replay_parser(sub)


def duration_argument(text: str) -> timedelta:
    """argparse type: '24h' → timedelta, with the config file's message on a bad value."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


async def cmd_run(args: argparse.Namespace) -> int:
    from monitor.run.scheduler import Service

    async with open_app(args.config) as app:
        await check_slack(app)
        if args.once:
            return await run_once_and_report(app)
        from alerts.digest import make_digest_job
        from monitor.run.retention import make_retention_job

        service = Service(
            app.holder,
            app.runtime,
            relay=app.relay.deliver_due,
            digests=make_digest_job(app.store, app.holder, clock=app.runtime.clock),
            retention=make_retention_job(app.store, app.holder, clock=app.runtime.clock),
        )
        service.on_reload.append(lambda: setattr(app.relay, "settings", app.holder.settings))
        from monitor.ops.server import serve_if_enabled

        async with serve_if_enabled(app, service):
            await service.run()
    return 0


async def check_slack(app: App) -> None:
    """Ask Slack at start which scopes the token has; problems are logged and shown by
    `monitor status`. Never stops the start: alerts wait in the outbox whatever Slack says."""
    try:
        await app.relay.check_slack()
    except Exception:  # a check must not keep the monitor from running
        log.exception("could not check the Slack token at start")


async def run_once_and_report(app: App) -> int:
    """`run --once`: poll, deliver everything due, say what happened.

    Exit 1 when an alert could not be delivered or when every source failed (the network or
    the configuration is broken), so cron notices; one failing source among many is normal
    and is reported in the output, `monitor status` and source-health alerts instead.
    """
    from monitor.run.scheduler import run_once

    reports = await run_once(app.runtime)
    for report in reports:
        print(format_report(report))
    release_holds(app)
    delivered = await deliver_all(app)
    if delivered.held_by:
        print(f"another monitor ({delivered.held_by}) delivers this store's alerts; the ones queued here are left to it")
    failed = [r for r in reports if r.outcome == "failed"]
    print(
        f"{len(reports)} sources polled, {len(failed)} failed, {sum(r.new_articles for r in reports)} new articles, "
        f"{sum(r.alerts for r in reports)} alerts queued; {delivered.sent} delivered, {delivered.failed} failed, "
        f"{delivered.waiting} waiting"
    )
    return 1 if delivered.failed or (reports and len(failed) == len(reports)) else 0


def release_holds(app: App) -> int:
    """After polling every source once, a held first alert has nothing left to wait for."""
    from monitor.store import outbox

    with app.store.transaction() as conn:
        return outbox.release_holds(
            conn, app.runtime.clock(), "sent at the end of this run: every source was polled, nothing more arrives before the next"
        )


async def deliver_all(app: App, *, passes: int = 20) -> RelayReport:
    """Relay until a pass makes no progress: a batch at a time, and an update whose parent was
    posted earlier in the same pass goes out in the next one."""
    from alerts.deliver import RelayReport

    total = RelayReport()
    for _ in range(passes):
        report = await app.relay.deliver_due()
        for name in ("sent", "failed", "retried", "adopted", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.waiting = report.waiting
        total.held_by = report.held_by
        if report.sent + report.failed + report.adopted + report.skipped == 0:
            break
    return total


def format_report(report) -> str:
    from monitor.ingest.health import bounded_error

    detail = bounded_error(report.error) if report.error else (
        f"{report.items} items, {report.relevant} relevant, {report.new_articles} new, {report.alerts} alerts"
    )
    for note in getattr(report, "notes", ()):
        detail += f"; {note}"
    return f"  {report.source_id:<28} {report.outcome:<10} {detail}"


async def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.cli.demo import run_demo

    return await run_demo(keep=args.keep)


def cmd_sources_list(args: argparse.Namespace) -> int:
    from monitor.ops.status import print_sources

    settings = load_settings(args.config)
    store = open_store(settings, args.config)
    try:
        print_sources(settings, store, datetime.now(UTC))
    finally:
        store.close()
    return 0


async def cmd_sources_test(args: argparse.Namespace) -> int:
    from monitor.cli.sourcetest import try_source

    settings = load_settings(args.config)
    return await try_source(settings, args.source_id, out=sys.stdout)


def cmd_developments(args: argparse.Namespace) -> int:
    from monitor.ops.status import print_developments

    settings = load_settings(args.config)
    store = open_store(settings, args.config)
    try:
        print_developments(store, datetime.now(UTC) - args.since, as_json=args.json, settings=settings)
    finally:
        store.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.ops.status import collect_status, render_status

    holder = ConfigHolder.load(args.config)
    store = open_store(holder.settings, args.config)
    try:
        status = collect_status(holder, store, datetime.now(UTC))
    finally:
        store.close()
    print(json.dumps(status, indent=2, default=_json_value) if args.json else render_status(status))
    return 0


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
