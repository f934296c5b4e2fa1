"""Leader death (issue 15): "kill the leader 10 times: a standby dispatches within 5 s; no
source is polled twice in one interval."

Three `monitor run --role leader` processes (one leads, two stand by), two fetch workers and
the analysis owner run on PostgreSQL and a real broker against feeds on loopback hosts that
log every request. The test kills whichever process holds the leader role (SIGKILL, while
polls it dispatched are in flight), measures from the kill to the new leader's first
dispatch (the "first dispatch as leader" line it logs), and starts a new standby so there
are always spares. The feeds' request log then shows every gap between two polls of a
source: none shorter than the source's interval (a conditional GET is a request too).

Needs MONITOR_TEST_POSTGRES_URL and MONITOR_TEST_BROKER_URL (.ci/run sets both); 10 kills
with MONITOR_TEST_FULL_KILLS=1, 2 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from monitor.config.holder import ConfigHolder
from monitor.run.leader import Leader
from monitor.store import Store
from monitor.store import distributed as cluster
from monitor.store.distributed import Batch
from monitor.store.schema import source_state
from tests.conftest import postgres_schema
from tests.distributed import (
    BROKER_ENV,
    FULL_ENV,
    POSTGRES_ENV,
    Process,
    needs,
    rows,
    unique_queue,
    wait_for,
    workers,
)
from tests.servers import LocalServer

pytestmark = pytest.mark.timeout(900)

INTERVAL = 2.0  # seconds between two polls of a source, at least
JITTER = 2.0  # spreads the sources (after a few rounds), so some source is due at any moment
FEED_DELAY = 0.2  # seconds each feed takes to answer: polls are in flight when the leader dies
TAKEOVER_LIMIT = 5.0  # the "a standby dispatches within 5 s"
HOSTS = 16  # every other host serves two feeds (one batch per host in flight): 24 sources
WARM_UP_POLLS = 3  # polls of every source before the first kill (their due times spread)
FIRST_DISPATCH = "first dispatch as leader"  # the line a new leader logs (monitor/run/leader.py)


def leader_kills() -> int:
    """10 in CI (MONITOR_TEST_FULL_KILLS, set by .ci/run), 2 in a developer's default run."""
    return 10 if os.environ.get(FULL_ENV) else 2


class FeedHosts:
    """Feeds on loopback hosts 127.0.0.60 to .75; each request's arrival time, per source."""

    def __init__(self) -> None:
        self.servers: list[LocalServer] = []
        self.hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def sources(self) -> list[tuple[str, str]]:
        out = []
        for i, server in enumerate(self.servers):
            for j in range(2 if i % 2 == 0 else 1):
                out.append((f"h{i}-f{j}", server.url(f"/f{j}.xml")))
        return out

    def _handler(self, source_id: str, body: bytes):  # noqa: ANN202
        async def handler(request: web.Request) -> web.Response:
            with self._lock:
                self.hits.setdefault(source_id, []).append(time.time())
            await asyncio.sleep(FEED_DELAY)
            return web.Response(body=body, content_type="application/rss+xml")

        return handler

    @contextmanager
    def running(self) -> Iterator[FeedHosts]:
        try:
            for i in range(HOSTS):
                self.servers.append(LocalServer(host=f"127.0.0.{60 + i}").start())
                for j in range(2 if i % 2 == 0 else 1):
                    self.servers[i].add(f"/f{j}.xml", self._handler(f"h{i}-f{j}", feed(f"h{i}-f{j}")))
            yield self
        finally:
            for server in self.servers:
                server.stop()


