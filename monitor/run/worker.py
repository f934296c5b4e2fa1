"""Fetch workers (`monitor worker`): Celery runs `poll_batch` tasks (the fetch side of polls).

Only the distributed commands import this module (Celery is the optional extra
`pip install .[distributed]`). A task names the configuration version it was dispatched
under, the batch's claim token and its sources. Each pool child keeps one event loop, one
`Fetcher` (its connection pools, robots.txt cache) and one store handle for its whole life.
Per source: fetch → `pipeline.gather` → `commit_poll`, which checks the claim token, writes
the intake, the health and the next due time, and clears the claim; the polls of a batch that
finish together share a transaction (`GroupCommit`), and a poll is written whole or not at
all. Workers never write articles, developments or alerts.

Tasks are acknowledged after they ran (`acks_late`) and given back when the child running
them dies (`task_reject_on_worker_lost`; by default Celery would count them done): a poll
may then run twice, and its second run finds its items in the intake already (unique per
source and item) or its claim gone (nothing written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from monitor.config.settings import Settings
from monitor.ingest.fetch import Fetcher, request_host
from monitor.models import SourceHealth
from monitor.run.owner import report_of
from monitor.run.pipeline import Gathered, PollReport, Runtime, fetch_and_gather
from monitor.run.roles import DistributedError, PostgresHostGate, VersionedSettings
from monitor.store import Store, sources
from monitor.store import distributed as cluster
from monitor.story.analysis import Analyzer

log = logging.getLogger(__name__)

TASK = "monitor.poll_batch"
STORE_URL_ENV = "MONITOR_WORKER_STORE_URL"


def celery_app(broker_url: str, settings: Settings) -> Celery:
    """The Celery app of the leader (which sends) and of the workers (which run)."""
    app = Celery("monitor", broker=broker_url, set_as_current=False)
    visibility = max(60, int(settings.distributed.claim_timeout.total_seconds() * 2))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=settings.distributed.queue,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=False,  # no pidbox queues: nothing here uses remote control
        # Redis: an unacknowledged task goes to another worker after this long (RabbitMQ gives
        # it back when the worker's connection closes).
        broker_transport_options={"visibility_timeout": visibility, "max_retries": 3},
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
    )
    app.task(name=TASK, ignore_result=True)(poll_batch)
    # Each pool child readies its store, fetcher and configuration right after the fork, not
    # in its first batch; Celery gives the child this long before it counts it as failed.
    app.conf.worker_proc_alive_timeout = 60
    worker_process_init.connect(warm_child, weak=False, dispatch_uid="monitor.warm_child")
    return app


def dispatcher(app: Celery):  # noqa: ANN201 - returns the leader's Dispatch callable
    def send(version: int, batch: cluster.Batch) -> None:
        app.send_task(TASK, args=[version, batch.token, list(batch.source_ids)], queue=app.conf.task_default_queue)

    return send


# -- in each pool child -----------------------------------------------------------------------


# Threads of a pool child's event loop (its store calls, parsing, the host gate): asyncio's
# default of cores + 4 made ten sources in hand queue for a thread. The store's pool matches,
# so no call waits for a connection, and none is opened and closed as an overflow.
CHILD_THREADS = 16


def _child_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(CHILD_THREADS, thread_name_prefix="monitor-worker"))
    return loop


@dataclass
class Child:
    """One pool child's long-lived state."""

    store: Store
    loop: asyncio.AbstractEventLoop = field(default_factory=_child_loop)
    versions: VersionedSettings | None = None
    runtime: Runtime | None = None
    fetcher: Fetcher | None = None
    gate: PostgresHostGate | None = None
    rng: random.Random = field(default_factory=random.Random)

    def runtime_for(self, version: int) -> Runtime:
        assert self.versions is not None
        _, settings = self.versions.get(version)
        if self.runtime is None or self.fetcher is None or self.runtime.settings.http != settings.http:
            if self.fetcher is not None:
                self.loop.run_until_complete(self.fetcher.__aexit__(None, None, None))
            if self.gate is not None:
                self.gate.close()
            self.gate = PostgresHostGate(self.store, settings.http)
            self.fetcher = Fetcher(settings.http, gate=self.gate)
            self.loop.run_until_complete(self.fetcher.__aenter__())
            self.runtime = Runtime(settings=settings, store=self.store, fetcher=self.fetcher, analyzer=Analyzer(), topics=None, sources={})  # type: ignore[arg-type]
        if self.runtime.settings is not settings or not self.runtime.sources:
            self.runtime.fetcher = self.fetcher
            self.runtime.apply_settings(settings)
        return self.runtime


