"""What the distributed roles share: PostgreSQL checks, role locks held on a session of their
own, the id allocator and the politeness gate over every worker. Imports no Celery.

    leader    (`monitor run --role leader`)    schedule, claims, `poll_batch` tasks, sweeper,
                                               digests, retention, backlog gauges
    worker    (`monitor worker`, Celery)       fetch → parse → normalize → relevance → full
                                               text; intake, health, next due, claim cleared
    analysis  (`monitor run --role analysis`)  intake → dedup → cluster → corroborate → … →
                                               outbox, then the Slack relay
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from monitor.config.load import settings_from_text
from monitor.config.settings import Http, Settings
from monitor.store import Store
from monitor.store import distributed as cluster

log = logging.getLogger(__name__)

STANDBY_RETRY_SECONDS = 1.0


class DistributedError(Exception):
    """An expected failure of a distributed role (no PostgreSQL, no broker): one line."""


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def require_postgres(store: Store, role: str) -> None:
    if store.dialect != "postgresql":
        raise DistributedError(
            f"{role} needs PostgreSQL (store.url is {store.url}): the distributed roles share one "
            "database; on one machine `monitor run` does everything with SQLite"
        )
    try:
        store.ping_or_raise()
    except SQLAlchemyError as exc:
        raise DistributedError(f"{role}: PostgreSQL at {store.url} is unreachable: {cluster_first_line(exc)}") from None


def require_broker(settings: Settings, role: str) -> str:
    url = settings.distributed.broker_url
    if not url:
        raise DistributedError(
            f"{role} needs a broker: set distributed.broker_url (e.g. ${{MONITOR_BROKER_URL}} = "
            "amqp://guest:guest@127.0.0.1:5672//)"
        )
    return url


def cluster_first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]


class RoleLock:
    """A session advisory lock on a connection of its own: held while that session lives, so a
    dead process (or a cut connection) lets a standby take over."""

    def __init__(self, store: Store, key: str) -> None:
        self.store, self.key = store, key
        self._conn: Connection | None = None
        self._standing_by = False  # holding the role's shared standby lock on `_conn`

    def try_take(self) -> bool:
        """Take the lock if it is free. While it is not, this session holds the role's shared
        standby lock, so `monitor status` lists the process as a standby."""
        if self._conn is None:
            self._conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = cluster.try_advisory_lock(self._conn, self.key)
            if taken and self._standing_by:
                cluster.advisory_unlock_shared(self._conn, cluster.standby_lock(self.key))
                self._standing_by = False
            elif not taken and not self._standing_by:
                self._standing_by = cluster.try_advisory_lock_shared(self._conn, cluster.standby_lock(self.key))
        except SQLAlchemyError:
            self.drop()
            raise
        return taken

    def alive(self) -> bool:
        """Whether the session holding the lock still answers (else the lock is gone)."""
        if self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            self.drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                cluster.advisory_unlock(self._conn, self.key)
            self.drop()

    def drop(self) -> None:
        self._standing_by = False  # its session, and the standby lock, end with the connection
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None


async def wait_for_lock(lock: RoleLock, role: str, stopping: asyncio.Event) -> bool:
    """Standby: try every second until the lock is ours (True) or we are stopped (False)."""
    said = False
    while not stopping.is_set():
        try:
            if await asyncio.to_thread(lock.try_take):
                log.info("role taken", extra={"role": role, "holder": holder_name()})
                return True
        except SQLAlchemyError as exc:
            log.warning("role lock: PostgreSQL unreachable, retrying", extra={"role": role, "error": cluster_first_line(exc)})
        if not said:
            log.info("standby: another process holds the role", extra={"role": role})
            said = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), STANDBY_RETRY_SECONDS)
    return False


@contextlib.contextmanager
def every_role_here(store: Store) -> Iterator[None]:
    """`monitor run` on PostgreSQL holds the leader's and the analysis owner's locks while it
    runs: it is every role in one process. So distributed roles started on the same database
    (a compose file run with the `distributed` profile beside the one-process service) stand
    by instead of polling and alerting a second time, and a second `monitor run` refuses."""
    if store.dialect != "postgresql":
        yield  # SQLite: one process by construction
        return
    locks: list[RoleLock] = []
    try:
        for role in (cluster.LEADER_LOCK, cluster.owner_lock(0)):
            lock = RoleLock(store, role)
            if not lock.try_take():
                lock.drop()
                raise DistributedError(_taken_message(store, role))
            locks.append(lock)
        yield
    finally:
        for lock in locks:
            lock.release()


def _taken_message(store: Store, role: str) -> str:
    with store.connect() as conn:
        state = next((r for r in cluster.role_states(conn, (role,)) if r.role == role), None)
    who = f"held by {state.holder}" if state is not None and state.holder else "held by another `monitor run`"
    return (
        f"another process runs this database (its {role} lock is {who}): stop it, or give this "
        f"monitor a store of its own (store.url is {store.url})"
    )


class IdAllocator:
    """Article and development ids from PostgreSQL sequences."""

    BLOCK = 1  # one at a time: a restarted owner leaves no gap (a round trip per new article)

    def __init__(self, store: Store) -> None:
        self.store = store
        self._free: dict[str, list[int]] = {"article": [], "development": []}
        with store.transaction() as conn:
            cluster.ensure_sequences(conn)

    def __call__(self, kind: str) -> int:
        free = self._free[kind]
        if not free:
            with self.store.connect() as conn:
                free.extend(reversed(cluster.take_ids(conn, kind, self.BLOCK)))
                conn.commit()
        return free.pop()


class PostgresHostGate:
    """`http.per_host` requests in flight per host and `http.article_min_interval` between
    article pages, over every worker: a slot is a session advisory lock (host, slot number)
    on a pooled connection held for the request, so a killed worker frees its slots.

    A batch knows the hosts its sources live on: `hold` takes the first slot of each of them
    in one statement, on a connection kept for the batch, and `slot` lends that slot to one
    request at a time (a second request to the host takes another slot the usual way). Two
    statements a batch then stand for the two every feed request would cost; while the batch
    runs, other workers have the host's other slots (with `per_host: 1`, they wait for the
    batch to end)."""

    POLL_SECONDS = 0.02

    def __init__(self, store: Store, http: Http) -> None:
        self.store, self.http = store, http
        # Slots are held on connections of the gate's own, at most `http.concurrency` at once
        # (more slots than requests in flight would only keep other workers off a host). A
        # batch of many hosts takes its slots before the Fetcher's global limit; on the store's
        # pool they would leave no connection for the commits. The connections stay open in
        # autocommit between slots: a slot is then two statements (lock, unlock), not a pool
        # checkout, a ping and a reset besides.
        connections = http.concurrency
        # One more for the slots a batch holds (`hold`).
        self._slots = Store.open(store.engine.url.render_as_string(hide_password=False), pool=connections + 1)
        self._connections = asyncio.Semaphore(connections)
        self._idle: list[Connection] = []  # list.append / pop are atomic: threads share it
        self._holding: Connection | None = None  # the batch's connection, with its held slots
        self._held: dict[str, str] = {}  # host → its held slot's key
        self._lent: set[str] = set()  # hosts whose held slot a request has now

    def close(self) -> None:
        if self._holding is not None:
            self._discard(self._holding)
            self._holding, self._held = None, {}
        while self._idle:
            self._discard(self._idle.pop())
        self._slots.close()

    async def hold(self, hosts: Iterable[str]) -> None:
        """Take the first slot of each of these hosts (those another worker holds are left to
        `slot`), until `release`."""
        await self.release()
        wanted = {host: cluster.host_slot_key(host, 0) for host in hosts if host}
        if not wanted:
            return
        taken = set(await asyncio.to_thread(self._hold, list(wanted.values())))
        self._held = {host: key for host, key in wanted.items() if key in taken}

    def _hold(self, keys: list[str]) -> list[str]:
        if self._holding is None:
            self._holding = self._slots.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return cluster.try_advisory_locks(self._holding, keys)
        except BaseException:
            self._discard(self._holding)
            self._holding = None
            raise

    async def release(self) -> None:
        """Give back what `hold` took (if the unlock fails the connection is closed: its
        session, and its locks, end with it)."""
        keys, self._held, self._lent = list(self._held.values()), {}, set()
        if keys and self._holding is not None:
            await asyncio.to_thread(self._release, keys)

    def _release(self, keys: list[str]) -> None:
        assert self._holding is not None
        try:
            cluster.advisory_unlock_many(self._holding, keys)
        except Exception:
            log.warning("could not give back held host slots; closing their connection", exc_info=True)
            self._discard(self._holding)
            self._holding = None

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[object]:
        held = self._held.get(host)
        if held is not None and host not in self._lent:
            self._lent.add(host)  # the batch's slot: no statement to take or give back
            try:
                yield held
            finally:
                self._lent.discard(host)
            return
        conn, key = await self._take(host)
        try:
            yield key
        finally:
            try:
                await asyncio.to_thread(self._give_back, conn, key)
            finally:
                self._connections.release()

    async def _take(self, host: str) -> tuple[Connection, str]:
        while True:
            await self._connections.acquire()
            try:
                found = await asyncio.to_thread(self._try_slots, host)
            except BaseException:
                self._connections.release()
                raise
            if found is not None:
                return found  # its connection is given back with the slot
            self._connections.release()
            await asyncio.sleep(self.POLL_SECONDS)

    def _connection(self) -> Connection:
        try:
            return self._idle.pop()
        except IndexError:
            return self._slots.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _try_slots(self, host: str) -> tuple[Connection, str] | None:
        conn = self._connection()
        try:
            for slot in range(self.http.per_host):
                key = cluster.host_slot_key(host, slot)
                if cluster.try_advisory_lock(conn, key):
                    return conn, key
        except BaseException:
            self._discard(conn)  # broken, or in an unknown state: never reused
            raise
        self._idle.append(conn)
        return None

    def _give_back(self, conn: Connection, key: str) -> None:
        try:
            cluster.advisory_unlock(conn, key)
        except BaseException:
            self._discard(conn)  # its session ends, and the lock with it
            raise
        self._idle.append(conn)

    @staticmethod
    def _discard(conn: Connection) -> None:
        with contextlib.suppress(Exception):
            conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()

    async def article_pause(self, host: str) -> None:
        gap = self.http.article_min_interval
        if not gap:
            return
        wait = await asyncio.to_thread(self._reserve, host, gap)
        if wait > 0:
            await asyncio.sleep(wait)

    def _reserve(self, host: str, gap: timedelta) -> float:
        with self.store.transaction() as conn:
            return cluster.reserve_article_slot(conn, host, gap)


class VersionedSettings:
    """The leader's configuration versions, parsed once each (every process expands its own
    environment: secrets never go into the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._parsed: dict[int, Settings] = {}

    def get(self, version: int | None = None) -> tuple[int, Settings]:
        if version is not None and version in self._parsed:
            return version, self._parsed[version]
        with self.store.connect() as conn:
            if version is None:  # the newest: its number, and its text only when it is new
                newest = cluster.latest_config_version(conn)
                if newest is not None and newest in self._parsed:
                    return newest, self._parsed[newest]
            found = cluster.config_text(conn, version)
        if found is None:
            raise DistributedError("no configuration in the store yet: start the leader (`monitor run --role leader`) first")
        number, text = found
        if number not in self._parsed:
            self._parsed[number] = settings_from_text(text, f"configuration version {number}", path=os.getcwd() + "/feeds.yaml")
        return number, self._parsed[number]


def utc_seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


Clock = Callable[[], datetime]
