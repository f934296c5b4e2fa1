"""Parse stage on bad and unusual input: what an operator would see for each kind of feed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config.addresses import AddressPolicy
from monitor.config.settings import Http, Selectors
from monitor.ingest.fetch import Fetcher
from monitor.ingest.normalize import normalize_items
from monitor.ingest.parse import parse, parse_feed, parse_page
from monitor.ingest.parse.feeds import HTML_WARNING
from monitor.models import ErrorKind, FetchResult, ParseResult
from tests.servers import LocalServer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "feeds"
FETCHED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RSS = "application/rss+xml"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def selectors(**values: str) -> Selectors:
    return Selectors.model_validate(values)  # as feeds.yaml gives them; unset keys take defaults


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def fetch_and_parse(
    server: LocalServer, path: str, body: bytes, content_type: str
) -> ParseResult:
    """The real path a source takes: HTTP from a local server, then the parse stage."""
    url = server.add(path, body, content_type=content_type)
    async with Fetcher(Http.model_validate({})) as fetcher:
        # The local server is on loopback, which the source is allowed (as an intranet feed).
        result = await fetcher.fetch("src", url, kind="feed", allow=AddressPolicy(private=True))
    assert result.ok, result.error
    return parse(result, kind="feed", selectors=None)


def titles(result: ParseResult) -> list[str]:
    return [item.title for item in result.items]


# ------------------------------------------------------------------ bad feeds over HTTP


async def test_html_served_as_a_feed_gives_no_items_and_says_so(server: LocalServer) -> None:
    parsed = await fetch_and_parse(server, "/feed", fixture("html_page.html"), RSS)
    assert parsed.items == ()
    assert parsed.warnings == (HTML_WARNING,)
    assert parsed.failed  # so source health records a parse failure


async def test_truncated_feed_keeps_the_items_it_could_read(server: LocalServer) -> None:
    parsed = await fetch_and_parse(server, "/feed", fixture("truncated.xml"), RSS)
    assert titles(parsed) == [
        "BIS adds 12 entities to the Entity List",
        "New licence exception for allied data centres",
    ]
    assert parsed.items[0].summary == "The additions take effect on publication."
    assert len(parsed.warnings) == 1 and parsed.warnings[0].startswith("malformed feed")
    assert not parsed.failed


async def test_legacy_encoding_named_only_by_the_server(server: LocalServer) -> None:
    body = fixture("windows-1252-no-prolog.xml")
    parsed = await fetch_and_parse(
        server, "/feed", body, "application/rss+xml; charset=windows-1252"
    )
    assert titles(parsed) == ["“Contrôles à l’exportation” – la réponse de Bruxelles"]
    assert parsed.items[0].summary == "Le ministère a réagi à la décision américaine."


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("windows-1252.xml", None),  # prolog only
        ("windows-1252.xml", "text/xml"),  # RFC 3023 would say us-ascii: the prolog must win
        ("windows-1252-no-prolog.xml", "application/rss+xml; charset=windows-1252"),
        # The common mislabel: cp1252 bytes (curly quotes) served as ISO-8859-1.
        ("windows-1252-no-prolog.xml", "application/rss+xml; charset=ISO-8859-1"),
    ],
)
def test_windows_1252_decodes_curly_quotes_and_accents(name: str, content_type: str | None) -> None:
    parsed = parse_feed(
        fixture(name), url="https://commerce.example/rss", content_type=content_type
    )
    assert titles(parsed) == ["“Contrôles à l’exportation” – la réponse de Bruxelles"]
    assert parsed.warnings == ()


# ------------------------------------------------------------------ feed content


def test_duplicate_guids_are_kept_as_parsed() -> None:
    # Dedup is a later stage; the parser must not silently drop the second "post-7".
    parsed = parse_feed(fixture("duplicate_guids.xml"), url="https://cms.example/feed")
    assert [item.guid for item in parsed.items] == ["post-7", "post-7", "post-8"]
    assert parsed.items[1].link == "https://cms.example/a/1?update=1"


def test_aggregator_items_keep_the_outlet_they_name() -> None:
    parsed = parse_feed(fixture("aggregator.xml"), url="https://news.example/rss/search")
    reuters, politico = parsed.items
    assert (reuters.outlet, reuters.outlet_url) == ("Reuters", "https://www.reuters.com")
    assert (
        reuters.title == "US widens curbs on AI chip exports - Reuters"
    )  # kept as the feed gave it
    assert (politico.outlet, politico.credit) == ("Politico", "Associated Press")

    articles = normalize_items(
        parsed.items,
        source_id="news-search",
        outlet="News Search",
        owner="",
        tier="aggregator",
        fetched_at=FETCHED,
        now=FETCHED,
    )
    assert [a.outlet for a in articles] == ["Reuters", "Politico"]
    assert articles[0].summary == "US widens curbs on AI chip exports Reuters"


def test_json_feed_1_0() -> None:
    parsed = parse_feed(
        fixture("jsonfeed-1.0.json"),
        url="https://policy.example/feed.json",
        content_type="application/feed+json",
    )
    assert parsed.format == "json1"
    assert parsed.title == "Policy Notes"
    first, untitled = parsed.items
    assert first.guid == "42"  # a number in the wild; a string for us
    assert first.link == "https://policy.example/notes/42"  # relative url resolved
    assert first.author == "A. Analyst"
    assert first.content == "<p>Cloud providers must now <b>verify</b> customers.</p>"
    assert first.published == datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    assert (untitled.title, untitled.link) == ("", "")
    assert untitled.content == "A short post without a title, as microblogs write them."


def test_json_feed_1_1_detected_without_content_type() -> None:
    parsed = parse_feed(fixture("jsonfeed-1.1.json"), url="https://ecb.example/feed.json")
    assert parsed.format == "json1.1"
    post, link_post = parsed.items
    assert post.author == "First Author, Second Author"
    assert post.summary == "An interim final rule, comments due in 60 days."
    assert post.published == datetime(
        2026, 11, 19, 12, 0, tzinfo=UTC
    )  # date_published, not modified
    assert link_post.link == "https://www.bis.gov/press-release/2"  # external_url when no url
    assert link_post.published is None
    assert parsed.warnings == ("unparseable date 'not a date'",)


def test_the_body_decides_between_json_and_xml_when_the_server_mislabels_it() -> None:
    rss = parse_feed(
        fixture("duplicate_guids.xml"), url="https://x.example/f", content_type="application/json"
    )
    assert rss.format == "rss20" and len(rss.items) == 3
    json_feed = parse_feed(
        fixture("jsonfeed-1.1.json"), url="https://x.example/f", content_type="text/xml"
    )
    assert json_feed.format == "json1.1" and len(json_feed.items) == 2


@pytest.mark.parametrize(
    "body", [b'{"version": "https://jsonfeed.org/version/1.1", "items": [', b"{}", b"[1, 2]"]
)
def test_broken_json_feed_is_a_warning_not_an_exception(body: bytes) -> None:
    parsed = parse_feed(body, url="https://x.example/feed.json", content_type="application/json")
    assert parsed.failed


def test_missing_and_unreadable_dates_are_none_with_a_warning() -> None:
    parsed = parse_feed(fixture("dates.xml"), url="https://dates.example/rss")
    dates = {item.title: item.published for item in parsed.items}
    assert dates["No date at all"] is None
    assert dates["A date nobody can read"] is None
    assert dates["A date with an offset"] == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    # RFC 822 with Portuguese day and month names, as real Brazilian feeds write it
    assert dates["Uma data em português"] == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)
    assert parsed.warnings == ("unparseable date 'the day after tomorrow, probably'",)


def test_missing_and_far_future_dates_after_normalisation() -> None:
    parsed = parse_feed(fixture("dates.xml"), url="https://dates.example/rss")
    now = FETCHED + timedelta(minutes=1)
    articles = {
        a.title: a
        for a in normalize_items(
            parsed.items,
            source_id="d",
            outlet="Dates",
            owner="",
            tier="blog",
            fetched_at=FETCHED,
            now=now,
        )
    }
    assert articles["No date at all"].published == FETCHED
    future = articles["A date from the far future"]
    assert future.published == now
    assert future.warnings and "2039-01-01" in future.warnings[0]
    assert articles["A date with an offset"].warnings == ()


def test_feed_entities_cannot_read_files_or_reach_the_network(server: LocalServer) -> None:
    secret = server.url("/secret")
    server.add("/secret", b"SECRET")
    body = f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY net SYSTEM "{secret}"><!ENTITY file SYSTEM "file:///etc/hostname">]>
<rss version="2.0"><channel><title>x</title>
<item><title>a &net; &file; b</title><link>https://x.example/1</link></item>
</channel></rss>""".encode()
    parsed = parse_feed(body, url="https://x.example/rss")
    assert len(parsed.items) == 1
    title = parsed.items[0].title
    assert "SECRET" not in title
    hostname = Path("/etc/hostname")
    if hostname.exists() and hostname.read_text().strip():
        assert hostname.read_text().strip() not in title
    assert server.hits["/secret"] == 0


