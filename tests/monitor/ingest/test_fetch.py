"""Fetcher against real servers on 127.0.0.1: every bad input gets a bounded FetchResult."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import random
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import brotli
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor.config.addresses import PUBLIC_ONLY, AddressPolicy
from monitor.config.settings import Http
from monitor.ingest.fetch import Fetcher, is_public_address
from monitor.ingest.health import record_fetch
from monitor.models import ErrorKind, SourceHealth
from tests.servers import LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def http(**overrides: Any) -> Http:
    base: dict[str, Any] = {
        "deadline": "5s",
        "read_timeout": "5s",
        "connect_timeout": "2s",
        "article_min_interval": 0,
    }
    return Http(**(base | overrides))


# These tests' servers live on 127.0.0.1: their sources are allowed loopback, as an operator
# would allow an intranet feed. The address-guard tests below pass PUBLIC_ONLY.
LOCAL = AddressPolicy(private=True)


async def fetch(
    url: str, settings: Http | None = None, resolver: AbstractResolver | None = None, **kw: Any
):
    kw.setdefault("allow", LOCAL)
    async with Fetcher(settings or http(), resolver=resolver) as fetcher:
        return await fetcher.fetch("src", url, now=NOW, **kw)


class MapResolver(AbstractResolver):
    """Answers from a fixed table, like a DNS server the test controls."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        host = host.rstrip(".")
        self.calls.append(host)
        if host not in self.names:
            raise OSError(socket.EAI_NONAME, f"{host}: name not known")
        ip = self.names[host]
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------ ordinary bodies


async def test_html_where_a_feed_was_expected_is_fetched_as_is(server: LocalServer) -> None:
    url = server.add(
        "/feed", "<html><body>Not a feed</body></html>", content_type="text/html; charset=utf-8"
    )
    result = await fetch(url)
    assert result.ok and result.status == 200
    assert result.body == b"<html><body>Not a feed</body></html>"
    assert result.content_type == "text/html; charset=utf-8"
    assert result.body_hash and len(result.body_hash) == 64


async def test_user_agent_comes_from_settings(server: LocalServer) -> None:
    url = server.add("/feed", RSS)
    await fetch(url, http(user_agent="tester/1.0 (+https://example.org/contact)"))
    assert server.requests[0].headers["User-Agent"] == "tester/1.0 (+https://example.org/contact)"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("br", brotli.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
    ],
)
async def test_compressed_bodies_are_decoded(
    server: LocalServer, encoding: str, compress: Any
) -> None:
    body = RSS * 200
    url = server.add("/feed", compress(body), headers={"Content-Encoding": encoding})
    result = await fetch(url)
    assert result.ok, result.error
    assert result.body == body


# ------------------------------------------------------------------ size limits


async def test_announced_50_mb_body_is_refused_without_reading_it(
    server: LocalServer,
) -> None:
    url = server.add("/big", b"x" * 50_000_000)
    result = await fetch(url, http(max_body="10MB"))
    assert result.error_kind is ErrorKind.TOO_LARGE
    assert result.body is None
    assert "50 MB announced" in (result.error or "")


