"""Composition of the distributed roles: what `monitor run --role leader|analysis`,
`monitor worker` and a distributed `monitor run --once` build and run.

The one-process path (`monitor run` without a role) never imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from monitor.clock import utc_now
from monitor.config.holder import ConfigHolder
from monitor.run.app import open_store
from monitor.run.leader import Leader
from monitor.run.owner import AnalysisOwner, source_order
from monitor.run.pipeline import PollReport
from monitor.run.roles import DistributedError, RoleLock, require_broker, require_postgres
from monitor.store import Store
from monitor.store import distributed as cluster

log = logging.getLogger(__name__)


def _celery(holder: ConfigHolder, role: str):  # noqa: ANN202 - a Celery app
    broker = require_broker(holder.settings, role)
    try:
        from monitor.run.worker import celery_app
    except ImportError as exc:
        raise DistributedError(
            f"{role} needs Celery, which is not installed ({exc.name}): pip install 'exportwatch-monitor[distributed]'"
        ) from None
    return celery_app(broker, holder.settings)


def _check_broker(app, role: str) -> None:  # noqa: ANN001
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:
        raise DistributedError(f"{role}: the broker at {app.conf.broker_url} is unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


@contextlib.contextmanager
def _opened(config_path: str | Path, role: str) -> Iterator[tuple[ConfigHolder, Store]]:
    holder = ConfigHolder.load(config_path)
    store = Store.open(holder.settings.store.url)
    try:
        require_postgres(store, role)
        store.upgrade()
        yield holder, store
    finally:
        store.close()


def _stop_on_signals(stopping: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)


@dataclass
class _Role:
    """What the health server reads of a role (`monitor.ops.server.AppLike`, `ServiceLike`):
    its configuration and store; `ready` while its loop runs. A standby is ready too: it is
    healthy, and takes the role within a second of the holder's death."""

    holder: ConfigHolder
    store: Store
    ready: bool = True


@contextlib.asynccontextmanager
async def _endpoints(holder: ConfigHolder, store: Store) -> AsyncIterator[None]:
    """`/healthz`, `/readyz` and `/metrics` (the leader's backlog gauges, the owner's outbox and
    developments) when `server.enabled` is set, as `monitor run` serves them."""
    from monitor.ops.server import serve_if_enabled

    role = _Role(holder, store)
    async with serve_if_enabled(role, role):
        yield


async def run_leader(config_path: str | Path) -> int:
    from alerts.digest import make_digest_job
    from monitor.run.retention import make_retention_job

    with _opened(config_path, "the leader") as (holder, store):
        app = _celery(holder, "the leader")
        _check_broker(app, "the leader")
        from monitor.run.worker import dispatcher

        leader = Leader(
            holder, store, dispatcher(app),
            digests=make_digest_job(store, holder, clock=utc_now),
            retention=make_retention_job(store, holder, clock=utc_now),
        )
        stopping = asyncio.Event()
        _stop_on_signals(stopping)
        async with _endpoints(holder, store):
            await leader.run(stopping)
    return 0


async def run_analysis(config_path: str | Path) -> int:
    from alerts.deliver import Relay

    with _opened(config_path, "the analysis owner") as (holder, store):
        relay = Relay.from_settings(store, holder.settings, clock=utc_now)
        owner = AnalysisOwner(store, relay=relay)
        stopping = asyncio.Event()
        _stop_on_signals(stopping)
        try:
            async with _endpoints(holder, store):
                await owner.run(stopping)
        finally:
            with contextlib.suppress(Exception):
                relay.release()
    return 0


def run_worker(config_path: str | Path, *, concurrency: int, pool: str) -> int:
    """`monitor worker`: Celery's own worker main loop with our app and settings."""
    with _opened(config_path, "a worker") as (holder, store):
        app = _celery(holder, "a worker")
        _check_broker(app, "a worker")
        os.environ["MONITOR_WORKER_STORE_URL"] = store.engine.url.render_as_string(hide_password=False)
    # The pool children open their own store, event loop and fetcher (after the fork).
    argv = ["worker", f"--hostname=monitor-{os.getpid()}@%h", f"--concurrency={concurrency}", f"--pool={pool}", "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", holder.settings.distributed.queue]
    app.worker_main(argv)
    return 0


async def run_once_distributed(config_path: str | Path) -> tuple[list[PollReport], object]:
    """`run --once` over workers (barrier mode): this process leads one round, waits until
    every source was polled, then drains the intake in the configuration's source order (as
    the one-process `run --once` analyses), then relays."""
    from alerts.deliver import Relay

    with _opened(config_path, "run --once (distributed)") as (holder, store):
        app = _celery(holder, "run --once (distributed)")
        _check_broker(app, "run --once (distributed)")
        from monitor.run.worker import dispatcher

        leader_lock, owner_lock = RoleLock(store, cluster.LEADER_LOCK), RoleLock(store, cluster.owner_lock(0))
        try:
            if not (await asyncio.to_thread(leader_lock.try_take) and await asyncio.to_thread(owner_lock.try_take)):
                raise DistributedError("run --once: a leader or analysis owner is running on this store; stop them first")
            leader = Leader(holder, store, dispatcher(app))
            await leader.poll_all_once()
            owner = AnalysisOwner(store)
            await asyncio.to_thread(owner.take_office)
            reports = await owner.drain(order=source_order(holder.settings))
            relay = Relay.from_settings(store, holder.settings, clock=utc_now)
            try:
                from monitor.run.app import App, deliver_all, release_holds

                assert owner.runtime is not None
                shell = App(holder, store, owner.runtime, relay)
                release_holds(shell)
                delivered = await deliver_all(shell)
            finally:
                relay.release()
        finally:
            leader_lock.release()
            owner_lock.release()
    return reports, delivered


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


__all__ = ["open_store", "run_analysis", "run_leader", "run_once_distributed", "run_worker"]
