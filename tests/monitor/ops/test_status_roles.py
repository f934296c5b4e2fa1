"""`monitor status` on a distributed store: each role, who holds its lock (checked in pg_locks,
so a dead holder's row shows as stale), and the backlog counted by the real store functions.
A one-process store (SQLite, or PostgreSQL no role ever used) shows nothing of it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.config.holder import ConfigHolder
from monitor.models import SourceHealth
from monitor.ops.status import collect_status, render_status
from monitor.store import Store
from monitor.store import distributed as cluster

REPO = Path(__file__).resolve().parents[3]

# A process that takes the leader's lock the way `monitor run --role leader` does, records
# itself as the holder, and waits to be killed.
HOLDER = """
import sys, time
from monitor.clock import utc_now
from monitor.run.roles import RoleLock, holder_name
from monitor.store import Store
from monitor.store import distributed as cluster

store = Store.open(sys.argv[1])
lock = RoleLock(store, cluster.LEADER_LOCK)
assert lock.try_take()
with store.transaction() as conn:
    cluster.take_role(conn, cluster.LEADER_LOCK, holder_name(), utc_now())
print("holding", flush=True)
time.sleep(300)
"""


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store.open(pg_url)
    store.upgrade()
    yield store
    store.close()


def _holder(tmp_path: Path, url: str) -> ConfigHolder:
    config = tmp_path / "feeds.yaml"
    config.write_text(f"store:\n  url: {url}\n", encoding="utf-8")
    return ConfigHolder.load(config)


def _roles(status: dict) -> dict[str, dict]:
    return {r["role"]: r for r in status["distributed"]["roles"]}


def _wait(condition, timeout: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_live_leader_is_held_and_a_killed_ones_row_is_stale(pg_url: str, pg_store: Store, tmp_path: Path) -> None:
    holder = _holder(tmp_path, pg_url)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url], stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        now = datetime.now(UTC)
        status = collect_status(holder, pg_store, now)
        leader = _roles(status)["leader"]
        assert leader["state"] == "held"
        assert leader["holder"] == f"{socket.gethostname()}:{process.pid}"
        assert leader["epoch"] == 1 and leader["lock"]["session_pid"] > 0
        assert _roles(status)["analysis:0"]["state"] == "vacant"  # listed though nobody ever held it
        text = render_status(status, now)
        assert f"leader       held by {socket.gethostname()}:{process.pid} since " in text
        assert "analysis:0   nobody holds it" in text
        assert text.index("  leader ") < text.index("  analysis:0 ")  # the leader first

        os.killpg(process.pid, signal.SIGKILL)  # no clean release: PostgreSQL ends the session
        process.wait(10)
        _wait(lambda: _roles(collect_status(holder, pg_store, datetime.now(UTC)))["leader"]["state"] == "stale")
        status = collect_status(holder, pg_store, datetime.now(UTC))
        leader = _roles(status)["leader"]
        assert leader["holder"] == f"{socket.gethostname()}:{process.pid}" and leader["lock"] is None
        assert f"leader       STALE: {socket.gethostname()}:{process.pid} holds no lock (holder since " in render_status(status)
        assert "; epoch 1): that process is gone, and no standby took over" in render_status(status)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_standbys_are_listed_while_they_wait_and_not_once_one_took_the_role(pg_url: str, pg_store: Store, tmp_path: Path) -> None:
    from monitor.run.roles import RoleLock

    holder = _holder(tmp_path, pg_url)
    active, waiting = RoleLock(pg_store, cluster.LEADER_LOCK), RoleLock(pg_store, cluster.LEADER_LOCK)
    try:
        assert active.try_take()
        assert not waiting.try_take()  # another process holds it: this one stands by
        assert not waiting.try_take()  # and keeps one standby entry, however often it retries
        leader = _roles(collect_status(holder, pg_store, datetime.now(UTC)))["leader"]
        assert len(leader["standbys"]) == 1 and leader["standbys"][0]["session_pid"] != leader["lock"]["session_pid"]
        assert "1 standby waiting (session " in render_status(collect_status(holder, pg_store, datetime.now(UTC)))
        active.release()  # the holder stops: the standby takes over on its next try
        assert waiting.try_take()
        status = collect_status(holder, pg_store, datetime.now(UTC))
        assert _roles(status)["leader"]["standbys"] == []
        assert "no standby waiting" in render_status(status)
    finally:
        active.release()
        waiting.release()


def test_a_lock_taken_before_the_holder_recorded_itself(pg_url: str, pg_store: Store, tmp_path: Path) -> None:
    from monitor.run.roles import RoleLock

    lock = RoleLock(pg_store, cluster.owner_lock(0))
    try:
        assert lock.try_take()
        roles = _roles(collect_status(_holder(tmp_path, pg_url), pg_store, datetime.now(UTC)))
        assert roles["analysis:0"]["state"] == "taking" and roles["analysis:0"]["holder"] is None
        assert roles["leader"]["state"] == "vacant"
    finally:
        lock.release()


def _scheduled(source_id: str, host: str) -> cluster.Scheduled:
    return cluster.Scheduled(source_id, host, timedelta(minutes=30))


def test_backlog_counts_what_the_store_functions_wrote(pg_url: str, pg_store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with pg_store.transaction() as conn:
        cluster.publish_config(conn, "sources: []\n", now - timedelta(hours=1))
        # s1 and s2 share host a; s5 is not due for ten minutes.
        hosts = {"s1": "a", "s2": "a", "s3": "b", "s4": "c", "s5": "d"}
        cluster.sync_schedule(conn, [_scheduled(s, h) for s, h in hosts.items()], now - timedelta(minutes=10))
        cluster.make_due(conn, ["s5"], now + timedelta(minutes=10))
    with pg_store.transaction() as conn:  # a batch whose task never ran: its claim expired
        (stuck,) = cluster.claim_due(conn, now - timedelta(minutes=5), per_batch=50, ttl=timedelta(minutes=1), limit=1)
    with pg_store.transaction() as conn:  # host a is busy with s1, so s2 waits
        batches = {h: b for b in cluster.claim_due(conn, now, per_batch=50, ttl=timedelta(minutes=5)) for h in b.hosts}
    assert stuck.source_ids == ("s1",) and set(batches) == {"b", "c"}
    for source_id, host, polled in (("s3", "b", now - timedelta(minutes=2)), ("s4", "c", now - timedelta(seconds=30))):
        with pg_store.transaction() as conn:
            cluster.commit_poll(
                conn, source_id=source_id, token=batches[host].token, shard=0, polled_at=polled, report={},
                items=[], health=SourceHealth(source_id), next_check_at=now + timedelta(minutes=30),
            )
    with pg_store.connect() as conn:
        (analysed, _waiting) = cluster.pending_polls(conn, 0)
    with pg_store.transaction() as conn:
        cluster.mark_done(conn, [analysed.batch_id], now)

    status = collect_status(_holder(tmp_path, pg_url), pg_store, now)
    dist = status["distributed"]
    assert dist["config_version"] == 1 and dist["config_published"] == now - timedelta(hours=1)
    assert dist["backlog"] == {
        "scheduled": 5,
        "due": 1,  # s2
        "oldest_due_seconds": 600.0,
        "claimed": 1,  # s1
        "claims_expired": 1,
        "intake_waiting": 1,  # s4's poll; s3's is analysed
        "intake_lag_seconds": 30.0,
        "polls_last_5m": 2,
        "last_poll": now - timedelta(seconds=30),
    }
    assert {r["role"]: r["state"] for r in dist["roles"]} == {"analysis:0": "vacant", "leader": "vacant"}
    text = render_status(status, now)
    assert "Roles    configuration version 1, published " in text and "(60m ago)" in text
    assert "the distributed leader publishes it to the roles (configuration version 1, below)" in text
    assert "Backlog  sources: 5 scheduled, 1 due and not claimed (oldest due 10m ago), 1 being polled (1 expired: the sweeper sends them again)" in text
    assert "         intake: 1 polls waiting for analysis (oldest 30s); 2 polls committed by workers in the last 5 minutes (last 30s ago)" in text


def test_status_json_carries_the_roles(pg_url: str, pg_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pg_store.transaction() as conn:
        cluster.take_role(conn, cluster.owner_lock(0), "owner-host:77", datetime.now(UTC))
    holder = _holder(tmp_path, pg_url)
    assert main(["--config", str(holder.path), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    owner = _roles(status)["analysis:0"]
    assert owner["state"] == "stale" and owner["holder"] == "owner-host:77" and owner["epoch"] == 1
    assert isinstance(owner["since"], str) and status["distributed"]["backlog"]["scheduled"] == 0


def test_a_one_process_store_shows_no_roles(store: Store, tmp_path: Path, now: datetime) -> None:
    """SQLite, and PostgreSQL that only `monitor run` used: the status is as it was."""
    holder = _holder(tmp_path, "sqlite:///unused.db")
    status = collect_status(holder, store, now)
    assert status["distributed"] is None
    text = render_status(status, now)
    assert "Roles" not in text and "Backlog" not in text
    assert text == render_status({k: v for k, v in status.items() if k != "distributed"})
