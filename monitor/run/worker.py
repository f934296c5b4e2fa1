"""Fetch workers (`monitor worker`): Celery runs `poll_batch` tasks (the fetch side of polls).

Only the distributed commands import this module (Celery is the optional extra
`pip install .[distributed]`). A task names the configuration version it was dispatched
under, the batch's claim token and its sources. Each pool child keeps one event loop, one
`Fetcher` (its connection pools, robots.txt cache) and one store handle for its whole life.
Per source: fetch → `pipeline.gather` → one transaction that checks the claim token, writes
the intake, the health and the next due time, and clears the claim (`commit_poll`).
Workers never write articles, developments or alerts.

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
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from sqlalchemy.exc import OperationalError

from monitor.config.settings import Settings
from monitor.ingest.fetch import Fetcher
from monitor.models import SourceHealth
from monitor.run.owner import report_of
from monitor.run.pipeline import Gathered, PollReport, Runtime, fetch_and_gather
from monitor.run.roles import PostgresHostGate, VersionedSettings
from monitor.store import Store
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
    return app


def dispatcher(app: Celery):  # noqa: ANN201 - returns the leader's Dispatch callable
    def send(version: int, batch: cluster.Batch) -> None:
        app.send_task(TASK, args=[version, batch.token, list(batch.source_ids)], queue=app.conf.task_default_queue)

    return send


# -- in each pool child -----------------------------------------------------------------------


@dataclass
class Child:
    """One pool child's long-lived state."""

    store: Store
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    versions: VersionedSettings | None = None
    runtime: Runtime | None = None
    fetcher: Fetcher | None = None
    rng: random.Random = field(default_factory=random.Random)

    def runtime_for(self, version: int) -> Runtime:
        assert self.versions is not None
        _, settings = self.versions.get(version)
        if self.runtime is None or self.fetcher is None or self.runtime.settings.http != settings.http:
            if self.fetcher is not None:
                self.loop.run_until_complete(self.fetcher.__aexit__(None, None, None))
            self.fetcher = Fetcher(settings.http, gate=PostgresHostGate(self.store, settings.http))
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
        store = Store.open(url)
        _CHILD = Child(store=store, versions=VersionedSettings(store))
    return _CHILD


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
    rt.health.clear()  # another worker may have polled these sources last: read the store
    results = await asyncio.gather(*(poll_one(state, rt, token, sid) for sid in source_ids))
    counts: dict[str, int] = {}
    for outcome in results:
        counts[outcome] = counts.get(outcome, 0) + 1
    log.info("batch polled", extra={"token": token[:8], "sources": len(source_ids), **counts})
    return counts


async def poll_one(state: Child, rt: Runtime, token: str, source_id: str) -> str:
    source = rt.sources.get(source_id)
    if source is None:  # removed by a newer configuration than the leader's claim
        await asyncio.to_thread(_release, state.store, source_id, token)
        return "removed"
    try:
        mine = await asyncio.to_thread(_claim_is, state.store, source_id, token)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != cluster.LOCK_NOT_AVAILABLE:
            raise
        # The leader's claiming transaction held the row too long (a hung leader): the claim,
        # if it commits, expires and the sweeper dispatches the source again.
        log.warning("claim check timed out; the source waits for the sweeper", extra={"source": source_id})
        return "claim_unchecked"
    if not mine:
        return "claim_lost"  # polled already (a task run twice), dispatched again, or its leader died
    try:
        polled = await fetch_and_gather(source, rt)
    except Exception:
        log.exception("poll failed", extra={"source": source_id})
        return "error"
    now = rt.clock()
    if isinstance(polled, PollReport):  # backing off: due again when the backoff ends
        with state.store.connect() as conn:
            health = cluster_health(conn, source_id)
        polled = Gathered(source_id, health, "skipped")
    jitter = state.rng.uniform(0, source.jitter.total_seconds())
    due = cluster.next_check(polled.health, now, source.interval, jitter)
    items = [cluster.IntakeItem(a, None) for a in polled.fresh] + [cluster.IntakeItem(a, t) for a, t in polled.missed]
    try:
        await asyncio.to_thread(_commit, state.store, source_id, token, now, polled, items, due)
    except cluster.ClaimLost:
        log.info("claim moved on; this poll is dropped", extra={"source": source_id})
        return "claim_lost"
    return "committed"


def _commit(store: Store, source_id: str, token: str, now: Any, polled: Gathered, items: list[cluster.IntakeItem], due: Any) -> None:
    with store.transaction() as conn:
        cluster.commit_poll(
            conn, source_id=source_id, token=token, shard=0, polled_at=now, report=report_of(polled),
            items=items, health=polled.health, next_check_at=due,
        )


def _claim_is(store: Store, source_id: str, token: str) -> bool:
    with store.connect() as conn:
        return cluster.claimed(conn, source_id) == token


def _release(store: Store, source_id: str, token: str) -> None:
    with store.transaction() as conn:
        cluster.release_claim(conn, [source_id], token)


def cluster_health(conn: Any, source_id: str) -> SourceHealth:
    from monitor.store import sources

    return sources.get_health(conn, source_id)
