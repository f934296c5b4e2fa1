"""The whole monitor as a user runs it: the `monitor` command against feeds on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.servers import LocalServer

REPO = Path(__file__).resolve().parents[1]


def monitor(*args: str, config: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "monitor.cli.main"]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO, env=_env())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def rss(items: list[tuple[str, str, str, datetime]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate><description>{summary}</description></item>"
        for title, link, summary, when in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


NOW = datetime.now(UTC)
STORY = (
    "The Bureau of Industry and Security added 14 Chinese AI chip designers to the Entity List on "
    "Tuesday, imposing a licence requirement on exports of advanced chips to them under an interim "
    "final rule that takes effect immediately, officials said in Washington."
)


@pytest.fixture
def feeds() -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.add(
            "/alpha.xml",
            rss([
                ("US adds 14 Chinese AI chip designers to Entity List", server.url("/a/1"), STORY, NOW - timedelta(hours=2)),
                ("Football final ends in a draw", server.url("/a/2"), "A late goal levelled the final.", NOW - timedelta(hours=3)),
            ]),
            content_type="application/rss+xml",
        )
        server.add(
            "/beta.xml",
            rss([
                ("Commerce blacklists 14 Chinese AI chip designers in export controls move", server.url("/b/1"),
                 "Fourteen Chinese designers of AI chips were put on the Entity List by the Bureau of Industry and "
                 "Security, which now requires a licence for exports of advanced chips to them, officials said.",
                 NOW - timedelta(hours=1)),
            ]),
            content_type="application/rss+xml",
        )
        server.add("/broken.xml", b"<rss><channel><item><title>cut off", content_type="application/rss+xml")
        yield server


def write_config(path: Path, server: LocalServer, *, extra_source: str = "", interval: str = "1h") -> Path:
    path.write_text(
        f"""
store:
  url: sqlite:///{path.parent / 'monitor.db'}
http:
  deadline: 10s
  allow_private_addresses: true
  article_min_interval: 0s   # a local test server: no politeness gap
defaults:
  interval: {interval}
  jitter: 0s
sources:
  - id: alpha
    name: Alpha Times
    url: {server.url('/alpha.xml')}
  - id: beta
    name: Beta Post
    url: {server.url('/beta.xml')}
  - id: broken
    name: Broken feed
    url: {server.url('/broken.xml')}
  - id: refused
    name: Nobody listens here
    url: http://127.0.0.1:9/feed.xml
{extra_source}
topics:
  - id: ai-export-controls
    name: AI export controls
    rules:
      any: ["Entity List", "export control*", "chip*"]
routes:
  - topic: ai-export-controls
    channel: "#export-controls"
