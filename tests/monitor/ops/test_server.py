"""The metrics and health server, on a real port, as a Prometheus scraper and a probe see it."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.holder import ConfigHolder
from monitor.models import Alert, AlertKind, NewPayload, SourceHealth
from monitor.ops.server import serve_if_enabled
from monitor.run.app import open_app
from monitor.run.scheduler import Service
from monitor.store import Store, outbox, sources

CONFIG = """
store:
  url: sqlite:///monitor.db
server:
  enabled: {enabled}
sources:
  - id: wire
    name: Wire
    url: http://127.0.0.1:9/feed.xml
"""


def write_config(tmp_path: Path, *, enabled: bool = True) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(enabled=str(enabled).lower()), encoding="utf-8")
    return path


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def get_json(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


@dataclass
class Parts:
    """What serve_if_enabled reads from an App: a holder and a store."""

    holder: ConfigHolder
    store: Store


class NotStarted:
    ready = False


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[str, Service, Store]]:
    """The real app and Service of `monitor run`, with the server on a free port."""
    async with open_app(write_config(tmp_path)) as app:
        service = Service(app.holder, app.runtime, relay=app.relay.deliver_due)
        async with serve_if_enabled(app, service, port=0) as server:
            assert server is not None
            yield server.url, service, app.store
            service.request_stop()


async def test_disabled_by_default_serves_nothing(tmp_path: Path) -> None:
    path = write_config(tmp_path, enabled=False)
    parts = Parts(ConfigHolder.load(path), Store.open(f"sqlite:///{tmp_path / 'm.db'}"))
    async with serve_if_enabled(parts, NotStarted(), port=0) as server:
        assert server is None
    parts.store.close()


async def test_binds_loopback_unless_configured(running: tuple[str, Service, Store]) -> None:
    url, _service, _store = running
    assert url.startswith("http://127.0.0.1:")


async def test_healthz_answers_while_the_process_lives(running: tuple[str, Service, Store]) -> None:
    url, _service, _store = running
    status, body = await get_json(url + "/healthz")
    assert (status, body) == (200, {"alive": True})


async def test_readyz_waits_for_the_scheduler_then_turns_ready(running: tuple[str, Service, Store]) -> None:
    url, service, _store = running
    status, body = await get_json(url + "/readyz")
    assert status == 503 and body["reasons"] == ["scheduler not running"]

    task = asyncio.create_task(service.run())
    for _ in range(200):  # run() sets ready once the scheduler has started
        if service.ready:
            break
        await asyncio.sleep(0.01)
    status, body = await get_json(url + "/readyz")
    assert (status, body) == (200, {"ready": True, "reasons": []})

    service.request_stop()
    await task
    status, body = await get_json(url + "/readyz")
    assert status == 503 and "scheduler not running" in body["reasons"]


async def test_readyz_reports_an_unreachable_store(tmp_path: Path) -> None:
    class Running:
        ready = True

    # Nothing listens on port 1 of loopback: the connection is refused at once.
    dead = Store.open("postgresql+psycopg://monitor@127.0.0.1:1/monitor?connect_timeout=2")
    parts = Parts(ConfigHolder.load(write_config(tmp_path)), dead)
    try:
        async with serve_if_enabled(parts, Running(), port=0) as server:
            assert server is not None
            status, body = await get_json(server.url + "/readyz")
            assert status == 503
            assert body["reasons"] == ["store not reachable (postgresql+psycopg://monitor@127.0.0.1:1/monitor?connect_timeout=2)"]
            health, _ = await get_json(server.url + "/healthz")
            assert health == 200  # alive, just not ready: no restart loop for a database outage
            status, _ctype, _text = await get(server.url + "/metrics")
            assert status == 200  # still scrapeable, store gauges keep their last values
    finally:
        dead.close()


async def test_metrics_are_prometheus_text_with_store_gauges(running: tuple[str, Service, Store]) -> None:
    url, _service, store = running
    now = datetime.now(UTC)
    with store.transaction() as conn:
        for n in range(3):
            payload = NewPayload(reason="corroborated", independent=2, impact=5, oncall=False, article_ids=())
            outbox.enqueue(conn, Alert(AlertKind.NEW, "#exports", f"dev-{n}", payload=payload, created=now))
        sources.save_health(conn, SourceHealth("wire", last_ok=now))
        sources.save_health(conn, SourceHealth("removed-long-ago", last_ok=now))
    status, content_type, text = await get(url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain") and "version=" in content_type
    families = {family.name: family for family in text_string_to_metric_families(text)}
    depth = families["monitor_outbox_depth"].samples[0].value
    assert depth == 3
    states = {s.labels["state"]: s.value for s in families["monitor_developments"].samples}
    assert states["corroborated"] == 0 and set(states) >= {"single_source", "corroborated"}
    assert "monitor_fetch_duration_seconds" in families
    # Last success survives a restart (read from the store); unconfigured sources are left out.
    last = {s.labels["source"]: s.value for s in families["monitor_source_last_success_timestamp_seconds"].samples}
    assert last["wire"] == pytest.approx(now.timestamp())
    assert "removed-long-ago" not in last


async def test_unknown_paths_are_404(running: tuple[str, Service, Store]) -> None:
    url, _service, _store = running
    status, _ctype, _text = await get(url + "/admin")
    assert status == 404


async def test_a_port_in_use_is_one_clear_config_error(tmp_path: Path) -> None:
    import socket

    from monitor.config.load import ConfigError

    parts = Parts(ConfigHolder.load(write_config(tmp_path)), Store.open(f"sqlite:///{tmp_path / 'm.db'}"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as raised:
            async with serve_if_enabled(parts, NotStarted(), port=port):
                pass
    parts.store.close()
    in_use = os.strerror(errno.EADDRINUSE)  # "Address already in use"
    assert str(raised.value) == f"{tmp_path / 'feeds.yaml'}: server: cannot listen on 127.0.0.1:{port}: {in_use}"