async def test_streamed_50_mb_body_without_length_stops_at_the_cap(
    server: LocalServer,
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(50):
                await response.write(b"x" * 1_000_000)
        except (ConnectionResetError, RuntimeError):
            pass  # the client hung up at its cap, as it should
        return response

    url = server.add("/stream", stream)
    result = await fetch(url, http(max_body="2MB"))
    assert result.error_kind is ErrorKind.TOO_LARGE
    assert result.error == "body exceeds 2 MB after decompression"


def _gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * 1_000_000
    return b"".join(packer.compress(zeros) for _ in range(size // 1_000_000)) + packer.flush()


async def test_gzip_bomb_stops_at_the_cap_after_decompression(server: LocalServer) -> None:
    bomb = _gzip_bomb(200_000_000)  # 200 MB of zeros in about 200 KB
    assert len(bomb) < 300_000
    url = server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        result = await fetch(url, http(max_body="5MB"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.error_kind is ErrorKind.TOO_LARGE
    assert result.error == "body exceeds 5 MB after decompression"
    # Decoding is bounded too: one 64 KB chunk of this bomb alone inflates to ~64 MB.
    assert peak < 30_000_000


async def test_brotli_bomb_stops_at_the_cap(server: LocalServer) -> None:
    bomb = brotli.compress(b"\0" * 50_000_000, quality=1)
    url = server.add("/bomb", bomb, headers={"Content-Encoding": "br"})
    result = await fetch(url, http(max_body="1MB"))
    assert result.error_kind is ErrorKind.TOO_LARGE


async def test_corrupt_gzip_is_an_error_not_an_exception(server: LocalServer) -> None:
    url = server.add("/bad", b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    result = await fetch(url)
    assert result.error_kind is ErrorKind.OTHER
    assert "gzip body is corrupt" in (result.error or "")


# ------------------------------------------------------------------ time limits


async def test_slow_drip_server_hits_the_total_deadline(server: LocalServer) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        try:
            for byte in RSS:  # one byte every 0.3 s: never idle long enough for a read timeout
                await response.write(bytes([byte]))
                await asyncio.sleep(0.3)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    url = server.add("/drip", drip)
    result = await fetch(url, http(deadline="1s", read_timeout="10s"))
    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.error == "127.0.0.1 did not finish within the 1 s deadline"


async def test_silent_server_hits_the_read_timeout(server: LocalServer) -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(body=RSS)

    url = server.add("/silent", silent)
    result = await fetch(url, http(deadline="10s", read_timeout="0.5s"))
    assert result.error_kind is ErrorKind.TIMEOUT
    assert "read timeout" in (result.error or "")


# ------------------------------------------------------------------ redirects and statuses


async def test_redirect_loop_gives_too_many_redirects(server: LocalServer) -> None:
    url = server.add("/loop", b"", status=302, headers={"Location": "/loop"})
    result = await fetch(url, http(max_redirects=3))
    assert result.error_kind is ErrorKind.TOO_MANY_REDIRECTS
    assert server.hits["/loop"] == 4  # the first request and three redirects


async def test_redirects_within_the_limit_are_followed(server: LocalServer) -> None:
    server.add("/old", b"", status=301, headers={"Location": "/older"})
    server.add("/older", b"", status=307, headers={"Location": "/feed.xml"})
    server.add("/feed.xml", RSS)
    result = await fetch(server.url("/old"))
    assert result.ok and result.body == RSS
    assert result.final_url == server.url("/feed.xml")
    assert result.url == server.url("/old")


async def test_redirect_to_a_file_url_is_refused(server: LocalServer) -> None:
    url = server.add("/evil", b"", status=302, headers={"Location": "file:///etc/passwd"})
    result = await fetch(url)
    assert result.error_kind is ErrorKind.BAD_URL


async def test_304_without_validators_is_an_error(server: LocalServer) -> None:
    url = server.add("/feed", b"", status=304)
    result = await fetch(url)
    assert result.error_kind is ErrorKind.HTTP_STATUS
    assert result.status == 304 and not result.not_modified


async def test_404_is_an_http_status_error(server: LocalServer) -> None:
    url = server.add("/gone", "no such feed", status=404)
    result = await fetch(url)
    assert result.error_kind is ErrorKind.HTTP_STATUS and result.status == 404
    assert result.error == f"HTTP 404 from {url}"


async def test_429_retry_after_seconds_is_honoured_by_health(server: LocalServer) -> None:
    url = server.add("/feed", "slow down", status=429, headers={"Retry-After": "7200"})
    result = await fetch(url)
    assert result.error_kind is ErrorKind.HTTP_STATUS and result.status == 429
    assert result.retry_after == 7200
    health = record_fetch(
        SourceHealth("src"),
        result,
        timedelta(minutes=5),
        NOW,
        backoff_max=timedelta(hours=6),
        rng=random.Random(1),
    )
    assert health.next_due is not None and health.next_due >= NOW + timedelta(seconds=7200)
    assert health.last_error_kind is ErrorKind.HTTP_STATUS


async def test_503_retry_after_http_date(server: LocalServer) -> None:
    when = format_datetime(NOW + timedelta(minutes=30), usegmt=True)
    url = server.add("/feed", "maintenance", status=503, headers={"Retry-After": when})
    result = await fetch(url)
    assert result.status == 503
    assert result.retry_after == 1800


# ------------------------------------------------------------------ network failures


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await fetch(f"http://127.0.0.1:{port}/feed")
    assert result.error_kind is ErrorKind.CONNECT
    assert result.error and result.error.startswith("could not connect to 127.0.0.1")


async def test_dns_failure() -> None:
    result = await fetch("http://no-such-host.invalid/feed.xml")
    assert result.error_kind is ErrorKind.DNS
    assert result.error == "the name no-such-host.invalid could not be resolved"


async def test_untrusted_tls_certificate(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with LocalServer({"/feed": RSS}, ssl_context=context) as tls_server:
        result = await fetch(tls_server.url("/feed"))
    assert result.error_kind is ErrorKind.TLS
    assert (result.error or "").startswith("the TLS certificate of 127.0.0.1 was not accepted")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/feed", "javascript:alert(1)", "http:///nohost"]
)
async def test_non_http_urls_are_refused(url: str) -> None:
    result = await fetch(url)
    assert result.error_kind is ErrorKind.BAD_URL
    assert result.body is None


# ------------------------------------------------------------------ unchanged feeds


async def test_etag_and_last_modified_round_trip_gives_not_modified(
    server: LocalServer,
) -> None:
    async def conditional(request: web.Request) -> web.StreamResponse:
        if (
            request.headers.get("If-None-Match") == '"v1"'
            or request.headers.get("If-Modified-Since") == "Sun, 01 Mar 2026 10:00:00 GMT"
        ):
            return web.Response(status=304)
        return web.Response(
            body=RSS, headers={"ETag": '"v1"', "Last-Modified": "Sun, 01 Mar 2026 10:00:00 GMT"}
        )

    url = server.add("/feed", conditional)
    first = await fetch(url)
    assert first.body == RSS and first.etag == '"v1"'
    by_etag = await fetch(url, etag=first.etag)
    by_date = await fetch(url, last_modified=first.last_modified)
    for result in (by_etag, by_date):
        assert result.ok and result.not_modified and result.body is None
        assert result.status == 304
    assert by_etag.etag == '"v1"'  # the validator is kept for the next poll


async def test_unchanged_body_hash_gives_not_modified(server: LocalServer) -> None:
    url = server.add("/feed", RSS)  # a server that ignores validators
    first = await fetch(url)
    second = await fetch(url, body_hash=first.body_hash)
    assert second.ok and second.not_modified and second.body is None
    assert second.body_hash == first.body_hash
    server.add("/feed", RSS + b"<!-- changed -->")
    third = await fetch(url, body_hash=first.body_hash)
    assert not third.not_modified and third.body is not None


# ------------------------------------------------------------------ robots.txt


async def test_robots_disallow_blocks_page_sources_only(server: LocalServer) -> None:
    server.add("/robots.txt", "User-agent: *\nDisallow: /private/\n")
    server.add("/private/news.html", "<html>secret listing</html>")
    server.add("/public/news.html", "<html>listing</html>")
    async with Fetcher(http()) as fetcher:
        blocked = await fetcher.fetch("p", server.url("/private/news.html"), kind="page", now=NOW, allow=LOCAL)
        allowed = await fetcher.fetch("p", server.url("/public/news.html"), kind="page", now=NOW, allow=LOCAL)
        as_feed = await fetcher.fetch("f", server.url("/private/news.html"), kind="feed", now=NOW, allow=LOCAL)
    assert blocked.error_kind is ErrorKind.ROBOTS
    assert allowed.ok and as_feed.ok
    assert server.hits["/private/news.html"] == 1  # only the feed request reached it
    assert server.hits["/robots.txt"] == 1  # fetched once, then cached


async def test_robots_rules_for_our_user_agent_apply(server: LocalServer) -> None:
    server.add(
        "/robots.txt", "User-agent: exportwatch-monitor\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    )
    url = server.add("/news.html", "<html>listing</html>")
    result = await fetch(url, kind="page")
    assert result.error_kind is ErrorKind.ROBOTS
    assert result.error == f"robots.txt of 127.0.0.1 disallows {url}"


async def test_unreachable_robots_txt_allows(server: LocalServer) -> None:
    server.add("/robots.txt", "oops", status=500)
    url = server.add("/news.html", "<html>listing</html>")
    result = await fetch(url, kind="page")
    assert result.ok


# ------------------------------------------------------------------ article address guard


def test_public_address_policy() -> None:
    blocked = [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "fe80::1",
        "fc00::1",
        "::",
        "ff02::1",
        "2002:7f00:1::1",
    ]
    allowed = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]
    assert [a for a in blocked if is_public_address(ipaddress.ip_address(a))] == []
    assert all(is_public_address(ipaddress.ip_address(a)) for a in allowed)


async def test_article_on_loopback_literal_is_refused(server: LocalServer) -> None:
    url = server.add("/story", "<html>story</html>")
    result = await fetch(url, kind="article", allow=PUBLIC_ONLY)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert server.hits["/story"] == 0


@pytest.mark.parametrize(
    "host", ["2130706433", "127.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0"]
)
async def test_article_on_disguised_loopback_is_refused(server: LocalServer, host: str) -> None:
    server.add("/story", "<html>story</html>")
    result = await fetch(f"http://{host}:{server.port}/story", kind="article", allow=PUBLIC_ONLY)
    assert not result.ok
    assert server.hits["/story"] == 0


async def test_article_whose_name_resolves_to_loopback_is_refused_before_connecting(
    server: LocalServer,
) -> None:
    server.add("/story", "<html>story</html>")
    resolver = MapResolver({"news.test": "127.0.0.1"})
    result = await fetch(
        f"http://news.test:{server.port}/story", kind="article", resolver=resolver, allow=PUBLIC_ONLY
    )
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert "news.test resolves only to non-public addresses (127.0.0.1)" in (result.error or "")
    assert resolver.calls == ["news.test"]
    assert server.hits["/story"] == 0


async def test_article_on_loopback_allowed_by_setting(server: LocalServer) -> None:
    server.add("/story", "<html>story</html>")
    resolver = MapResolver({"news.test": "127.0.0.1"})
    settings = http(allow_private_addresses=True)
    by_name = await fetch(
        f"http://news.test:{server.port}/story", settings, resolver, kind="article", allow=PUBLIC_ONLY
    )
    by_ip = await fetch(server.url("/story"), settings, kind="article", allow=PUBLIC_ONLY)
    assert by_name.ok and by_ip.ok and by_name.body == b"<html>story</html>"


async def _fetch_as_if_public(url: str, resolver: MapResolver) -> Any:
    """Treat 127.0.0.1 (only) as a public address, so a local server can play the outlet."""

    def public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return str(ip) == "127.0.0.1" or is_public_address(ip)

    async with Fetcher(http(), resolver=resolver, public_address=public) as fetcher:
        return await fetcher.fetch("a", url, kind="article", now=NOW)


async def test_article_redirect_to_a_private_name_is_refused_at_connect_time(
    server: LocalServer,
) -> None:
    port = server.port
    # 127.0.0.2 is loopback but not the server: were the guard skipped on the second hop,
    # the connection would be attempted there and fail as CONNECT, not BLOCKED_ADDRESS.
    resolver = MapResolver({"outlet.test": "127.0.0.1", "intranet.test": "127.0.0.2"})
    server.add("/ok", "<html>fine</html>")
    server.add(
        "/story", b"", status=302, headers={"Location": f"http://intranet.test:{port}/admin"}
    )
    fine = await _fetch_as_if_public(f"http://outlet.test:{port}/ok", resolver)
    assert fine.ok  # the outlet itself is reachable through the guard
    result = await _fetch_as_if_public(f"http://outlet.test:{port}/story", resolver)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert "intranet.test" in (result.error or "")
    assert resolver.calls.count("intranet.test") == 1


async def test_article_redirect_to_a_private_ip_literal_is_refused(
    server: LocalServer,
) -> None:
    resolver = MapResolver({"outlet.test": "127.0.0.1"})
    server.add(
        "/story", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    result = await _fetch_as_if_public(f"http://outlet.test:{server.port}/story", resolver)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert result.error == (
        "refusing to connect to 169.254.169.254: a link-local address (where cloud metadata services "
        "answer), not a public one (a source may reach it only with allow_private or allow_networks)"
    )


async def test_article_requests_to_one_host_are_spaced(server: LocalServer) -> None:
    arrivals: list[float] = []

    async def story(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        return web.Response(text="<html>story</html>")

    url = server.add("/story", story)
    async with Fetcher(http(allow_private_addresses=True, article_min_interval="0.2s")) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch("a", url, kind="article", now=NOW, allow=PUBLIC_ONLY) for _ in range(3))
        )
    assert all(r.ok for r in results)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.18  # a lower bound that sleeping guarantees


async def test_article_pages_that_waited_for_a_busy_host_still_go_out_spaced(server: LocalServer) -> None:
    """A slow request holds the host's only slot while two article pages wait for it: their
    turns pass meanwhile, but they must not then go out back to back (they did, 0.4 ms
    apart, when the pause came before the slot)."""
    arrivals: list[float] = []

    async def slow_feed(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return web.Response(body=RSS)

    async def story(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        return web.Response(text="<html>story</html>")

    feed = server.add("/feed", slow_feed)
    pages = [server.add(f"/story{n}", story) for n in range(2)]
    async with Fetcher(http(allow_private_addresses=True, per_host=1, article_min_interval="0.3s")) as fetcher:
        busy = asyncio.ensure_future(fetcher.fetch("feed", feed, now=NOW))
        await asyncio.sleep(0.1)  # the feed request holds the slot
        results = await asyncio.gather(*(fetcher.fetch("a", url, kind="article", now=NOW) for url in pages))
        assert (await busy).ok
    assert all(r.ok for r in results)
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.25, arrivals  # 0.3 s less a connect


# ------------------------------------------------------------------ concurrency


def _counting_handler(state: dict[str, int]) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.2)
        state["now"] -= 1
        return web.Response(body=RSS)

    return handler


@pytest.mark.parametrize(
    ("settings", "expected"),
    [({"per_host": 2, "concurrency": 10}, 2), ({"per_host": 10, "concurrency": 3}, 3)],
)
async def test_concurrency_bounds_hold(
    server: LocalServer, settings: dict[str, int], expected: int
) -> None:
    state = {"now": 0, "max": 0}
    url = server.add("/feed", _counting_handler(state))
    async with Fetcher(http(**settings)) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(f"s{i}", url, now=NOW, allow=LOCAL) for i in range(8)))
    assert all(r.ok for r in results)
    assert state["max"] == expected
