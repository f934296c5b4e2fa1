"""Issue 12, cases 7-10 and the Location part of 18: one bad header or body from a server
gives a bounded, worded outcome, and never stops a source for good.

Servers are real and on 127.0.0.1: `LocalServer` (aiohttp) where it can send what the case
needs, `RawServer` (fixed bytes) where aiohttp's server would refuse to (non-UTF-8 header
bytes, a broken status line, a Content-Length that agrees with a cut gzip stream).
"""

from __future__ import annotations

import gzip
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.config.addresses import AddressPolicy
from monitor.config.holder import ConfigHolder
from monitor.config.settings import Http
from monitor.ingest.fetch import Fetcher
from monitor.models import ErrorKind, SourceHealth
from monitor.ops.status import collect_status, render_status
from monitor.run.app import open_app, run_once_and_report
from monitor.run.scheduler import run_once
from monitor.store import Store, sources
from tests.configs import write_one_source_config
from tests.servers import LocalServer, RawServer

LOCAL = AddressPolicy(private=True)
NOW = datetime.now(UTC)


def rss(title: str = "US adds 14 Chinese AI chip designers to Entity List") -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>{title}</title><link>https://example.org/1</link><guid>https://example.org/1</guid>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><description>{'Entity List news. ' * 30}</description>"
        "</item></channel></rss>"
    ).encode()


