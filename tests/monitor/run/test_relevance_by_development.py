"""Relevance belongs to the development: the second outlet that words the event differently
still counts as a source (local feeds and article pages, the real pipeline and store)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.ops.status import print_developments
from monitor.run.app import open_app
from monitor.run.scheduler import run_once
from monitor.store import outbox
from tests.servers import LocalServer
from tests.test_end_to_end import rss, stored

NOW = datetime.now(UTC)
RULES_MATCH = (
    "US adds memory maker YMTC and 35 Chinese firms to Entity List",
    "The Commerce Department put memory maker YMTC and 35 other Chinese companies on the Entity List.",
)
# No term of the second group ("a thing the beat controls"), in the feed or on its page.
WORDED_DIFFERENTLY = (
    "Washington blacklists memory maker YMTC and 35 more Chinese companies",
    "YMTC and 35 other Chinese companies were blacklisted by Washington.",
)
PAGE = (
    "<html><body><article><h1>Washington blacklists memory maker YMTC</h1><p>Memory maker YMTC and 35 "
    "other Chinese companies were blacklisted by Washington on Thursday, officials said, in a move "
    "aimed at companies supplying the military.</p></article></body></html>"
)
UNRELATED = ("Washington blacklists a Chinese steel trader", "A steel trader was blacklisted over sanctions.")


def write_config(path: Path, server: LocalServer) -> Path:
    path.write_text(
        f"""
store:
  url: sqlite:///{path.parent / 'monitor.db'}
http:
  allow_private_addresses: true
  article_min_interval: 0s
defaults:
  interval: 1h
  jitter: 0s
sources:
  - id: alpha
    name: Alpha Times
    url: {server.url('/alpha.xml')}
  - id: beta
    name: Beta Post
    url: {server.url('/beta.xml')}
topics:
  - id: ai-export-controls
    name: AI export controls
    rules:
      any: ["Entity List"]
      groups:
        - ["blacklist*", "ban*", "curb*", "restrict*"]
        - ["chip*", "semiconductor*"]
routes:
  - topic: ai-export-controls
    channel: "#export-controls"
cluster:
  alert_hold: 0s
"""
    )
    return path


@pytest.fixture
def feeds() -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.add("/alpha.xml", rss([]), content_type="application/rss+xml")
        server.add(
            "/beta.xml",
            rss([
                (*WORDED_DIFFERENTLY[:1], server.url("/b/1"), WORDED_DIFFERENTLY[1], NOW - timedelta(hours=2)),
                (*UNRELATED[:1], server.url("/b/2"), UNRELATED[1], NOW - timedelta(hours=2)),
            ]),
            content_type="application/rss+xml",
        )
        server.add("/b/1", PAGE.encode(), content_type="text/html")
        server.add("/b/2", b"<html><body><p>A steel trader was blacklisted.</p></body></html>", content_type="text/html")
        yield server


async def test_a_report_the_rules_miss_counts_once_its_development_forms(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds)
    async with open_app(config) as app:
        first = {r.source_id: r for r in await run_once(app.runtime)}
        # Nothing to join yet: the near miss waits; its page was read once, before a final no.
        assert first["beta"].new_articles == 0 and first["beta"].relevant == 0
        assert feeds.hits["/b/1"] == 1
        assert stored(tmp_path / "monitor.db", "select count(*) from article") == [(0,)]

        feeds.add("/alpha.xml", rss([(RULES_MATCH[0], feeds.url("/a/1"), RULES_MATCH[1], NOW - timedelta(hours=1))]),
                  content_type="application/rss+xml")
        second = {r.source_id: r for r in await run_once(app.runtime)}
        assert second["alpha"].new_articles == 2 and "1 report the topic rules missed joined" in " ".join(second["alpha"].notes)
        with app.store.connect() as conn:
            pending = outbox.due(conn, datetime.now(UTC) + timedelta(seconds=1))
        out = io.StringIO()
        print_developments(app.store, NOW - timedelta(days=1), out=out, settings=app.settings)

    assert [a.kind.value for a in pending] == ["new"]  # corroborated by the report the rules missed
    assert stored(tmp_path / "monitor.db", "select count(*) from development") == [(1,)]
    titles = [t for (t,) in stored(tmp_path / "monitor.db", "select title from article order by id")]
    assert titles == [RULES_MATCH[0], WORDED_DIFFERENTLY[0]]  # the unrelated item is never stored
    text = out.getvalue()
    assert "Verified by 2 sources" in text
    assert "(no topic rule matched it; joined development 1 ('US adds memory maker YMTC" in text
    assert "which matched 'Entity List' in title" in text
    assert feeds.hits["/b/1"] == 1  # a near miss's page is read once, not at every poll


async def test_a_near_miss_whose_page_matches_the_rules_is_kept_on_its_own(tmp_path: Path, feeds: LocalServer) -> None:
    feeds.add("/b/1", (PAGE.replace("Memory maker YMTC", "Memory chipmaker YMTC")).encode(), content_type="text/html")
    config = write_config(tmp_path / "feeds.yaml", feeds)
    async with open_app(config) as app:
        reports = {r.source_id: r for r in await run_once(app.runtime)}
    assert reports["beta"].new_articles == 1 and reports["beta"].relevant == 1  # its page, not its feed item, matched
    [(why,)] = stored(tmp_path / "monitor.db", "select topics from article")
    assert "'chip*' (chipmaker) in text" in why


async def test_a_burst_of_near_misses_is_bounded_and_said(tmp_path: Path, feeds: LocalServer) -> None:
    """10,000 items of export news about other goods: the poll reads its cap of items, fetches
    pages for at most its page budget, keeps a bounded number waiting, and says so."""
    goods = ("rice", "steel", "coal", "timber", "cotton")
    items = [
        (f"Washington curbs {goods[n % 5]} shipments, batch {n}", feeds.url(f"/n/{n}"), "Short teaser.", NOW - timedelta(minutes=n))
        for n in range(10_000)
    ]
    feeds.add("/beta.xml", rss(items), content_type="application/rss+xml")
    for n in range(600):
        feeds.add(f"/n/{n}", b"<html><body><p>Shipments were curbed.</p></body></html>", content_type="text/html")
    config = write_config(tmp_path / "feeds.yaml", feeds)
    async with open_app(config) as app:
        report = {r.source_id: r for r in await run_once(app.runtime)}["beta"]
        waiting = len(app.runtime.analyzer.near_misses)
    notes = " ".join(report.notes)
    assert report.items <= app.settings.defaults.max_items  # the newest items only, with a warning
    assert "full text: 20 pages fetched" in notes and "skipped" in notes  # the page budget, said
    assert sum(feeds.hits[f"/n/{n}"] for n in range(600)) <= 20
    assert waiting <= app.runtime.analyzer.near_misses.limit
    assert report.new_articles == 0  # none of them is the beat, none is stored
