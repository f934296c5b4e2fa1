"""The long-running monitor: APScheduler jobs around the pipeline. Nothing else imports APScheduler.

One job per source (interval + jitter, max_instances=1, coalesce=True), one relay job that
drains the outbox, one job per digest schedule, and a daily retention job. SIGHUP and a
changed feeds.yaml reload the configuration; an invalid file is reported and the old one
stays in force. SIGTERM/SIGINT stop cleanly: no new polls start, in-flight polls get a grace
period to finish, and a poll that is cancelled has written nothing (each source's results
are one transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config.holder import ConfigHolder
from monitor.config.settings import Settings
from monitor.config.sources import EffectiveSource
from monitor.ops import metrics
from monitor.run.pipeline import (
    Gathered,
    PollReport,
    Runtime,
    analyse,
    fetch_and_gather,
    poll_source,
)
from monitor.store import meta

log = logging.getLogger(__name__)

RELAY_EVERY = timedelta(seconds=5)
# Built once at start (HTTP client, Slack client, database, HTTP server): a reload that
# changes them is logged as needing a restart.
RESTART_SECTIONS = ("http", "slack", "store", "server")
STOP_GRACE_SECONDS = 20.0


class Service:
    """Owns the scheduler and the runtime; `run()` returns when the monitor is stopped."""

    def __init__(
        self,
        holder: ConfigHolder,
        runtime: Runtime,
        *,
        relay: Callable[[], Awaitable[object]],
        digests: Callable[[], Awaitable[object]] | None = None,
        retention: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.holder = holder
        self.runtime = runtime
        self.relay = relay
        self.digests = digests
        self.retention = retention
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[PollReport]] = set()
        self._relay_lock = asyncio.Lock()
        self._soon_relays: set[asyncio.Future[None]] = set()
        self.on_reload: list[Callable[[], None]] = []  # other holders of settings follow reloads
        self.ready = False

    # -- jobs -----------------------------------------------------------------------------

    def schedule_sources(self) -> None:
        """Make the job list match the configuration: add, change and remove source jobs."""
        wanted = self.runtime.sources
        for job in self.scheduler.get_jobs():
            if job.id.startswith("source:") and job.id.removeprefix("source:") not in wanted:
                job.remove()
                log.info("source removed from schedule", extra={"source": job.id})
        for source in wanted.values():
            self._schedule_source(source)

    def _schedule_source(self, source: EffectiveSource) -> None:
        job_id = f"source:{source.id}"
        trigger = IntervalTrigger(
            seconds=max(1.0, source.interval.total_seconds()),
            jitter=int(source.jitter.total_seconds()) or None,
        )
        existing = self.scheduler.get_job(job_id)
        if existing is not None and existing.kwargs.get("signature") == _signature(source):
            return
        self.scheduler.add_job(
            self._poll,
            trigger,
            id=job_id,
            kwargs={"source_id": source.id, "signature": _signature(source)},
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            misfire_grace_time=int(source.interval.total_seconds()),
            # A new source polls soon, spread by the jitter; a changed one keeps its trigger's
            # next time. Never pass next_run_time=None: APScheduler would add the job paused.
            **({} if existing else {"next_run_time": _soon(self.runtime, source)}),
        )

    async def _poll(self, source_id: str, signature: str) -> None:
        source = self.runtime.sources.get(source_id)
        if source is None or self._stopping.is_set():
            return
        task = asyncio.ensure_future(poll_source(source, self.runtime))
        self._in_flight.add(task)
        try:
            report = await task
            log.info(
                "polled",
                extra={"source": source_id, "outcome": report.outcome, "new": report.new_articles, "alerts": report.alerts},
            )
            if report.alerts:
                # Deliver now rather than at the relay's next tick: time to alert is poll + send.
                relay = asyncio.ensure_future(self._relay())
                self._soon_relays.add(relay)  # a reference, so the task is not collected early
                relay.add_done_callback(self._soon_relays.discard)
        except asyncio.CancelledError:
            log.info("poll discarded at shutdown", extra={"source": source_id})
        except Exception:  # one broken source must never stop the others
            log.exception("poll failed", extra={"source": source_id})
        finally:
            self._in_flight.discard(task)

    async def _relay(self) -> None:
        # One delivery pass at a time: two passes over the same pending rows could both post.
        async with self._relay_lock:
            try:
                await self.relay()
            except Exception:
                log.exception("outbox relay failed; pending alerts stay queued")

    # -- configuration ----------------------------------------------------------------------

    def reload(self) -> None:
        """Load the file again and apply it whole, or not at all.

        A file that validates can still fail to apply (a scheduler that refuses a trigger,
        say): then the previous settings, runtime and jobs are put back, so the monitor never
        runs on half of each.
        """
        before, loaded_at = self.runtime.settings, self.holder.loaded_at
        ok, message = self.holder.reload()
        if ok and self.holder.settings is not before:
            try:
                self._apply(self.holder.settings)
            except Exception as exc:
                log.error("config reload could not be applied: %s", _one_line(exc))
                ok, message = self.holder.revert(before, loaded_at, _one_line(exc))
                self._apply(before)  # these applied before, so they apply again
            else:
                changed = [k for k in RESTART_SECTIONS if getattr(before, k) != getattr(self.holder.settings, k)]
                if changed:
                    log.warning("config reload: these sections take effect only after a restart", extra={"sections": changed})
        metrics.observe_reload(ok)
        self.record_config_state()
        log.log(logging.INFO if ok else logging.ERROR, "config reload", extra={"ok": ok, "detail": message})

    def _apply(self, settings: Settings) -> None:
        self.runtime.apply_settings(settings)
        self.schedule_sources()
        for follow in self.on_reload:
            follow()

    def record_config_state(self) -> None:
        """What `monitor status` shows: which file is in force, since when, and the last reload's result."""
        ok, message = self.holder.last_result
        try:
            with self.runtime.store.transaction() as conn:
                meta.set_meta(conn, "config", {
                    "path": str(self.holder.path), "loaded_at": self.holder.loaded_at.isoformat(),
                    "last_reload_ok": ok, "last_reload": message,
                })
        except Exception:  # status is informative; never let it break a reload
            log.exception("could not record the configuration state")

    async def _watch_config(self) -> None:
        from watchfiles import awatch

        path = Path(self.holder.path)
        with contextlib.suppress(asyncio.CancelledError):
            async for _changes in awatch(path.parent, stop_event=self._stopping, recursive=False):
                if any(Path(p).name == path.name for _, p in _changes):
                    try:
                        self.reload()
                    except Exception:  # keep watching: the next edit may fix it
                        log.exception("config reload failed")

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.schedule_sources()
        self.scheduler.add_job(self._relay, IntervalTrigger(seconds=RELAY_EVERY.total_seconds()), id="relay", max_instances=1, coalesce=True)
        if self.digests is not None:
            self.scheduler.add_job(self.digests, IntervalTrigger(minutes=1), id="digests", max_instances=1, coalesce=True)
        if self.retention is not None:
            self.scheduler.add_job(self.retention, CronTrigger(hour=3, minute=17), id="retention", max_instances=1, coalesce=True)
        self.scheduler.start()
        self.record_config_state()
        self.ready = True
        watcher = asyncio.create_task(self._watch_config())
        log.info("monitor started", extra={"sources": len(self.runtime.sources)})
        await self._stopping.wait()
        await self.stop(watcher)

    async def stop(self, watcher: asyncio.Task[None] | None = None) -> None:
        self.ready = False
        self.scheduler.pause()
        if self._in_flight:
            log.info("waiting for in-flight polls", extra={"count": len(self._in_flight)})
            _done, pending = await asyncio.wait(self._in_flight, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._relay()  # deliver what is already decided; anything left stays queued
        self.scheduler.shutdown(wait=False)
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        log.info("monitor stopped")

    def request_stop(self) -> None:
        self._stopping.set()


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text[:300]


def _signature(source: EffectiveSource) -> str:
    """Changes to these fields reschedule a source's job after a reload."""
    return f"{source.url}|{source.interval.total_seconds()}|{source.jitter.total_seconds()}|{source.kind}"


def _soon(runtime: Runtime, source: EffectiveSource):
    spread = min(source.jitter.total_seconds(), source.interval.total_seconds())
    return runtime.clock() + timedelta(seconds=runtime.rng.uniform(0, spread))


async def run_once(runtime: Runtime, *, relay: Callable[[], Awaitable[object]] | None = None) -> list[PollReport]:
    """Poll every enabled source once, then relay.

    Every source is fetched at once (concurrency bounded by the fetcher) and the analysis side
    takes them in the configuration's order, each as soon as its fetch is done, so the same
    feeds give the same articles, developments and alerts whichever fetch finished first (the
    distributed mode's `run --once` drains its intake in that same order), and the analysis
    of the first sources overlaps the fetches of the others."""
    async def guarded(source: EffectiveSource) -> Gathered | PollReport:
        try:
            return await fetch_and_gather(source, runtime)
        except Exception as exc:  # reported, never allowed to stop the other sources
            log.exception("poll failed", extra={"source": source.id})
            return PollReport(source.id, "failed", error=f"internal error: {exc}")

    in_order = list(runtime.sources.values())
    fetches = [asyncio.ensure_future(guarded(s)) for s in in_order]
    reports = []
    try:
        for source, fetching in zip(in_order, fetches, strict=True):
            reports.append(await _analysed(source, await fetching, runtime))
    finally:
        for fetching in fetches:
            fetching.cancel()  # only those still running: a cancelled `run --once`
    if relay is not None:
        await relay()
    return reports


async def _analysed(source: EffectiveSource, found: Gathered | PollReport, runtime: Runtime) -> PollReport:
    """The analysis side of one `run_once` poll; a failure is that source's report."""
    if isinstance(found, PollReport):
        return found
    try:
        return await analyse(source, found, runtime)
    except Exception as exc:
        log.exception("poll failed", extra={"source": source.id})
        return PollReport(source.id, "failed", error=f"internal error: {exc}")