def feed(source_id: str) -> bytes:
    items = "".join(
        f"<item><title>Harbour notes {source_id} {n}</title><link>http://127.0.0.1/{source_id}/{n}</link>"
        f"<guid>{source_id}-{n}</guid><pubDate>Mon, 09 Mar 2026 1{n}:00:00 GMT</pubDate>"
        "<description>Ferries ran on time.</description></item>"
        for n in range(2)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{source_id}</title>{items}</channel></rss>'.encode()


def write_config(path: Path, sources: list[tuple[str, str]], *, store: str, broker: str, queue: str, batch_size: int = 50) -> Path:
    listed = "".join(f"  - id: {sid}\n    name: {sid}\n    url: {url}\n" for sid, url in sources)
    path.write_text(
        f"""store:
  url: {store}
http:
  allow_private_addresses: true
defaults:
  interval: {INTERVAL:g}s
  jitter: {JITTER:g}s
sources:
{listed}topics:
  - id: ai-export-controls
    name: AI export controls
    rules:
      any: ["export control*", "Entity List"]
distributed:
  broker_url: {broker}
  queue: {queue}
  claim_timeout: 5m
  batch_size: {batch_size}
"""
    )
    return path


def events(process: Process, name: str) -> list[tuple[float, dict]]:
    """(unix time, fields) of each JSON log line of `process` whose event is `name`."""
    found = []
    for line in process.output().splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == name:
            found.append((datetime.fromisoformat(entry["timestamp"]).timestamp(), entry))
    return found


def holder_pid(url: str) -> int | None:
    try:
        found = rows(url, "SELECT holder FROM role_holder WHERE role = 'leader'")
    except Exception:  # the tables are not there yet
        return None
    return int(found[0][0].rsplit(":", 1)[1]) if found else None


def claim_tokens(url: str) -> set[str]:
    return {row[0] for row in rows(url, "SELECT claim_token FROM source_state WHERE claim_token IS NOT NULL")}


class Leaders:
    """The leader processes of one test: whichever leads, and spares started as they die."""

    def __init__(self, config: Path, tmp: Path, url: str, count: int) -> None:
        self.config, self.tmp, self.url = config, tmp, url
        self.started = 0
        self.alive: list[Process] = []
        for _ in range(count):
            self.spare()

    def spare(self) -> Process:
        process = Process(self.config, "--log-format", "json", "run", "--role", "leader", log=self.tmp / f"leader{self.started}.log")
        self.started += 1
        self.alive.append(process)
        return process

    def leading(self) -> Process | None:
        """The process the role_holder table names, once it dispatched."""
        pid = holder_pid(self.url)
        return next((p for p in self.alive if p.pid == pid and events(p, FIRST_DISPATCH)), None)

    def describe(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-1500:]}" for p in self.alive)

    def kill_leader(self) -> tuple[float, set[str]]:
        """SIGKILL the leader while polls it dispatched are in flight; a standby must take
        over. Returns (seconds from the kill to the successor's first dispatch, the claim
        tokens in flight at the kill); a new standby is started and ready."""
        victim = self.leading()
        assert victim is not None, self.describe()
        wait_for(lambda: bool(claim_tokens(self.url)), 30, self.describe)
        in_flight = claim_tokens(self.url)
        killed_at = time.time()
        victim.kill()
        self.alive.remove(victim)

        def dispatched() -> list[tuple[float, Process]]:
            return [(at, p) for p in self.alive for at, _ in events(p, FIRST_DISPATCH) if at > killed_at]

        wait_for(lambda: bool(dispatched()), 60, self.describe)
        at, successor = min(dispatched(), key=lambda found: found[0])
        wait_for(lambda: holder_pid(self.url) == successor.pid, 10, self.describe)
        spare = self.spare()
        wait_for(lambda: bool(events(spare, "standby: another process holds the role")), 90, spare.output)
        return at - killed_at, in_flight


