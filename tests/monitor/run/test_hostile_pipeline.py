"""Issue 12, cases 5, 16 and the store part of 18: bounded article-page work per poll, and
failures that are contained — a routing error never costs stored articles, a full disk or
a second monitor on the same store is one line, not a traceback."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import event

from monitor.config.settings import QuietHours, Route
from monitor.run.app import open_app, run_once_and_report
from monitor.run.scheduler import run_once
from tests.configs import write_one_source_config
from tests.monitor.run.test_pipeline import INDEPENDENT
from tests.servers import LocalServer
from tests.test_end_to_end import STORY as PIPELINE_STORY

NOW = datetime.now(UTC)
TEASER = "Entity List: read more."
STORY = "The Bureau of Industry and Security added chip designers to the Entity List. " * 10


def rss(links: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Entity List news {n}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><description>{TEASER} {n}</description></item>"
        for n, link in enumerate(links)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def write_config(tmp_path: Path, url: str, http_extra: str = "", extra: str = "") -> Path:
    return write_one_source_config(tmp_path, url, source_id="teasers", name="Teasers", http_lines=http_extra, extra=extra)


def stored(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        return conn.execute(sql).fetchall()


class Pages:
    """Article pages on two loopback hosts that record how many are being served at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.most_per_host: dict[str, int] = {}
        self.now_per_host: dict[str, int] = {}

    def handler(self, host: str):  # type: ignore[no-untyped-def]
        async def page(request: web.Request) -> web.StreamResponse:
            with self.lock:
                self.now += 1
                self.now_per_host[host] = self.now_per_host.get(host, 0) + 1
                self.most = max(self.most, self.now)
                self.most_per_host[host] = max(self.most_per_host.get(host, 0), self.now_per_host[host])
            await asyncio.sleep(self.delay)
            with self.lock:
                self.now -= 1
                self.now_per_host[host] -= 1
            return web.Response(text=f"<html><body><article><p>{STORY}</p></article></body></html>", content_type="text/html")

        return page


@pytest.fixture
def two_hosts() -> Iterator[tuple[LocalServer, LocalServer]]:
    with LocalServer() as one, LocalServer(host="127.0.0.2") as two:
        yield one, two


def teaser_feed(one: LocalServer, two: LocalServer, pages: Pages, per_host: int) -> str:
    links = []
    for server in (one, two):
        server.add("/a/{n}", pages.handler(server.host))
        for n in range(per_host):
            links.append(server.add(f"/a/{n}", pages.handler(server.host)))
    return one.add("/feed.xml", rss(links), content_type="application/rss+xml")


# ------------------------------------------------------------------ case 5


