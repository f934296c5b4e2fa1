"""The distributed roles serve `/healthz`, `/readyz` and `/metrics` as `monitor run` does when
`server.enabled` is set: the leader's backlog gauges can be scraped, and a probe can tell a
live role from a hung one."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ENV, postgres_schema
from tests.distributed import BROKER_ENV, Process, monitor, needs, unique_queue, wait_for


@pytest.fixture
def pg_url() -> Iterator[str]:
    needs(POSTGRES_ENV, BROKER_ENV)
    with postgres_schema(os.environ[POSTGRES_ENV]) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.parametrize("role", ["leader", "analysis"])
def test_a_role_serves_health_and_metrics(role: str, pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"store:\n  url: {pg_url}\n"
        f"server:\n  enabled: true\n  port: {port}\n"
        f"distributed:\n  broker_url: {os.environ[BROKER_ENV]}\n  queue: {unique_queue()}\n",
        encoding="utf-8",
    )
    assert monitor("db", "upgrade", config=config).returncode == 0
    if role == "analysis":  # the owner reads the configuration the leader publishes
        leader = Process(config, "run", "--role", "leader", log=tmp_path / "leader-first.log")
        wait_for(lambda: "leading" in leader.output(), 60, leader.output)
        leader.stop()
    process = Process(config, "run", "--role", role, log=tmp_path / f"{role}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/healthz")[0] == 200, 60, process.output)
        status, body = get(f"{base}/readyz")
        assert status == 200, body
        status, body = get(f"{base}/metrics")
        assert status == 200
        assert 'monitor_backlog{measure="intake_waiting"}' in body
        assert "monitor_outbox_depth" in body
    finally:
        process.stop()
    assert get(f"{base}/healthz")[0] == 0  # gone with the process