def test_a_standby_dispatches_within_5_s_of_each_leader_kill_and_no_source_is_polled_twice_in_an_interval(tmp_path: Path) -> None:
    env = needs(POSTGRES_ENV, BROKER_ENV)
    kills = leader_kills()
    takeovers: list[float] = []
    in_flight: set[str] = set()  # claim tokens of batches in flight when their leader died
    with FeedHosts().running() as farm, postgres_schema(env[POSTGRES_ENV]) as url:
        sources = [sid for sid, _ in farm.sources()]
        config = write_config(tmp_path / "cluster.yaml", farm.sources(), store=url, broker=env[BROKER_ENV], queue=unique_queue())
        with workers(config, 2, tmp_path, concurrency=2):
            leaders = Leaders(config, tmp_path, url, 3)
            owner = Process(config, "run", "--role", "analysis", log=tmp_path / "owner.log")
            try:
                wait_for(lambda: leaders.leading() is not None, 90, leaders.describe)
                wait_for(
                    lambda: all(len(farm.hits.get(sid, ())) >= WARM_UP_POLLS for sid in sources), 90,
                    lambda: f"polls: { {sid: len(farm.hits.get(sid, ())) for sid in sources} }",
                )
                for _ in range(kills):
                    took, tokens = leaders.kill_leader()
                    takeovers.append(took)
                    in_flight |= tokens
                # After the last kill the schedule goes on: every source is polled twice more.
                after = time.time()
                wait_for(
                    lambda: all(sum(t > after for t in farm.hits[sid]) >= 2 for sid in sources), 60,
                    lambda: f"last polls: { {sid: farm.hits[sid][-2:] for sid in sources} }, last kill's takeover done at {after}",
                )
            finally:
                for process in (*leaders.alive, owner):
                    process.stop()
        hits = {sid: sorted(times) for sid, times in farm.hits.items()}
        listed = ", ".join(f"'{token}'" for token in in_flight)
        finished = rows(url, f"SELECT count(DISTINCT claim_token) FROM intake_batch WHERE claim_token IN ({listed})")[0][0]

    print(
        f"\nleader kills: {kills}; batches in flight at a kill: {len(in_flight)}, committed after it: {finished}; "
        f"takeover (kill → first dispatch): median {statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s "
        f"({', '.join(f'{t:.2f}' for t in takeovers)}); {sum(map(len, hits.values()))} polls of {len(hits)} sources"
    )
    assert len(takeovers) == kills
    assert finished, "no batch dispatched by a killed leader was polled after its death: the test missed its case"
    slow = [round(t, 2) for t in takeovers if t > TAKEOVER_LIMIT]
    assert not slow, f"a standby dispatched later than {TAKEOVER_LIMIT:g} s after the kill: {slow} (all: {takeovers})"
    twice = {
        sid: [(round(a, 3), round(b - a, 3)) for a, b in zip(times, times[1:], strict=False) if b - a < INTERVAL - 0.05]
        for sid, times in hits.items()
    }
    twice = {sid: found for sid, found in twice.items() if found}
    assert not twice, f"sources polled twice within their {INTERVAL:g} s interval (time, gap): {twice}"


# -- a leader that dies between claiming and sending --------------------------------------------


class Died(BaseException):
    """The leader process dies here (SIGKILL): nothing after this line runs, no handler."""


@contextmanager
def leader_store(tmp_path: Path) -> Iterator[tuple[ConfigHolder, Store]]:
    """A PostgreSQL store of its own and a configuration of three due sources, a batch each (no
    broker: the tests below hand the leader their own dispatch)."""
    base = needs(POSTGRES_ENV)[POSTGRES_ENV]
    with postgres_schema(base) as url:
        sources = [(f"s{n}", f"http://127.0.0.{60 + n}:9/feed.xml") for n in range(3)]
        path = write_config(tmp_path / "leader.yaml", sources, store=url, broker="amqp://unused", queue="unused", batch_size=1)
        store = Store.open(url)
        try:
            store.upgrade()
            yield ConfigHolder.load(path), store
        finally:
            store.close()


def test_a_leader_killed_after_claiming_leaves_no_claim_its_successor_must_wait_out(tmp_path: Path) -> None:
    """The old leader claims every due source, then dies before (or while) sending its tasks.
    Its successor dispatches them in its first round, not after `claim_timeout` (5 min); a
    task the dead leader did send finds its claim gone, so the source is polled once."""
    with leader_store(tmp_path) as (holder, store):
        sent_by_dead: list[Batch] = []

        def send_then_die(version: int, batch: Batch) -> None:
            sent_by_dead.append(batch)  # the broker has it; the process dies before the next line
            raise Died

        dead = Leader(holder, store, send_then_die)
        dead.take_office()
        with pytest.raises(Died):
            dead.tick()
        assert sent_by_dead

        sent: list[Batch] = []
        successor = Leader(holder, store, lambda version, batch: sent.append(batch))
        successor.take_office()
        successor.tick()
        assert sorted(s for b in sent for s in b.source_ids) == ["s0", "s1", "s2"], "claims of the dead leader still wait"
        with store.connect() as conn:
            for batch in sent_by_dead:  # what a worker checks before it polls
                assert all(token != batch.token for token in cluster.claims(conn, batch.source_ids).values())