"""
    )
    return path


def stored(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_demo_shows_a_corroborated_development_then_its_update() -> None:
    result = monitor("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    first, second = out.split("Cycle 2")
    assert first.count("new message") == 1
    assert "Verified by 2 sources" in first
    assert "Reuters (+1 reprint)" in first
    assert "Why it matters:* High impact (7/10) — Entity List additions (14 entities)" in first
    assert "Verified by 3 sources" in second
    assert "message updated" in second and "thread reply" in second
    assert "new message" not in second  # the same development is never posted twice
    # The agency's own release leads the updated message, under its outlet's name (its owner
    # group us-commerce is how feeds.yaml counts it, not what readers know it as).
    assert "(primary source): Commerce Adds 14 Entities" in second
    assert "New independent source:* Bureau of Industry and Security" in second
    assert "us-commerce" not in out.split("#1 ")[0]
    assert "Before this" in second  # the timeline of the related earlier development
    assert "BIS tightens licence rules for AI chip exports to China" in second
    earlier = second.split("Before this")[1].split("First reported")[0]
    assert "ASML" not in earlier  # an unrelated licence story is not part of this one
    assert first.count("new message") == 1  # the 18-day-old development is stored, not alerted
    assert "Traceback" not in result.stderr


def test_run_once_alerts_once_and_survives_broken_sources(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds)
    result = monitor("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert "Verified by 2 sources" in result.stdout
    assert "alpha" in result.stdout and "beta" in result.stdout
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ") and len(line.split()) > 1}
    assert "failed" in lines["refused"]
    assert "failed" in lines["broken"] or "malformed" in result.stderr
    db = tmp_path / "monitor.db"
    assert stored(db, "select count(*) from article") == [(2,)]  # the football item is not relevant
    assert stored(db, "select state, independent from development") == [("corroborated", 2)]
    assert stored(db, "select kind, state from alert where kind = 'new'") == [("new", "sent")]

    again = monitor("run", "--once", "--config", str(config))  # --config after the command works too
    assert again.returncode == 0, again.stderr
    assert "Verified by" not in again.stdout  # nothing new: nobody sees the same thing twice
    assert stored(db, "select count(*) from alert where kind = 'new'") == [(1,)]

    status = monitor("status", config=config)
    assert status.returncode == 0, status.stderr
    refused = next(line for line in status.stdout.splitlines() if line.strip().startswith("refused"))
    # Two failed polls: retrying; FAILING (and the ops alert) from health.failures_before_alert (3).
    assert "retrying" in refused and "connect" in refused
    assert "sent" in status.stdout
    as_json = json.loads(monitor("status", "--json", config=config).stdout)
    assert {s["id"]: s["last_error_kind"] for s in as_json["sources"]}["refused"] == "connect"
    assert as_json["alerts"]["relay"] is None  # `run --once` gave the delivery lease up when it ended


def test_check_reports_file_and_line(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds)
    text = config.read_text().replace("  interval: 1h", "  intreval: 1h")
    config.write_text(text)
    result = monitor("check", str(config))
    assert result.returncode == 1
    line = text.splitlines().index("  intreval: 1h") + 1
    assert f"feeds.yaml:{line}: defaults.intreval: unknown key 'intreval' (did you mean 'interval'?)" in result.stderr
    assert "Traceback" not in result.stderr


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "monitor.cli.main", "--config", str(config), "run"],
            cwd=REPO, env=_env(), stdout=output, stderr=subprocess.STDOUT,
        )


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_sigterm_stops_cleanly_and_sighup_keeps_a_good_config(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds, interval="2s")
    log = tmp_path / "monitor.log"
    process = _start(config, log)
    try:
        assert _wait_for(lambda: feeds.hits["/beta.xml"] >= 1), log.read_text()

        good = config.read_text()
        config.write_text(good.replace("  jitter: 0s", "  jitter: 0s\n  bogus: 1"))
        process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: "bogus" in log.read_text()), log.read_text()
        assert process.poll() is None  # an invalid file never takes the monitor down

        feeds.add("/gamma.xml", rss([]), content_type="application/rss+xml")
        gamma = f"  - id: gamma\n    name: Gamma\n    url: {feeds.url('/gamma.xml')}\n"
        write_config(config, feeds, extra_source=gamma, interval="2s")
        process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: feeds.hits["/gamma.xml"] >= 1), log.read_text()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert "monitor stopped" in output
    status = monitor("status", config=config)
    assert "in force since" in status.stdout and "last load: ok" in status.stdout
    assert "Traceback" not in output
    db = tmp_path / "monitor.db"
    assert stored(db, "select count(*) from alert where kind = 'new'") == [(1,)]


def test_digest_on_the_demo_store_lists_the_development_and_the_watch_list(tmp_path: Path) -> None:
    assert monitor("demo", "--keep", str(tmp_path)).returncode == 0
    result = monitor("digest", "--since", "24h", config=tmp_path / "feeds.yaml")
    assert result.returncode == 0, result.stderr
    corroborated, watch = result.stdout.split("Watch list")
    # `run --once` analyses the feeds in the configuration's order: the wire's story first.
    assert "U.S. adds 14 Chinese AI chip companies to Entity List" in corroborated
    assert "Verified by 3 sources" in corroborated
    assert "unverified — 1 source" in watch and "ASML" in watch


def test_sources_test_explains_each_item_and_writes_nothing(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds)
    result = monitor("sources", "test", "alpha", config=config)
    assert result.returncode == 0, result.stderr
    assert "US adds 14 Chinese AI chip designers to Entity List" in result.stdout
    assert "✔ ai-export-controls" in result.stdout and "'Entity List' in title" in result.stdout
    assert "✘" in result.stdout and "Football final" in result.stdout  # and why it did not match
    assert "1 of 2 items match a topic" in result.stdout
    assert not (tmp_path / "monitor.db").exists()

    unknown = monitor("sources", "test", "nope", config=config)
    assert unknown.returncode == 1 and "no source with id 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_an_edited_feeds_yaml_is_picked_up_without_a_signal(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds, interval="2s")
    log = tmp_path / "monitor.log"
    process = _start(config, log)
    try:
        assert _wait_for(lambda: feeds.hits["/alpha.xml"] >= 1), log.read_text()
        feeds.add("/delta.xml", rss([]), content_type="application/rss+xml")
        delta = f"  - id: delta\n    name: Delta\n    url: {feeds.url('/delta.xml')}\n"
        write_config(config, feeds, extra_source=delta, interval="2s")
        assert _wait_for(lambda: feeds.hits["/delta.xml"] >= 1), log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()