def test_a_body_that_names_a_file_is_not_opened(tmp_path: Path) -> None:
    # feedparser.parse(bytes) tries open(bytes) first; we must never let it.
    target = tmp_path / "feed.xml"
    target.write_bytes(fixture("duplicate_guids.xml"))
    parsed = parse_feed(str(target).encode(), url="https://x.example/rss")
    assert parsed.items == ()
    assert parsed.failed


@pytest.mark.parametrize(
    "body", [b"", b"\x00\xff\xfe garbage", b"<rss", b"<" * 10_000, b"plain text"]
)
def test_garbage_never_raises(body: bytes) -> None:
    parsed = parse_feed(body, url="https://x.example/rss")
    assert parsed.items == ()
    assert parsed.warnings


# ------------------------------------------------------------------ listing pages


PAGE_SELECTORS = selectors(
    item="article.press-release", title="h2", link="h2 a", date="time, .date", summary=".teaser"
)


def test_page_selectors_resolve_relative_links_and_read_dates() -> None:
    parsed = parse_page(
        fixture("listing.html"),
        url="https://www.bis.example/press-releases/",
        selectors=PAGE_SELECTORS,
    )
    assert parsed.format == "page"
    by_title = {item.title: item for item in parsed.items}
    rules = by_title["Commerce Updates Rules on Advanced Computing"]
    assert rules.link == "https://www.bis.example/press-release/commerce-updates-rules"
    assert rules.published == datetime(
        2026, 11, 20, 20, 0, tzinfo=UTC
    )  # datetime attribute, to UTC
    assert rules.summary == "The rules strengthen controls on “advanced” chips."
    entity = by_title["Entity List Additions"]
    assert (
        entity.link
        == "https://www.bis.example/press-releases/entity-list-additions?utm_source=site"
    )
    assert entity.published == datetime(
        2026, 11, 18, tzinfo=UTC
    )  # from "Posted on November 18, 2026"
    assert by_title["Subscribe to updates"].link == ""  # javascript: is not an article link
    assert by_title["Cross-posted story"].published is None
    assert "Advertisement" not in by_title  # neither title nor link
    assert "unparseable date 'sometime soon'" in parsed.warnings


