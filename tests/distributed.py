"""The distributed mode as operators run it, for tests: a local feed farm, the fake Slack,
`monitor worker` processes and `monitor run --role …` on PostgreSQL and a real broker.

The farm is the demo's invented feeds (a wire story, a paper's reprint, an independent
outlet, the agency's release in cycle 2, a broken feed), each feed on a loopback host of its
own (127.0.0.1x), their article pages on one shared host (127.0.0.1), and mirror feeds that
carry the same items again (exact duplicates from other sources, which workers polling in
parallel must not store twice). The pages host counts the requests in flight at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import create_engine, text

from monitor.cli import demo_feeds
from tests.fakeslack import FakeSlack
from tests.servers import LocalServer

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "MONITOR_TEST_POSTGRES_URL"
BROKER_ENV = "MONITOR_TEST_BROKER_URL"
REDIS_ENV = "MONITOR_TEST_REDIS_URL"
FULL_ENV = "MONITOR_TEST_FULL_KILLS"  # CI: the kill loops at the counts the issue names

MIRRORS = 6  # feeds that repeat the wire's, the tribune's and PolicyWire's items


def needs(*names: str) -> dict[str, str]:
    """The environment variables a test needs, or skip it saying which are missing."""
    values = {name: os.environ.get(name, "") for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        pytest.skip(f"{', '.join(missing)} not set (.ci/run sets them)")
    try:
        import celery  # noqa: F401
    except ImportError:
        pytest.skip("celery is not installed (pip install '.[distributed]')")
    return values


@dataclass
class Farm:
    now: datetime
    cycle: int = 1
    delay: float = 0.0  # seconds each article page takes
    feeds: list[LocalServer] = field(default_factory=list)
    pages: LocalServer | None = None
    in_flight: int = 0
    peak: int = 0
    feed_hits: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sources(self) -> list[tuple[str, str, str, str]]:
        """(id, name, extra yaml, url) of every source, in the configuration's order."""
        assert self.feeds
        out = []
        for i, name in enumerate((*demo_feeds.FEEDS, "broken", *(f"mirror{m}" for m in range(MIRRORS)))):
            extra = ""
            if name == "wire":
                extra = "    outlet: Reuters\n    tier: wire\n"
            elif name == "agency":
                extra = "    owner: us-commerce\n    tier: primary\n"
            out.append((f"farm-{name}", name.title(), extra, self.feeds[i].url("/feed.xml")))
        return out

    def _feed_handler(self, name: str):  # noqa: ANN202
        async def handler(request: web.Request) -> web.Response:
            with self._lock:
                self.feed_hits.setdefault(name, []).append(time.time())
            if name == "broken":
                return web.Response(body=demo_feeds.BROKEN_FEED, content_type="application/rss+xml")
            origin = name if not name.startswith("mirror") else list(demo_feeds.FEEDS)[int(name[6:]) % 3]
            items = demo_feeds.FEEDS[origin]
            assert self.pages is not None
            body = demo_feeds.rss(f"Mirror {name}" if name.startswith("mirror") else demo_feeds.OUTLETS[origin][0],
                                  self.pages.url(f"/{origin}"), items, self.now, self.cycle)
            return web.Response(body=body, content_type="application/rss+xml")

        return handler

    def _page_handler(self, title: str, summary: str):  # noqa: ANN202
        async def handler(request: web.Request) -> web.Response:
            with self._lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
                html = f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1><p>{summary}</p></article></body></html>"
                return web.Response(text=html, content_type="text/html")
            finally:
                with self._lock:
                    self.in_flight -= 1

        return handler

    @contextmanager
    def running(self) -> Iterator[Farm]:
        self.pages = LocalServer(host="127.0.0.1").start()
        for name, items in demo_feeds.FEEDS.items():
            for item in items:
                self.pages.add(f"/{name}{item.link}", self._page_handler(item.title, item.summary))
        names = (*demo_feeds.FEEDS, "broken", *(f"mirror{m}" for m in range(MIRRORS)))
        try:
            for i, name in enumerate(names):
                server = LocalServer(host=f"127.0.0.{10 + i}").start()
                server.add("/feed.xml", self._feed_handler(name))
                self.feeds.append(server)
            yield self
        finally:
            for server in (*self.feeds, self.pages):
                server.stop()


