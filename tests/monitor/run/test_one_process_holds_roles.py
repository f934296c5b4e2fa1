"""`monitor run` on PostgreSQL is every role in one process, and holds the roles' locks while
it runs: distributed roles started on the same database stand by instead of polling and
alerting a second time, a second `monitor run` refuses with one line, and `monitor status`
shows the store as the one-process store it is."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config.holder import ConfigHolder
from monitor.ops.status import collect_status
from monitor.store import Store
from monitor.store import distributed as cluster
from tests.distributed import BROKER_ENV, Process, monitor, rows, unique_queue, wait_for


def write_config(tmp_path: Path, url: str, broker: str = "") -> Path:
    path = tmp_path / "feeds.yaml"
    distributed = f"distributed:\n  broker_url: {broker}\n  queue: {unique_queue()}\n" if broker else ""
    path.write_text(f"store:\n  url: {url}\n{distributed}", encoding="utf-8")
    return path


def locked(url: str, role: str) -> bool:
    store = Store.open(url)
    try:
        with store.connect() as conn:
            return cluster.lock_session(conn, role) is not None
    finally:
        store.close()


@pytest.fixture
def one_process(pg_url: str, tmp_path: Path) -> Iterator[tuple[Path, Process]]:
    config = write_config(tmp_path, pg_url)
    assert monitor("db", "upgrade", config=config).returncode == 0
    process = Process(config, "run", log=tmp_path / "run.log")
    try:
        wait_for(lambda: locked(pg_url, cluster.owner_lock(0)), 60, process.output)
        yield config, process
    finally:
        process.stop()


def test_a_second_monitor_run_on_the_same_database_refuses_with_one_line(one_process: tuple[Path, Process]) -> None:
    config, _ = one_process
    second = monitor("run", "--once", config=config)
    assert second.returncode == 2
    assert "another process runs this database (its leader lock is held by another `monitor run`)" in second.stderr
    assert "Traceback" not in second.stderr


def test_status_shows_a_running_one_process_store_as_before(one_process: tuple[Path, Process], pg_url: str) -> None:
    config, _ = one_process
    store = Store.open(pg_url)
    try:
        assert collect_status(ConfigHolder.load(config), store, datetime.now(UTC))["distributed"] is None
    finally:
        store.close()


def test_the_lock_goes_with_the_process(one_process: tuple[Path, Process], pg_url: str) -> None:
    config, process = one_process
    process.stop()
    assert not locked(pg_url, cluster.LEADER_LOCK)
    assert monitor("run", "--once", config=config).returncode == 0


def test_a_distributed_leader_stands_by_while_monitor_run_holds_the_database(pg_url: str, tmp_path: Path) -> None:
    broker = os.environ.get(BROKER_ENV)
    if not broker:
        pytest.skip(f"{BROKER_ENV} not set (.ci/run sets it)")
    config = write_config(tmp_path, pg_url, broker)
    assert monitor("db", "upgrade", config=config).returncode == 0
    one = Process(config, "run", log=tmp_path / "run.log")
    leader = None
    try:
        wait_for(lambda: locked(pg_url, cluster.owner_lock(0)), 60, one.output)
        leader = Process(config, "run", "--role", "leader", log=tmp_path / "leader.log")
        wait_for(lambda: "standby: another process holds the role" in leader.output(), 60, leader.output)
        assert rows(pg_url, "SELECT holder FROM role_holder") == []  # it never led
        one.stop()
        wait_for(lambda: "leading" in leader.output(), 30, leader.output)  # and takes over when it goes
    finally:
        one.stop()
        if leader is not None:
            leader.stop()