def test_page_base_href_and_item_that_is_the_link() -> None:
    body = b"""<html><head><base href="https://cdn.example/news/"></head><body>
    <a class="story" href="2026/one">One</a><a class="story" href="/two">Two</a></body></html>"""
    parsed = parse_page(
        body, url="https://site.example/", selectors=selectors(item="a.story", title="a", link="a")
    )
    assert [(i.title, i.link) for i in parsed.items] == [
        ("One", "https://cdn.example/news/2026/one"),
        ("Two", "https://cdn.example/two"),
    ]


def test_page_selector_that_matches_nothing_is_a_failure_with_a_hint() -> None:
    parsed = parse_page(
        fixture("listing.html"), url="https://www.bis.example/", selectors=selectors(item="li.news")
    )
    assert parsed.failed
    assert "matched nothing" in parsed.warnings[0]


def test_page_with_a_broken_selector_is_a_warning() -> None:
    parsed = parse_page(
        fixture("listing.html"),
        url="https://www.bis.example/",
        selectors=selectors(item="article[["),
    )
    assert parsed.failed
    assert parsed.warnings[0].startswith("bad CSS selector")


# ------------------------------------------------------------------ dispatch


def fetch_result(**kwargs: Any) -> FetchResult:
    return FetchResult(
        source_id="s",
        url="https://x.example/",
        final_url="https://x.example/",
        fetched_at=FETCHED,
        **kwargs,
    )


def test_dispatch_by_kind_uses_the_final_url() -> None:
    page = replace(
        fetch_result(body=fixture("listing.html")), final_url="https://www.bis.example/pr/"
    )
    parsed = parse(page, kind="page", selectors=PAGE_SELECTORS)
    assert parsed.items[0].link == "https://www.bis.example/press-release/commerce-updates-rules"
    feed = parse(fetch_result(body=fixture("duplicate_guids.xml")), kind="feed", selectors=None)
    assert feed.format == "rss20" and len(feed.items) == 3


def test_dispatch_of_unchanged_failed_and_misconfigured_results() -> None:
    assert parse(fetch_result(not_modified=True), kind="feed", selectors=None) == ParseResult(
        (), "unknown"
    )
    failed = parse(
        fetch_result(error_kind=ErrorKind.TIMEOUT, error="deadline of 60s exceeded"),
        kind="feed",
        selectors=None,
    )
    assert failed.warnings == ("nothing to parse: deadline of 60s exceeded",)
    no_selectors = parse(fetch_result(body=b"<html></html>"), kind="page", selectors=None)
    assert no_selectors.failed