_CHILD: Child | None = None


def child() -> Child:
    global _CHILD
    if _CHILD is None:
        url = os.environ.get(STORE_URL_ENV, "")
        store = Store.open(url, pool=CHILD_THREADS)
        _CHILD = Child(store=store, versions=VersionedSettings(store))
    return _CHILD


def warm_child(**_: object) -> None:
    """A new pool child: open the store, read the newest configuration, start the fetcher, so
    the first batch polls at once. A failure here is only logged: the first task tries again
    and reports it there."""
    try:
        state = child()
        assert state.versions is not None
        version, _settings = state.versions.get()
        state.runtime_for(version)
        log.info("fetch worker child ready", extra={"config_version": version})
    except DistributedError as exc:
        log.info("fetch worker child ready; %s", exc)
    except Exception:
        log.exception("fetch worker child could not get ready; its first batch tries again")


def poll_batch(version: int, token: str, source_ids: list[str]) -> dict[str, int]:
    """The task: poll a batch's sources (concurrently, within the fetcher's limits). A batch
    that fails as a whole (the store unreachable) gives its claims back, so the leader's next
    round dispatches it again instead of waiting for the claims to expire."""
    state = child()
    try:
        rt = state.runtime_for(version)
        return state.loop.run_until_complete(run_batch(state, rt, token, source_ids))
    except Exception:
        log.exception("batch failed; its sources go back to the leader", extra={"sources": source_ids[:10]})
        with contextlib.suppress(Exception):
            for source_id in source_ids:
                _release(state.store, source_id, token)
        return {"failed": len(source_ids)}


