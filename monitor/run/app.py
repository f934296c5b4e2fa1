"""Composition root: builds the store, fetcher, runtime and alert relay from a feeds.yaml,
and runs a cycle once (`run --once`, the demo). The commands are in `monitor.cli`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.clock import utc_now
from monitor.config.holder import ConfigHolder
from monitor.config.load import resolve_store_url
from monitor.config.settings import Settings
from monitor.ingest.fetch import Fetcher
from monitor.run.pipeline import Runtime, build_runtime
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
async def open_app(config_path: str | Path, *, clock=utc_now) -> AsyncIterator[App]:
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


# -- running once -------------------------------------------------------------------------


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
