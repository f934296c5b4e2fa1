"""The analysis owner (`monitor run --role analysis`): one active at a time, fenced.

It takes a PostgreSQL session advisory lock (standbys retry every second), raises its role's
epoch, restores the engine's memory from PostgreSQL (recent articles, open developments),
takes ids from PostgreSQL sequences, and drains the intake the fetch workers fill: each poll
is `pipeline.analyse` — the final exact-dedup check inside the write transaction, then dedup,
cluster, corroborate, score, timeline, decide — and the same transaction checks the epoch,
writes articles, developments and outbox rows and marks the poll done. An owner that lost
its lock finds another epoch and commits nothing; a killed one committed whole polls or none.
The Slack relay runs here, after each drain that queued alerts (its lease and its metadata
check keep two relays from posting twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection

from monitor.clock import utc_now
from monitor.config.settings import Settings
from monitor.config.settings import Source as SourceSettings
from monitor.config.sources import EffectiveSource, effective_source, effective_sources
from monitor.ingest.fetch import Fetcher
from monitor.models import SourceHealth
from monitor.run.pipeline import Gathered, PollReport, Runtime, analyse_together, build_runtime
from monitor.run.roles import (
    DistributedError,
    IdAllocator,
    RoleLock,
    VersionedSettings,
    holder_name,
    wait_for_lock,
)
from monitor.store import Store, sources
from monitor.store import distributed as cluster

if TYPE_CHECKING:
    from alerts.deliver import Relay

log = logging.getLogger(__name__)

ROLE = "analysis:0"
DRAIN_EVERY_SECONDS = 0.5  # the longest an idle owner waits before it looks again
DRAIN_GAP_SECONDS = 0.1  # the shortest time between two drains that found no backlog
DRAIN_AT_ONCE = 200  # polls read from the intake per drain at most
RELAY_EVERY_SECONDS = 5.0
QUIET_RUN = 200  # polls without items analysed in one transaction at most


class AnalysisOwner:
    def __init__(self, store: Store, *, relay: Relay | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.store, self.relay, self.clock = store, relay, clock
        self.versions = VersionedSettings(store)
        self.version = 0
        self.epoch = 0
        self.runtime: Runtime | None = None
        self.listener = cluster.IntakeListener(store.engine)

    async def run(self, stopping: asyncio.Event) -> None:
        lock = RoleLock(self.store, cluster.owner_lock(0))
        while not stopping.is_set():
            if not await wait_for_lock(lock, ROLE, stopping):
                break
            try:
                await self._own(lock, stopping)
            except cluster.Fenced as exc:
                log.error("analysis owner fenced off; standing by: %s", exc)
            finally:
                lock.release()
                self.listener.close()

    async def _own(self, lock: RoleLock, stopping: asyncio.Event) -> None:
        said = False
        while not stopping.is_set():  # a leader starting beside us publishes the configuration
            try:
                await asyncio.to_thread(self.take_office)
                break
            except DistributedError as exc:
                if not said:
                    log.warning("analysis owner waiting: %s", exc)
                    said = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 1.0)
        else:
            return
        last_relay = 0.0
        while not stopping.is_set():
            if not await asyncio.to_thread(lock.alive):
                log.error("analysis owner: the lock's session is gone; standing by")
                return
            reports = await self.drain()
            if self.relay is not None and (any(r.alerts for r in reports) or time.monotonic() - last_relay >= RELAY_EVERY_SECONDS):
                last_relay = time.monotonic()
                try:
                    await self.relay.deliver_due()
                except Exception:
                    log.exception("outbox relay failed; pending alerts stay queued")
            if not reports:  # until a worker commits a poll, or a while at most
                await asyncio.to_thread(self.listener.wait, DRAIN_EVERY_SECONDS)
            if len(reports) < DRAIN_AT_ONCE:
                # A drain costs a few reads whatever it finds: while polls stream in, take them
                # a tenth of a second's worth at a time rather than one commit at a time (a
                # backlog is drained without a pause).
                await asyncio.sleep(DRAIN_GAP_SECONDS)

    def take_office(self) -> None:
        """Raise the epoch (fencing off any earlier owner), then restore memory and ids."""
        with self.store.transaction() as conn:
            self.epoch = cluster.take_role(conn, ROLE, holder_name(), self.clock())
        self.version, settings = self.versions.get()
        fetcher = cast(Fetcher, None)  # the owner never fetches
        ids = IdAllocator(self.store)
        runtime = build_runtime(settings, self.store, fetcher, clock=self.clock)
        runtime.ids = ids
        runtime.analyzer.ids = ids
        self.runtime = runtime
        log.info("analysis owner", extra={"holder": holder_name(), "epoch": self.epoch, "config_version": self.version})

    def _follow_config(self) -> Runtime:
        assert self.runtime is not None
        version, settings = self.versions.get()
        if version != self.version:
            self.runtime.apply_settings(settings)
            self.version = version
        return self.runtime

    async def drain(self, order: Sequence[str] | None = None) -> list[PollReport]:
        """Analyse every poll waiting in the intake, in commit order (or, for `run --once`,
        in the configuration's source order): a poll with items in a transaction of its own,
        a run of polls that brought none (most of a steady cycle) in one transaction together."""
        rt = await asyncio.to_thread(self._follow_config)
        polls, healths = await asyncio.to_thread(self._pending)
        if order is not None:
            rank = {source_id: i for i, source_id in enumerate(order)}
            polls.sort(key=lambda p: (rank.get(p.source_id, len(rank)), p.batch_id))
        reports: list[PollReport] = []
        for run in quiet_runs(polls, QUIET_RUN):
            done = await self._analyse(rt, run, healths)
            reports.extend(done)
            if any(r.outcome == "failed" and r.error.startswith(("could not write", "the store")) for r in done):
                break  # the store refused: keep the order, try again next drain
        return reports

    def _pending(self) -> tuple[list[cluster.PendingPoll], dict[str, SourceHealth]]:
        with self.store.connect() as conn:
            polls = cluster.pending_polls(conn, 0, limit=DRAIN_AT_ONCE)
            healths = sources.get_healths(conn, sorted({p.source_id for p in polls}))
        return polls, healths

    async def _analyse(self, rt: Runtime, polls: Sequence[cluster.PendingPoll], healths: dict[str, SourceHealth]) -> list[PollReport]:
        together = [
            (
                rt.sources.get(poll.source_id) or _removed_source(rt.settings, poll.source_id),
                gathered_from(poll, healths.get(poll.source_id) or SourceHealth(poll.source_id)),
            )
            for poll in polls
        ]
        epoch, now, batch_ids = self.epoch, self.clock(), [poll.batch_id for poll in polls]

        def fence_and_mark(conn: Connection) -> None:
            cluster.check_epoch(conn, ROLE, epoch)
            cluster.mark_done(conn, batch_ids, now)

        return await analyse_together(together, rt, in_transaction=fence_and_mark, write_health=False)


def quiet_runs(polls: Sequence[cluster.PendingPoll], most: int) -> Iterator[list[cluster.PendingPoll]]:
    """The polls in their order: each poll with items alone, consecutive polls without items
    together (at most `most`), so order is kept and only quiet polls share a transaction
    (their failures are the store's, which would fail each of them alike)."""
    run: list[cluster.PendingPoll] = []
    for poll in polls:
        if run and (poll.items or len(run) == most):
            yield run
            run = []
        if poll.items:
            yield [poll]
        else:
            run.append(poll)
    if run:
        yield run


def gathered_from(poll: cluster.PendingPoll, health: SourceHealth) -> Gathered:
    report: dict[str, Any] = poll.report
    return Gathered(
        poll.source_id,
        health,
        str(report.get("outcome", "read")),
        fresh=[item.article for item in poll.items if item.near_topics is None],
        missed=[(item.article, item.near_topics) for item in poll.items if item.near_topics is not None],
        items=int(report.get("items", 0)),
        relevant=int(report.get("relevant", 0)),
        error=str(report.get("error", "")),
        warnings=tuple(report.get("warnings", ())),
        notes=tuple(report.get("notes", ())),
    )


def report_of(gathered: Gathered) -> dict[str, Any]:
    """What the intake keeps of a poll besides its articles (the inverse of `gathered_from`)."""
    return {
        "outcome": gathered.outcome,
        "items": gathered.items,
        "relevant": gathered.relevant,
        "error": gathered.error,
        "warnings": list(gathered.warnings),
        "notes": list(gathered.notes),
    }


def _removed_source(settings: Settings, source_id: str) -> EffectiveSource:
    """A source polled before a reload removed it: its articles are still analysed."""
    return effective_source(settings, SourceSettings.model_construct(id=source_id, name=source_id, url="http://removed.invalid/"))


def source_order(settings: Settings) -> list[str]:
    return [s.id for s in effective_sources(settings)]