async def run_batch(state: Child, rt: Runtime, token: str, source_ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        tokens, healths = await asyncio.to_thread(_batch_state, state.store, source_ids)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != cluster.LOCK_NOT_AVAILABLE:
            raise
        # The leader's claiming transaction held the rows too long (a hung leader): the claims,
        # if they commit, expire and the sweeper dispatches the sources again.
        log.warning("claim check timed out; the batch waits for the sweeper", extra={"sources": source_ids[:10]})
        return {"claim_unchecked": len(source_ids)}
    # Another worker may have polled these sources last: their health (validators, failures)
    # comes from the store, read for the whole batch at once and off the event loop.
    rt.health.clear()
    rt.health.update(healths)
    # At most `http.concurrency` sources polling at once, so their store reads (the dedup
    # pre-filter, article pacing) stay within the store's connection pool whatever the batch
    # size. A poll waiting for its commit is no longer in hand: the next source's request goes
    # out meanwhile, and the commits (one transaction at a time) need one connection.
    in_hand = asyncio.Semaphore(rt.settings.http.concurrency)
    commits = GroupCommit(state.store)

    async def one(source_id: str) -> str:
        if tokens.get(source_id) != token:
            return "claim_lost"  # polled already (a task run twice), dispatched again, or its leader died
        return await poll_one(state, rt, commits, in_hand, token, source_id)

    # The batch's own hosts get a slot each for the batch, in one statement (see the gate).
    assert state.gate is not None
    await state.gate.hold(request_host(rt.sources[sid].url) for sid in source_ids if tokens.get(sid) == token and sid in rt.sources)
    try:
        for outcome in await asyncio.gather(*(one(sid) for sid in source_ids)):
            counts[outcome] = counts.get(outcome, 0) + 1
        await commits.finished()
    finally:
        await state.gate.release()
    log.info("batch polled", extra={"token": token[:8], "sources": len(source_ids), "transactions": commits.transactions, **counts})
    return counts


async def poll_one(state: Child, rt: Runtime, commits: GroupCommit, in_hand: asyncio.Semaphore, token: str, source_id: str) -> str:
    """Poll one source whose claim the batch's check found ours; commit what it gathered."""
    source = rt.sources.get(source_id)
    if source is None:  # removed by a newer configuration than the leader's claim
        await asyncio.to_thread(_release, state.store, source_id, token)
        return "removed"
    try:
        async with in_hand:
            polled = await fetch_and_gather(source, rt)
    except Exception:
        log.exception("poll failed", extra={"source": source_id})
        return "error"
    now = rt.clock()
    if isinstance(polled, PollReport):  # backing off: due again when the backoff ends
        polled = Gathered(source_id, rt.health[source_id], "skipped")  # as the batch read it
    jitter = state.rng.uniform(0, source.jitter.total_seconds())
    due = cluster.next_check(polled.health, now, source.interval, jitter)
    items = [cluster.IntakeItem(a, None) for a in polled.fresh] + [cluster.IntakeItem(a, t) for a, t in polled.missed]
    if not await commits.commit(PolledSource(source_id, token, now, polled, items, due)):
        log.info("claim moved on; this poll is dropped", extra={"source": source_id})
        return "claim_lost"
    return "committed"


@dataclass(frozen=True)
class PolledSource:
    """One source's poll, ready to commit: what `commit_poll` writes."""

    source_id: str
    token: str
    polled_at: datetime
    gathered: Gathered
    items: list[cluster.IntakeItem]
    next_check_at: datetime


class GroupCommit:
    """A batch's polls, committed as they finish, several to a transaction: while one
    transaction is on its way, the polls that finish meanwhile gather and go in the next.
    Ten sources in hand then cost a few transactions a round instead of ten (a transaction
    per poll was the largest part of a worker's CPU in a steady cycle, where nearly every
    poll finds nothing). Each poll still checks its own claim token, and one whose claim moved
    on writes nothing and leaves the others be. A transaction the store refuses is tried
    again one poll at a time, so a poll that cannot be written fails alone."""

    MOST = 50  # polls in one transaction at most (a batch's size)

    def __init__(self, store: Store) -> None:
        self.store = store
        self.transactions = 0
        self._waiting: list[tuple[PolledSource, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def commit(self, poll: PolledSource) -> bool:
        """True once the poll is committed; False when its claim had moved on."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((poll, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await done

    async def finished(self) -> None:
        if self._flushing is not None:
            await self._flushing

    async def _flush(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self.MOST], self._waiting[self.MOST :]
            try:
                held = await asyncio.to_thread(self._commit_together, [poll for poll, _ in group])
            except Exception:
                log.warning("a group commit failed; its polls commit one at a time", extra={"polls": len(group)}, exc_info=True)
                for poll, done in group:
                    try:
                        (ok,) = await asyncio.to_thread(self._commit_together, [poll])
                    except Exception as exc:
                        done.set_exception(exc)
                    else:
                        done.set_result(ok)
                continue
            for (_, done), ok in zip(group, held, strict=True):
                done.set_result(ok)

    def _commit_together(self, polls: list[PolledSource]) -> list[bool]:
        held = []
        with self.store.transaction() as conn:
            for poll in polls:
                try:
                    cluster.commit_poll(
                        conn, source_id=poll.source_id, token=poll.token, shard=0, polled_at=poll.polled_at,
                        report=report_of(poll.gathered), items=poll.items, health=poll.gathered.health,
                        next_check_at=poll.next_check_at,
                    )
                except cluster.ClaimLost:
                    held.append(False)  # commit_poll wrote nothing for it: the others go on
                else:
                    held.append(True)
            if any(held):
                cluster.notify_intake(conn)  # the analysis owner wakes when this commits
        self.transactions += 1
        return held


def _batch_state(store: Store, source_ids: list[str]) -> tuple[dict[str, str | None], dict[str, SourceHealth]]:
    """The batch's claim tokens (checked after the leader's claim committed) and health."""
    with store.connect() as conn:
        tokens = cluster.claims(conn, source_ids)
        return tokens, sources.get_healths(conn, source_ids)


def _release(store: Store, source_id: str, token: str) -> None:
    with store.transaction() as conn:
        cluster.release_claim(conn, [source_id], token)
