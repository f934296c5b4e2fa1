"""Issue 12, cases 3, 4, 6, 11-14 and the deep-JSON part of 18: what one poll of a hostile
or sloppy feed gives an operator — from a real local server through `run_once` into the
store, or, for the parser's own promises, from `parse_feed`.

Memory and time of the worst cases (10 MB feeds, 48 KB author fields) are measured in
`bench/hostile.py`, not asserted here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.ingest.normalize import clean_text
from monitor.ingest.parse.feeds import parse_feed
from monitor.run.app import open_app
from monitor.run.scheduler import run_once
from tests.configs import write_one_source_config
from tests.servers import LocalServer

NOW = datetime.now(UTC).replace(microsecond=0)
TEXT = "The Bureau of Industry and Security added chip designers to the Entity List. " * 8


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def rss(items: str) -> bytes:
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def item(title: str, link: str = "", guid: str = "", date: str = "", body: str = TEXT) -> str:
    return (
        f"<item><title>{title}</title>" + (f"<link>{link}</link>" if link else "")
        + (f'<guid isPermaLink="false">{guid}</guid>' if guid else "")
        + (f"<pubDate>{date}</pubDate>" if date else "") + f"<description>{body}</description></item>"
    )  # fmt: skip


def write_config(tmp_path: Path, url: str, source_extra: str = "") -> Path:
    lines = "    allow_private: true\n" + source_extra
    return write_one_source_config(tmp_path, url, source_id="hostile", name="A hostile feed", source_lines=lines)


async def poll(tmp_path: Path, url: str, source_extra: str = "", times: int = 1):
    async with open_app(write_config(tmp_path, url, source_extra)) as app:
        return [(await run_once(app.runtime))[0] for _ in range(times)]


def stored(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        return conn.execute(sql).fetchall()


# ------------------------------------------------------------------ case 3: items per poll


async def test_case3_a_feed_of_5000_items_gives_the_newest_max_items_and_a_warning_naming_the_source(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Oldest first in the document: the newest are at the end, where a naive cut would miss them.
    items = "".join(
        item(f"Entity List entry {n}", f"https://example.org/{n}", date=format_datetime(NOW - timedelta(minutes=5000 - n)))
        for n in range(5000)
    )
    url = server.add("/feed.xml", rss(items), content_type="application/rss+xml")
    with caplog.at_level(logging.WARNING, logger="monitor.run.pipeline"):
        [report] = await poll(tmp_path, url, "    max_items: 40\n")
    assert (report.items, report.new_articles) == (40, 40)
    assert report.warnings[0] == "the feed lists 5000 items; read the newest 40 (max_items)"
    record = next(r for r in caplog.records if r.getMessage() == "feed read with warnings")
    assert record.source == "hostile"  # type: ignore[attr-defined]
    titles = {t for (t,) in stored(tmp_path, "select title from article")}
    assert titles == {f"Entity List entry {n}" for n in range(4960, 5000)}


async def test_case3_a_json_feed_of_many_objects_is_streamed_and_capped(tmp_path: Path, server: LocalServer) -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [{}] * 100_000 + [
        {"id": str(n), "url": f"https://example.org/{n}", "title": f"Entity List {n}", "content_text": TEXT,
         "date_published": (NOW - timedelta(minutes=n)).isoformat()} for n in range(10)]}
    url = server.add("/feed.json", json.dumps(doc), content_type="application/feed+json")
    [report] = await poll(tmp_path, url, "    max_items: 5\n")
    assert report.items == 5 and report.new_articles == 5
    assert report.warnings[0] == "the feed lists 100010 items; read the newest 5 (max_items)"
    assert {t for (t,) in stored(tmp_path, "select title from article")} == {f"Entity List {n}" for n in range(5)}


def test_case3_a_million_empty_items_are_read_as_max_items() -> None:
    parsed = parse_feed(rss("<item/>" * 1_000_000), url="https://example.org/", max_items=500)
    assert len(parsed.items) == 500
    assert parsed.warnings == ("the feed lists 1000000 items; read the newest 500 (max_items)",)


# ------------------------------------------------------------------ case 4: field sizes


async def test_case4_a_64kb_author_field_is_cut_before_feedparser_and_the_item_kept(
    tmp_path: Path, server: LocalServer
) -> None:
    # xml:base makes the lxml fast path decline: feedparser, whose author pattern is
    # quadratic (16 KB: 1 s of CPU), reads it.
    author = "a" * 65_536
    atom = (
        '<?xml version="1.0"?><rss version="2.0"><channel xml:base="https://example.org/"><title>t</title>'
        f"<item><title>Entity List grows</title><link>https://example.org/1</link><author>{author}</author>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><description>{TEXT}</description></item></channel></rss>"
    ).encode()
    parsed = parse_feed(atom, url="https://example.org/")
    assert len(parsed.items) == 1 and len(parsed.items[0].author) <= 600
    url = server.add("/authors.xml", atom, content_type="application/rss+xml")
    [report] = await poll(tmp_path, url)
    assert (report.outcome, report.new_articles) == ("new", 1)


# ------------------------------------------------------------------ case 6: out-of-range dates


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (rss(item("Entity List far future", "https://example.org/1", date="Fri, 31 Dec 9999 23:59:59 -1200")
             + item("Entity List today", "https://example.org/2", date=format_datetime(NOW))), "application/rss+xml"),
        (('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
          '<entry><id>urn:1</id><title>Entity List far past</title><link href="https://example.org/1"/>'
          f'<updated>0001-01-01T00:00:00+14:00</updated><content>{TEXT}</content></entry>'
          f'<entry><id>urn:2</id><title>Entity List today</title><link href="https://example.org/2"/>'
          f'<updated>{NOW.isoformat()}</updated><content>{TEXT}</content></entry></feed>').encode(), "application/atom+xml"),
        (json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
            {"id": "1", "url": "https://example.org/1", "title": "Entity List far past", "content_text": TEXT,
             "date_published": "0001-01-01T00:00:00+14:00"},
            {"id": "2", "url": "https://example.org/2", "title": "Entity List today", "content_text": TEXT,
             "date_published": NOW.isoformat()}]}).encode(), "application/feed+json"),
    ],
    ids=["rss", "atom", "json"],
)
async def test_case6_one_out_of_range_date_costs_that_date_not_the_feed(
    tmp_path: Path, server: LocalServer, document: bytes, content_type: str
) -> None:
    url = server.add("/feed", document, content_type=content_type)
    [report] = await poll(tmp_path, url)
    assert (report.outcome, report.items, report.new_articles) == ("new", 2, 2)
    assert any(w.endswith("(out of range)") for w in report.warnings)
    dates = dict(stored(tmp_path, "select title, published from article"))
    assert dates["Entity List today"].startswith(NOW.strftime("%Y-%m-%d"))


# ------------------------------------------------------------------ case 11: exact dedup identity


async def test_case11_items_differing_only_by_a_naming_fragment_are_all_kept(tmp_path: Path, server: LocalServer) -> None:
    items = "".join(item(f"Entity List note {n}", f"https://example.org/live#update-{n}", body=f"{TEXT} {n}") for n in range(50))
    url = server.add("/feed.xml", rss(items), content_type="application/rss+xml")
    first, second = await poll(tmp_path, url, times=2)
    assert first.new_articles == 50
    assert second.new_articles == 0  # and stable: nothing comes back as new


async def test_case11_items_that_all_link_to_the_home_page_are_told_apart_by_guid(tmp_path: Path, server: LocalServer) -> None:
    items = "".join(item(f"Entity List bulletin {n}", "https://example.org/", guid=f"bulletin-{n}", body=f"{TEXT} {n}") for n in range(131))
    url = server.add("/feed.xml", rss(items), content_type="application/rss+xml")
    first, second = await poll(tmp_path, url, "    max_items: 200\n", times=2)
    assert (first.new_articles, second.new_articles) == (131, 0)


def test_case11_tracking_fragments_and_in_page_anchors_name_nothing() -> None:
    from monitor.ingest.normalize import normalize_item
    from monitor.models import Item

    def identity(link: str) -> str:
        article = normalize_item(Item(title="t", link=link), source_id="s", outlet="o", owner="", tier="outlet",
                                 fetched_at=NOW, now=NOW)
        return article.guid

    assert identity("https://example.org/a#xtor=RSS-1") == identity("https://example.org/a#comments") == "https://example.org/a"
    assert identity("https://example.org/a#item-2") == "https://example.org/a#item-2"


# ------------------------------------------------------------------ case 12: article links


async def test_case12_only_http_alternate_links_become_article_urls(tmp_path: Path, server: LocalServer) -> None:
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        '<entry><id>urn:1</id><title>Entity List licence</title>'
        '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/"/>'
        '<link rel="via" href="https://aggregator.example/x"/>'
        f"<updated>{NOW.isoformat()}</updated><content>{TEXT}</content></entry></feed>"
    ).encode()
    schemes = ["javascript:alert(1)", "vbscript:msgbox(1)", "data:text/html,<b>x</b>", "tag:example.org,2026:1"]
    feed = rss("".join(item(f"Entity List {n}", link, body=f"{TEXT} {n}") for n, link in enumerate(schemes)))
    parsed = parse_feed(atom, url="https://example.org/")
    assert "creativecommons" not in parsed.items[0].link and "aggregator" not in parsed.items[0].link
    server.add("/atom.xml", atom, content_type="application/atom+xml")
    url = server.add("/feed.xml", feed, content_type="application/rss+xml")
    [report] = await poll(tmp_path, url)
    assert report.new_articles == 4
    assert stored(tmp_path, "select distinct url from article") == [("",)]
    tmp2 = tmp_path / "atom"
    tmp2.mkdir()
    await poll(tmp2, server.url("/atom.xml"))
    assert stored(tmp2, "select title, url from article") == [("Entity List licence", "")]


# ------------------------------------------------------------------ case 13: strict dates


@pytest.mark.parametrize(
    ("date", "expected", "warning"),
    [
        ("Tue, 10 Mar 2026 23:59:60 GMT", datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC), None),
        ("Tue, 10 Jun 03 04:00:00 GMT", datetime(2003, 6, 10, 4, tzinfo=UTC), None),
        ("Tue, 10 Mar 2026 10:00:00 CET", datetime(2026, 3, 10, 9, tzinfo=UTC), None),
        ("Tue, 10 Mar 2026 10:00:00 EDT", datetime(2026, 3, 10, 14, tzinfo=UTC), None),
        ("Tue, 10 Mar 2026 10:00:00 XYZ", None, "unparseable date 'Tue, 10 Mar 2026 10:00:00 XYZ' (unknown time zone XYZ)"),
    ],
)
def test_case13_rss_dates_are_read_strictly_and_said_when_not_understood(
    date: str, expected: datetime | None, warning: str | None
) -> None:
    parsed = parse_feed(rss(item("a", "https://example.org/1", date=date)), url="https://example.org/")
    assert parsed.items[0].published == expected
    assert parsed.warnings == ((warning,) if warning else ())


@pytest.mark.parametrize("date", ["Tuesday", "May 2017", "next week"])
def test_case13_json_feed_dates_are_never_guessed(date: str) -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "x", "date_published": date}]}
    parsed = parse_feed(json.dumps(doc).encode(), url="https://example.org/")
    assert parsed.items[0].published is None
    assert parsed.warnings == (f"unparseable date {date!r}",)


# ------------------------------------------------------------------ case 14: clean_text


async def test_case14_double_escaped_markup_never_reaches_a_stored_summary(tmp_path: Path, server: LocalServer) -> None:
    body = "Entity List &amp;amp;lt;script&amp;amp;gt;alert(1)&amp;amp;lt;/script&amp;amp;gt; it&amp;amp;#8217;s official " + TEXT
    url = server.add("/feed.xml", rss(item("Entity List", "https://example.org/1", body=body)), content_type="application/rss+xml")
    await poll(tmp_path, url)
    [(summary,)] = stored(tmp_path, "select summary from article")
    assert "<" not in summary and "script" not in summary and "alert(1)" not in summary
    assert summary.startswith("Entity List it’s official")
    assert clean_text("a &amp;lt; b") == "a < b"  # text that only looks like a comparison stays


# ------------------------------------------------------------------ case 18: deep JSON


async def test_case18_deeply_nested_json_is_one_clear_line(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    deep = b'{"version": "https://jsonfeed.org/version/1.1", "items": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}"
    url = server.add("/feed.json", deep, content_type="application/feed+json")
    with caplog.at_level(logging.INFO):
        [report] = await poll(tmp_path, url)
    assert (report.outcome, report.error) == ("failed", "malformed JSON feed: nested too deeply to read")
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