def write_config(
    path: Path, farm: Farm, slack: FakeSlack, *, store: str, broker: str = "", queue: str = "", per_host: int = 4,
    article_min_interval: str = "0s", claim_timeout: str = "5m", interval: str = "1m",
) -> Path:
    sources = "".join(f"  - id: {sid}\n    name: {name}\n{extra}    url: {url}\n" for sid, name, extra, url in farm.sources())
    distributed = f"distributed:\n  broker_url: {broker}\n  queue: {queue}\n  claim_timeout: {claim_timeout}\n" if broker else ""
    path.write_text(
        f"""store:
  url: {store}
http:
  allow_private_addresses: true
  article_min_interval: {article_min_interval}
  per_host: {per_host}
  deadline: 20s
slack:
  token: {slack.token}
  base_url: {slack.base_url}
defaults:
  interval: {interval}
  jitter: 0s
sources:
{sources}topics:
  - id: ai-export-controls
    name: AI export controls
    rules:
      any: ["export control*", "Entity List", "BIS", "Bureau of Industry and Security", "export curbs", "chip*"]
      none: ["football"]
routes:
  - topic: ai-export-controls
    channel: "#alerts"
{distributed}"""
    )
    return path


def monitor_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def monitor(*args: str, config: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "monitor.cli.main", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=monitor_env())


class Process:
    """A `monitor` process in the background, its output in a file."""

    def __init__(self, config: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.args = args
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli.main", "--config", str(config), *args],
            stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO, env={**monitor_env(), **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group (a worker's pool children too)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._out.close()

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()

    def children(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields_ = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields_[1]) == self.popen.pid:
                    found.append(int(entry.name))
        return found


@contextmanager
def workers(config: Path, count: int, tmp: Path, *, concurrency: int = 1) -> Iterator[list[Process]]:
    started = [Process(config, "worker", "--concurrency", str(concurrency), log=tmp / f"worker{i}.log") for i in range(count)]
    try:
        wait_for(lambda: all("ready" in p.output() for p in started), 60, lambda: "\n".join(p.output()[-2000:] for p in started))
        yield started
    finally:
        for process in started:
            process.stop()


def wait_for(condition: Any, timeout: float, describe: Any = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s: {describe()}")


def unique_queue() -> str:
    return f"monitor.test.{uuid.uuid4().hex[:10]}"


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, list[tuple]]:
    """What a user sees of a store: articles, developments and alerts (ids included)."""
    return {
        "articles": rows(url, "SELECT id, source_id, canonical_url, title, development_id, origin, reprint_of FROM article ORDER BY id"),
        "developments": rows(url, "SELECT id, topic, headline, state, independent, storyline_id, merged_into, impact FROM development ORDER BY id"),
        "alerts": rows(url, "SELECT kind, channel, dedup_key, state, development_id FROM alert ORDER BY id"),
    }


def slack_view(slack: FakeSlack) -> list[tuple]:
    """Every message as a person reads the channel: text, blocks, and replies under parents."""
    out = []
    for message in slack.messages("#alerts"):
        replies = [(r.get("text"), _blocks(r)) for r in slack.replies("#alerts", message["ts"])]
        out.append((message.get("text"), _blocks(message), replies))
    return out


def _blocks(message: dict[str, Any]) -> str:
    """The blocks, with the time of an update left out: the runs compared happen minutes apart."""
    import json
    import re

    return re.sub(r"<!date\^\d+\^[^>]*>", "<!date>", json.dumps(message.get("blocks"), sort_keys=True))


def parents_per_development(slack: FakeSlack) -> dict[str, int]:
    """How many top-level messages each development got (by the metadata the relay attaches)."""
    counts: dict[str, int] = {}
    for message in slack.messages("#alerts"):
        key = str((message.get("metadata") or {}).get("event_payload", {}).get("development_id", message.get("text", "")[:60]))
        counts[key] = counts.get(key, 0) + 1
    return counts


def all_slack_calls(slack: FakeSlack) -> int:
    return len(slack.calls)