async def test_case5_article_pages_stop_at_the_page_budget_and_the_report_says_so(
    tmp_path: Path, two_hosts: tuple[LocalServer, LocalServer], capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = two_hosts
    pages = Pages(delay=0.2)
    url = teaser_feed(one, two, pages, per_host=6)
    config = write_config(tmp_path, url, "  article_pages_per_poll: 5\n")
    async with open_app(config) as app:
        await run_once_and_report(app)
    line = next(line for line in capsys.readouterr().out.splitlines() if "teasers" in line)
    assert line.endswith(
        "12 items, 12 relevant, 12 new, 0 alerts; full text: 5 pages fetched, "
        "7 skipped (7 over the 5-page budget (http.article_pages_per_poll))"
    )
    assert sum(one.hits[f"/a/{n}"] + two.hits[f"/a/{n}"] for n in range(6)) == 5
    assert stored(tmp_path, "select count(*) from article") == [(12,)]  # all kept, from the feed alone
    assert pages.most >= 2  # hosts in parallel...
    assert pages.most_per_host == {"127.0.0.1": 1, "127.0.0.2": 1}  # ...one host's pages in turn


async def test_case5_article_pages_stop_when_the_time_budget_runs_out(
    tmp_path: Path, two_hosts: tuple[LocalServer, LocalServer]
) -> None:
    one, two = two_hosts
    pages = Pages(delay=3.0)  # each page takes longer than the whole budget
    url = teaser_feed(one, two, pages, per_host=3)
    config = write_config(tmp_path, url, "  article_time_per_poll: 1s\n")
    async with open_app(config) as app:
        [report] = await run_once(app.runtime)
    assert report.notes == (
        "full text: 0 pages fetched, 6 skipped (6 after the 1 s budget ran out (http.article_time_per_poll))",
    )
    assert report.new_articles == 6  # stored from the feed alone
    assert pages.most == 2  # one page per host had started when the time ran out


# ------------------------------------------------------------------ case 16


async def test_case16_a_routing_error_never_rolls_back_stored_articles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with LocalServer() as one, LocalServer(host="127.0.0.2") as two:
        for server, story in ((one, PIPELINE_STORY), (two, INDEPENDENT)):  # two independent reports
            server.add("/feed.xml", rss([server.url("/a/1")]).replace(f"{TEASER} 0".encode(), story.encode()),
                       content_type="application/rss+xml")
        config = write_config(tmp_path, one.url("/feed.xml"))
        config.write_text(config.read_text().replace("topics:\n", f"""  - id: second
    name: Second
    url: {two.url('/feed.xml')}
    allow_private: true
topics:
""") + 'routes:\n  - topic: ai\n    channel: "#c"\n', encoding="utf-8")
        async with open_app(config) as app:
            # Quiet hours the validation now refuses, as a settings object built before it did.
            bad = Route.model_construct(topic="ai", channel="#c", oncall_channel=None, oncall_threshold=8, mention=None,
                                        quiet_hours=QuietHours.model_construct(start="25:00", end="07:00", timezone="UTC"))
            app.runtime.settings = app.runtime.settings.model_copy(update={"routes": (bad,)})
            with caplog.at_level(logging.ERROR):
                reports = await run_once(app.runtime)
    assert all(r.outcome == "new" for r in reports), reports
    assert stored(tmp_path, "select count(*) from article") == [(2,)]
    assert stored(tmp_path, "select state from development") == [("corroborated",)]
    assert "could not route the alert of a development; its articles are stored" in caplog.text
    assert "Traceback" not in caplog.text


# ------------------------------------------------------------------ case 18


async def test_case18_a_full_disk_is_one_line_and_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with LocalServer() as server:
        # Twenty long items: more new pages than a freshly migrated store has free.
        links = [server.url(f"/a/{n}") for n in range(20)]
        url = server.add("/feed.xml", rss(links).replace(TEASER.encode(), (STORY * 12).encode()),
                         content_type="application/rss+xml")
        async with open_app(write_config(tmp_path, url)) as app:
            def no_room(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
                pages = dbapi_connection.execute("pragma page_count").fetchone()[0]
                dbapi_connection.execute(f"pragma max_page_count = {pages}")  # SQLite: 'database or disk is full'

            event.listen(app.store.engine, "connect", no_room)
            app.store.engine.dispose()
            with caplog.at_level(logging.INFO):
                await run_once_and_report(app)
            event.remove(app.store.engine, "connect", no_room)
            app.store.engine.dispose()
            [again] = await run_once(app.runtime)
    line = next(line for line in capsys.readouterr().out.splitlines() if "teasers" in line)
    assert line.endswith(
        "failed     could not write to the store: database or disk is full. Nothing from this poll "
        "was stored; the next poll fetches it again"
    )
    assert "Traceback" not in caplog.text
    assert again.new_articles == 20  # once there is room, the same poll stores it all


async def test_case18_a_second_monitor_on_the_same_store_is_named(tmp_path: Path) -> None:
    with LocalServer() as server:
        one = server.add("/one.xml", rss([server.url("/a/1")]).replace(TEASER.encode(), STORY.encode()), content_type="application/rss+xml")
        two = server.add("/two.xml", rss([server.url("/b/1")]).replace(TEASER.encode(), STORY.encode() + b" Two."), content_type="application/rss+xml")
        first_config = write_config(tmp_path, one)
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        second_config = write_config(second_dir, two)
        second_config.write_text(second_config.read_text().replace(str(second_dir / "monitor.db"), str(tmp_path / "monitor.db")))
        async with open_app(first_config) as first, open_app(second_config) as second:
            await run_once(first.runtime)  # both numbered their next article 1 at start
            [report] = await run_once(second.runtime)
    assert report.outcome == "failed"
    assert report.error.startswith("the store already holds rows this poll meant to add (")
    assert report.error.endswith(
        "is another monitor writing to this store? Run one monitor per store. Nothing from this poll was stored"
    )
