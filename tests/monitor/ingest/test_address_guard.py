"""Issue 12, cases 1 and 2: the address guard on every hop of every request.

A source may reach public addresses only, unless the operator allowed more for that source
(`allow_private`, `allow_networks`); a redirect never widens that, whether it comes from a
feed, a listing page, robots.txt or an article page, and however the host is spelled
(fullwidth or circled digits, ideographic full stops: yarl maps them to ASCII, and the
check sees what the client connects to).

Two loopback servers play the parts: 127.0.0.1 is the source the operator allowed, 127.0.0.2
an internal host nobody allowed. Tests aiming at non-loopback addresses (cloud metadata)
are marked `netns` and run inside a network namespace with only `lo` (tests/netns.py).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.config.addresses import PUBLIC_ONLY, AddressPolicy
from monitor.config.settings import Http
from monitor.ingest.fetch import Fetcher
from monitor.models import ErrorKind
from monitor.run.app import open_app, run_once_and_report
from tests.configs import write_one_source_config
from tests.netns import only_in_namespace, run_marked_tests_in_namespace
from tests.servers import LocalServer

NOW = datetime.now(UTC)
SECRET = "SECRET-TOKEN-from-the-internal-host"
STORY = (
    "The Bureau of Industry and Security added 14 Chinese AI chip designers to the Entity List, "
    "imposing a licence requirement on exports of advanced chips to them."
)
THE_SOURCE = AddressPolicy.for_source(False, ["127.0.0.1/32"])  # exactly the feed's server


@pytest.fixture
def source() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def internal() -> Iterator[LocalServer]:
    """An internal host: serves a JSON Feed and a page holding a secret."""
    with LocalServer(host="127.0.0.2") as server:
        feed = {"version": "https://jsonfeed.org/version/1.1", "title": "internal", "items": [
            {"id": "1", "url": "https://intranet.example/1", "title": f"Entity List {SECRET}",
             "content_text": SECRET}]}
        server.add("/feed.json", json.dumps(feed), content_type="application/feed+json")
        server.add("/secret", f"<html><body><p>{SECRET}</p></body></html>", content_type="text/html")
        server.add("/robots.txt", "User-agent: *\nDisallow: /\n")
        yield server


def settings(**overrides: object) -> Http:
    return Http(**({"deadline": "5s", "article_min_interval": 0} | overrides))


async def fetch(url: str, allow: AddressPolicy, **kw: object):
    async with Fetcher(settings()) as fetcher:
        return await fetcher.fetch("src", url, allow=allow, **kw)  # type: ignore[arg-type]


def rss(link: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>US adds 14 Chinese AI chip designers to Entity List</title><link>{link}</link>"
        f"<guid>{link}</guid><pubDate>{format_datetime(NOW)}</pubDate><description>Entity List</description>"
        "</item></channel></rss>"
    ).encode()


def write_config(tmp_path: Path, url: str, source_lines: str = "    allow_networks: [127.0.0.1/32]\n") -> Path:
    return write_one_source_config(tmp_path, url, source_id="intranet-news", name="Intranet news", source_lines=source_lines)


def stored_text(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        rows = conn.execute("select title, summary, text from article").fetchall()
    return json.dumps(rows)


# ------------------------------------------------------------------ case 1: every hop


async def test_case1_a_feed_redirect_to_an_internal_json_feed_is_refused_and_nothing_stored(
    tmp_path: Path, source: LocalServer, internal: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source.add("/feed.xml", b"", status=302, headers={"Location": internal.url("/feed.json")})
    async with open_app(write_config(tmp_path, source.url("/feed.xml"))) as app:
        code = await run_once_and_report(app)
    out = capsys.readouterr().out
    assert code == 1  # every source failed
    assert (
        "intranet-news                failed     refusing to connect to 127.0.0.2: a loopback address, "
        "not a public one (a source may reach it only with allow_private or allow_networks)"
    ) in out
    assert internal.hits["/feed.json"] == 0
    assert SECRET not in stored_text(tmp_path)


async def test_case1_the_source_itself_is_reached_when_the_operator_allowed_it(
    tmp_path: Path, source: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source.add("/feed.xml", rss(source.url("/a/1")), content_type="application/rss+xml")
    source.add("/a/1", f"<html><body><article><p>{STORY}</p></article></body></html>", content_type="text/html")
    async with open_app(write_config(tmp_path, source.url("/feed.xml"))) as app:
        assert await run_once_and_report(app) == 0
    assert "intranet-news                new        1 items, 1 relevant, 1 new" in capsys.readouterr().out
    assert source.hits["/a/1"] == 1  # its article page too: the same source, the same allowance


async def test_case1_an_article_page_redirect_to_an_internal_host_is_refused(
    tmp_path: Path, source: LocalServer, internal: LocalServer
) -> None:
    source.add("/feed.xml", rss(source.url("/a/1")), content_type="application/rss+xml")
    source.add("/a/1", b"", status=302, headers={"Location": internal.url("/secret")})
    async with open_app(write_config(tmp_path, source.url("/feed.xml"))) as app:
        await run_once_and_report(app)
    assert internal.hits["/secret"] == 0
    assert SECRET not in stored_text(tmp_path)
    assert "Entity List" in stored_text(tmp_path)  # the item itself is kept, without a page


async def test_case1_a_robots_txt_redirect_to_an_internal_host_is_refused(
    source: LocalServer, internal: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    source.add("/robots.txt", b"", status=301, headers={"Location": internal.url("/robots.txt")})
    url = source.add("/news.html", "<html><body>listing</body></html>", content_type="text/html")
    with caplog.at_level(logging.INFO, logger="monitor.ingest.fetch"):
        result = await fetch(url, THE_SOURCE, kind="page")
    assert result.ok  # an unreachable robots.txt allows, as before
    assert internal.hits["/robots.txt"] == 0
    assert "refusing to connect to 127.0.0.2" in caplog.text


async def test_case1_a_wider_policy_never_lends_its_pooled_connections(source: LocalServer) -> None:
    """A keep-alive connection opened for a source allowed loopback must not carry the next
    request of a source that is not: each policy has its own pool."""
    url = source.add("/feed.xml", rss(source.url("/a/1")))
    async with Fetcher(settings()) as fetcher:
        allowed = await fetcher.fetch("a", url, allow=AddressPolicy(private=True))
        refused = await fetcher.fetch("b", url, allow=PUBLIC_ONLY)
    assert allowed.ok
    assert refused.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert source.hits["/feed.xml"] == 1


def test_case1_allow_private_opens_loopback_and_private_but_not_link_local() -> None:
    private = AddressPolicy.for_source(True, [])
    assert private.allows(ipaddress.ip_address("127.0.0.2"))
    assert private.allows(ipaddress.ip_address("10.1.2.3"))
    assert private.allows(ipaddress.ip_address("::ffff:192.168.1.1"))
    assert not private.allows(ipaddress.ip_address("169.254.169.254"))
    assert not private.allows(ipaddress.ip_address("fe80::1"))
    metadata = AddressPolicy.for_source(False, ["169.254.169.254/32"])
    assert metadata.allows(ipaddress.ip_address("169.254.169.254"))
    assert not metadata.allows(ipaddress.ip_address("127.0.0.1"))


@only_in_namespace
@pytest.mark.netns
@pytest.mark.parametrize("allow", [THE_SOURCE, AddressPolicy(private=True)], ids=["allow_networks", "allow_private"])
async def test_case1_a_feed_redirect_to_cloud_metadata_is_refused(source: LocalServer, allow: AddressPolicy) -> None:
    url = source.add("/feed.xml", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    result = await fetch(url, allow)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert result.error == (
        "refusing to connect to 169.254.169.254: a link-local address (where cloud metadata services "
        "answer), not a public one (a source may reach it only with allow_private or allow_networks)"
    )


@only_in_namespace
@pytest.mark.netns
@pytest.mark.parametrize("kind", ["feed", "page", "article"])
async def test_case1_a_redirect_to_a_private_network_is_refused_for_every_kind(source: LocalServer, kind: str) -> None:
    url = source.add("/x", b"", status=307, headers={"Location": "http://10.20.30.40:8080/admin"})
    result = await fetch(url, THE_SOURCE, kind=kind)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert (result.error or "").startswith("refusing to connect to 10.20.30.40: a private address")


def test_case1_non_loopback_cases_in_a_loopback_only_namespace() -> None:
    output = run_marked_tests_in_namespace(Path(__file__))
    assert "5 passed" in output


# ------------------------------------------------------------------ case 2: Unicode hosts

UNICODE_LOOPBACK = [
    "１２７.０.０.１",  # fullwidth digits
    "①②⑦.⓪.⓪.①",  # circled digits
    "127。0。0。1",  # ideographic full stops
    "127｡0｡0｡1",  # halfwidth ideographic full stops
    "１２７．０．０．１",  # fullwidth full stops
]


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_case2_a_unicode_spelling_of_loopback_is_checked_as_the_client_connects(
    source: LocalServer, host: str
) -> None:
    source.add("/secret", SECRET)
    result = await fetch(f"http://{host}:{source.port}/secret", PUBLIC_ONLY)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert (result.error or "").startswith("refusing to connect to 127.0.0.1: a loopback address")
    assert source.hits["/secret"] == 0


@pytest.mark.parametrize("host", ["１２７.０.０.２", "①②⑦.⓪.⓪.②", "127。0。0。2"])
async def test_case2_a_redirect_to_a_unicode_spelled_internal_host_is_refused(
    source: LocalServer, internal: LocalServer, host: str
) -> None:
    source.add("/feed.xml", b"", status=302, headers={"Location": f"http://{host}:{internal.port}/feed.json"})
    result = await fetch(source.url("/feed.xml"), THE_SOURCE)
    assert result.error_kind is ErrorKind.BLOCKED_ADDRESS
    assert (result.error or "").startswith("refusing to connect to 127.0.0.2: a loopback address")
    assert internal.hits["/feed.json"] == 0


async def test_case2_a_unicode_feed_url_in_feeds_yaml_is_refused_and_said_so(
    tmp_path: Path, source: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source.add("/secret", rss("https://example.org/1"), content_type="application/rss+xml")
    config = write_config(tmp_path, f"http://１２７.０.０.１:{source.port}/secret", source_lines="")
    async with open_app(config) as app:
        await run_once_and_report(app)
    assert "failed     refusing to connect to 127.0.0.1: a loopback address" in capsys.readouterr().out
    assert source.hits["/secret"] == 0