def http_response(body: bytes, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    head = [b"HTTP/1.1 " + status, b"Content-Type: application/rss+xml", b"Connection: close",
            b"Content-Length: " + str(len(body)).encode(), *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def write_config(tmp_path: Path, url: str, http_extra: str = "") -> Path:
    lines = "  backoff_max: 6h\n" + http_extra
    return write_one_source_config(tmp_path, url, source_id="odd", name="An odd server", http_lines=lines)


async def fetch(url: str, **settings: object):
    async with Fetcher(Http(**({"deadline": "5s"} | settings))) as fetcher:
        return await fetcher.fetch("odd", url, allow=LOCAL)


def stored(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        return conn.execute(sql).fetchall()


# ------------------------------------------------------------------ case 7


@pytest.mark.parametrize(
    "header", [b'ETag: "v1\xff\xfe"', b"Last-Modified: Mon\xe9, 01 Mar 2026 10:00:00 GMT"], ids=["etag", "last-modified"]
)
async def test_case7_a_validator_with_non_utf8_bytes_is_ignored_and_the_feed_keeps_working(
    tmp_path: Path, header: bytes
) -> None:
    with RawServer(http_response(rss(), header)) as raw:
        async with open_app(write_config(tmp_path, raw.url("/feed.xml"))) as app:
            first = (await run_once(app.runtime))[0]
            second = (await run_once(app.runtime))[0]
    assert (first.outcome, first.new_articles, first.error) == ("new", 1, "")
    assert second.outcome == "unchanged"  # the body hash still says so, without the validator
    assert stored(tmp_path, "select etag, last_modified, consecutive_failures from source_state") == [(None, None, 0)]
    assert stored(tmp_path, "select count(*) from article") == [(1,)]


# ------------------------------------------------------------------ case 8


@pytest.mark.parametrize("retry_after", ["Fri, 31 Dec 9999 23:59:59 GMT", "999999999999", "9" * 400])
async def test_case8_a_retry_after_of_forever_waits_backoff_max(tmp_path: Path, retry_after: str) -> None:
    with LocalServer() as server:
        url = server.add("/feed.xml", "maintenance", status=503, headers={"Retry-After": retry_after})
        async with open_app(write_config(tmp_path, url)) as app:
            started = datetime.now(UTC)
            report = (await run_once(app.runtime))[0]
            with app.store.connect() as conn:
                health = sources.get_health(conn, "odd")
    assert report.outcome == "failed"
    assert report.error == f"HTTP 503 (asked to wait more than a year; waiting http.backoff_max, 6 h) from {url}"
    assert health.next_due is not None
    assert started + timedelta(hours=5, minutes=59) <= health.next_due <= datetime.now(UTC) + timedelta(hours=6)


# ------------------------------------------------------------------ case 9


async def test_case9_a_gzip_stream_cut_where_content_length_says_is_refused(tmp_path: Path) -> None:
    whole = gzip.compress(rss())
    cut = whole[: len(whole) // 2]
    reply = http_response(cut, b"Content-Encoding: gzip")
    with RawServer(reply) as raw:
        result = await fetch(raw.url("/feed.xml"))
        async with open_app(write_config(tmp_path, raw.url("/feed.xml"))) as app:
            report = (await run_once(app.runtime))[0]
    assert result.error_kind is ErrorKind.OTHER and result.body is None
    assert result.error == "the gzip body ends before its compressed stream does (truncated)"
    assert (report.outcome, report.error) == ("failed", result.error)
    assert stored(tmp_path, "select count(*) from article") == [(0,)]  # no half item, nothing to repair


async def test_case9_a_whole_gzip_stream_is_still_read() -> None:
    with RawServer(http_response(gzip.compress(rss()), b"Content-Encoding: gzip")) as raw:
        result = await fetch(raw.url("/feed.xml"))
    assert result.ok and result.body == rss()


# ------------------------------------------------------------------ case 10


async def test_case10_server_bytes_in_a_broken_status_line_are_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = b"SSH-2.0-OpenSSH_9.6 " + b"x" * 128_000 + b"\r\n\r\n"
    with RawServer(garbage) as raw:
        async with open_app(write_config(tmp_path, raw.url("/feed.xml"))) as app:
            await run_once_and_report(app)
            status = render_status(collect_status(app.holder, app.store, datetime.now(UTC)))
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "odd" in line)
    assert line.endswith("failed     the server's response was not valid HTTP (127.0.0.1)")
    assert stored(tmp_path, "select last_error from source_state") == [("the server's response was not valid HTTP (127.0.0.1)",)]
    assert "xxxxxxxxxx" not in out + status


def test_case10_an_old_stored_error_of_128k_characters_is_shown_bounded(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/feed.xml")
    holder = ConfigHolder.load(config)
    store = Store.open(holder.settings.store.url)
    store.upgrade()
    try:
        with store.transaction() as conn:
            sources.save_health(conn, SourceHealth("odd", consecutive_failures=1, last_error="y" * 128_682))
        text = render_status(collect_status(holder, store, datetime.now(UTC)))
    finally:
        store.close()
    line = next(line for line in text.splitlines() if "odd" in line)
    assert len(line) < 700 and line.endswith("…")


async def test_case10_a_stalled_tls_handshake_is_named() -> None:
    with RawServer(None, hold=5) as silent:  # accepts TCP, never answers the ClientHello
        result = await fetch(silent.url("/feed.xml", scheme="https"), connect_timeout="0.5s")
    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.error == "127.0.0.1 accepted the connection but the TLS handshake stalled (no answer in time)"


async def test_case10_https_to_a_plain_http_port_says_so() -> None:
    with LocalServer() as server:
        server.add("/feed.xml", rss())
        result = await fetch(server.url("/feed.xml").replace("http://", "https://"))
    assert result.error_kind is ErrorKind.TLS
    assert result.error == "127.0.0.1: this port speaks plain HTTP, not TLS (try http://)"


# ------------------------------------------------------------------ case 18 (Location)


async def test_case18_a_malformed_location_is_one_clear_line(caplog: pytest.LogCaptureFixture) -> None:
    with LocalServer() as server:
        url = server.add("/feed.xml", b"", status=302, headers={"Location": "http://[::1/x"})
        with caplog.at_level(logging.INFO):
            result = await fetch(url)
    assert result.error_kind is ErrorKind.BAD_URL
    assert result.error == f"HTTP 302 redirect to a malformed address 'http://[::1/x' from '{url}'"
    assert "Traceback" not in caplog.text
