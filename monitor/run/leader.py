"""The leader (`monitor run --role leader`): one at a time, elected by a PostgreSQL session
advisory lock; standbys try again every second.

Every second the leader drops claims that expired (the sweeper), claims due sources with
FOR UPDATE SKIP LOCKED, groups them by host (a host's sources in one batch, at most one batch
of a host in flight, hosts packed up to `distributed.batch_size` sources a batch), and hands
each batch to the dispatcher (a Celery `poll_batch` task) before the claim commits, so a
leader killed in between leaves no claim behind. A claim whose task never runs expires and
its sources go out again under a new token; a task that runs late finds its token gone and
writes nothing. It also publishes the validated feeds.yaml as a new configuration version
when it changes, runs the digests and retention, and sets the backlog gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from monitor.clock import utc_now
from monitor.config.holder import ConfigHolder
from monitor.config.settings import Settings
from monitor.config.sources import effective_sources
from monitor.ops import metrics
from monitor.run.roles import RoleLock, holder_name, wait_for_lock
from monitor.store import Store
from monitor.store import distributed as cluster

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
CONFIG_CHECK_SECONDS = 5.0
DIGEST_EVERY_SECONDS = 60.0
RETENTION_EVERY_SECONDS = 24 * 3600.0

Dispatch = Callable[[int, cluster.Batch], None]


class Leader:
    def __init__(
        self,
        holder: ConfigHolder,
        store: Store,
        dispatch: Dispatch,
        *,
        clock: Callable[[], datetime] = utc_now,
        digests: Callable[[], Awaitable[object]] | None = None,
        retention: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.holder, self.store, self.dispatch, self.clock = holder, store, dispatch, clock
        self.digests, self.retention = digests, retention
        self.version = 0
        self.rng = random.Random()
        self._office_since: float | None = None  # monotonic time the lock was taken
        self._dispatched = False  # since taking office (its first dispatch is logged)

    @property
    def settings(self) -> Settings:
        return self.holder.settings

    async def run(self, stopping: asyncio.Event) -> None:
        """Stand by, lead while the lock is ours, stand by again if it is lost; until stopped."""
        lock = RoleLock(self.store, cluster.LEADER_LOCK)
        while not stopping.is_set():
            if not await wait_for_lock(lock, "leader", stopping):
                break
            try:
                await self._lead(lock, stopping)
            finally:
                lock.release()

    async def _lead(self, lock: RoleLock, stopping: asyncio.Event) -> None:
        self._office_since = time.monotonic()
        await asyncio.to_thread(self.take_office)
        last = {"config": time.monotonic(), "digests": 0.0, "retention": time.monotonic()}
        while not stopping.is_set():
            if not await asyncio.to_thread(lock.alive):
                log.error("leader: the lock's session is gone; standing by")
                return
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # a bad tick (database blip) must not end the leadership
                log.exception("leader tick failed")
            await self._periodic(last)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), TICK_SECONDS)

    async def _periodic(self, last: dict[str, float]) -> None:
        now = time.monotonic()
        if now - last["config"] >= CONFIG_CHECK_SECONDS:
            last["config"] = now
            if self.holder.changed_on_disk():
                ok, message = self.holder.reload()
                log.log(logging.INFO if ok else logging.ERROR, "config reload", extra={"ok": ok, "detail": message})
                if ok:
                    await asyncio.to_thread(self.publish)
        for name, job, every in (("digests", self.digests, DIGEST_EVERY_SECONDS), ("retention", self.retention, RETENTION_EVERY_SECONDS)):
            if job is not None and now - last[name] >= every:
                last[name] = now
                try:
                    await job()
                except Exception:
                    log.exception("leader job failed", extra={"job": name})

    def take_office(self) -> None:
        """Publish the configuration, match the schedule to it, record who leads."""
        self.publish()
        with self.store.transaction() as conn:
            cluster.take_role(conn, "leader", holder_name(), self.clock())
        self._dispatched = False
        log.info("leading", extra={"holder": holder_name(), "config_version": self.version})

    def publish(self) -> None:
        now = self.clock()
        wanted = [
            cluster.Scheduled(s.id, urlsplit(s.url).hostname or "", s.interval) for s in effective_sources(self.settings)
        ]
        with self.store.transaction() as conn:
            self.version = cluster.publish_config(conn, self.holder.path.read_text(encoding="utf-8"), now)
            cluster.sync_schedule(conn, wanted, now)

    def tick(self) -> list[cluster.Batch]:
        """One round: sweep, claim, dispatch; the batches dispatched.

        The tasks go out inside the claiming transaction, before it commits: a leader that dies
        between the two leaves no claim behind (its successor dispatches those sources in its
        first round; a task it did send finds no claim and is dropped). Sent after the commit,
        a claim whose task never left would wait out `distributed.claim_timeout`. A worker's
        check of its claims waits for this transaction to end (`cluster.claims`)."""
        now = self.clock()
        conf = self.settings.distributed
        sent: list[cluster.Batch] = []
        with self.store.transaction() as conn:
            expired = cluster.release_expired(conn, now)
            batches = cluster.claim_due(conn, now, per_batch=conf.batch_size, ttl=conf.claim_timeout)
            for n, batch in enumerate(batches):
                try:
                    self.dispatch(self.version, batch)
                except Exception as exc:  # broker down: give these claims back, try next tick
                    unsent = batches[n:]
                    log.error(
                        "could not dispatch %d batch(es); trying again next round: %s", len(unsent),
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
                    for batch_ in unsent:
                        cluster.release_claim(conn, batch_.source_ids, batch_.token)
                    break
                sent.append(batch)
            cluster.heartbeat(conn, "leader", holder_name(), now)
        if expired:
            log.warning("claims expired; dispatching their sources again", extra={"sources": expired[:20], "count": len(expired)})
        if sent and not self._dispatched:
            # After a failover this line says when polling resumed (README: within seconds).
            self._dispatched = True
            since = self._office_since
            log.info(
                "first dispatch as leader",
                extra={
                    "holder": holder_name(), "batches": len(sent), "sources": sum(len(b.source_ids) for b in sent),
                    "seconds_since_lock": round(time.monotonic() - since, 3) if since is not None else None,
                },
            )
        self._gauges(now)
        return sent

    def _gauges(self, now: datetime) -> None:
        with self.store.connect() as conn:
            oldest_due = cluster.oldest_due_age(conn, now)
            waiting, lag = cluster.intake_lag(conn, now)
            in_flight = cluster.claims_in_flight(conn)
        metrics.observe_backlog(oldest_due=oldest_due, intake_waiting=waiting, intake_lag=lag, claims=in_flight)

    # -- barrier mode (`run --once`) --------------------------------------------------------

    async def poll_all_once(self, *, timeout: timedelta = timedelta(minutes=10), take_office: bool = True) -> None:
        """Every configured source due now; dispatch until every one was polled (the barrier).
        `take_office=False`: this leader published the configuration already (a leader that
        runs round after round, as the bench's does)."""
        if take_office:
            await asyncio.to_thread(self.take_office)
        ids = [s.id for s in effective_sources(self.settings)]
        with self.store.transaction() as conn:
            cluster.make_due(conn, ids, self.clock())
        deadline = time.monotonic() + timeout.total_seconds()
        while time.monotonic() < deadline:
            await asyncio.to_thread(self.tick)
            with self.store.connect() as conn:
                left = cluster.due_count(conn, self.clock()) + cluster.claims_in_flight(conn)
            if not left:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("not every source was polled in time: are workers running (`monitor worker`)?")