def read_claim(store: Store, source_id: str, into: list[str | None]) -> None:
    """A worker's check of its claim before it polls (monitor/run/worker.py, poll_one)."""
    with store.connect() as conn:
        into.append(cluster.claims(conn, [source_id])[source_id])


def test_a_worker_checking_its_claim_waits_for_the_leaders_claim_to_commit_or_roll_back(tmp_path: Path) -> None:
    """The leader sends a batch before its claim commits: the worker's check must see the
    outcome (its token, or no claim when the leader died), never the state before it."""
    with leader_store(tmp_path) as (holder, store):
        Leader(holder, store, lambda version, batch: None).publish()
        for outcome in ("commit", "rollback"):
            with store.transaction() as conn:
                conn.execute(update(source_state).values(next_check_at=datetime.now(UTC), claim_token=None, claim_expires=None))
            seen: list[str | None] = []
            with store.engine.connect() as leader_conn:
                transaction = leader_conn.begin()
                batches = cluster.claim_due(leader_conn, datetime.now(UTC), per_batch=50, ttl=timedelta(minutes=5))
                batch = batches[0]

                worker = threading.Thread(target=read_claim, args=(store, batch.source_ids[0], seen))
                worker.start()
                worker.join(0.5)
                assert worker.is_alive(), f"{outcome}: the worker read the claim before the leader's transaction ended: {seen}"
                transaction.commit() if outcome == "commit" else transaction.rollback()
                worker.join(10)
            assert seen == [batch.token if outcome == "commit" else None], outcome


def test_a_claim_check_gives_up_after_its_lock_timeout(tmp_path: Path) -> None:
    """A hung leader (stopped mid-round) must not hold a worker forever: the check fails with
    PostgreSQL's lock_timeout error, which the worker reads as "leave it to the sweeper"."""
    with leader_store(tmp_path) as (holder, store):
        Leader(holder, store, lambda version, batch: None).publish()
        with store.engine.connect() as leader_conn, leader_conn.begin():
            batch = cluster.claim_due(leader_conn, datetime.now(UTC), per_batch=50, ttl=timedelta(minutes=5))[0]
            started = time.monotonic()
            with store.connect() as conn, pytest.raises(OperationalError) as raised:
                cluster.claims(conn, batch.source_ids[:1], wait="200ms")
            assert 0.15 < time.monotonic() - started < 5
        assert getattr(raised.value.orig, "sqlstate", None) == cluster.LOCK_NOT_AVAILABLE


def test_with_the_broker_down_the_leader_gives_every_claim_back_and_says_so_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with leader_store(tmp_path) as (holder, store):
        attempts: list[Batch] = []

        def broker_down(version: int, batch: Batch) -> None:
            attempts.append(batch)
            raise ConnectionRefusedError("[Errno 111] Connection refused")

        leader = Leader(holder, store, broker_down)
        leader.take_office()
        with caplog.at_level(logging.ERROR, logger="monitor.run.leader"):
            assert leader.tick() == []
        assert len(attempts) == 1, "one failed send is enough to know the broker is down"
        with store.connect() as conn:
            assert cluster.claims_in_flight(conn) == 0
        # Errors only: an earlier test that set up logging (the CLI's) leaves INFO records on.
        said = [r.getMessage() for r in caplog.records if r.name == "monitor.run.leader" and r.levelno >= logging.ERROR]
        assert said == ["could not dispatch 3 batch(es); trying again next round: [Errno 111] Connection refused"]
