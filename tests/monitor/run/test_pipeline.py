"""The wired pipeline, in process: local feeds in, store rows, outbox rows and metrics out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.ops import metrics
from monitor.run.app import open_app
from monitor.run.scheduler import run_once
from monitor.store import outbox, sources
from tests.servers import LocalServer
from tests.test_end_to_end import NOW, STORY, rss, stored, write_config

# Written independently (not a copy of STORY): two origins, so the development is corroborated.
INDEPENDENT = (
    "Fourteen Chinese designers of AI chips were put on the Entity List by the Bureau of Industry "
    "and Security, which now requires a licence for exports of advanced chips to them."
)


@pytest.fixture
def feeds() -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.add("/alpha.xml", rss([("US adds 14 Chinese AI chip designers to Entity List", server.url("/a/1"), STORY, NOW)]),
                   content_type="application/rss+xml")
        server.add("/beta.xml", rss([("Commerce puts 14 Chinese AI chip designers on Entity List", server.url("/b/1"), INDEPENDENT, NOW)]),
                   content_type="application/rss+xml")
        server.add("/broken.xml", b"<html><body>not a feed</body></html>", content_type="text/html")
        yield server


async def test_a_cycle_counts_fetches_and_stores_one_development(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds)
    before = metrics.sample("monitor_fetches_total", {"source": "alpha", "outcome": "ok"}) or 0
    async with open_app(config) as app:
        first = {r.source_id: r for r in await run_once(app.runtime)}
        second = {r.source_id: r for r in await run_once(app.runtime)}
        with app.store.connect() as conn:
            pending = outbox.due(conn, datetime.now(UTC) + timedelta(seconds=1))
            broken = sources.get_health(conn, "broken")
            refused = sources.get_health(conn, "refused")

    assert first["alpha"].outcome == "new" and first["beta"].outcome == "new"
    assert second["alpha"].outcome == "unchanged"  # body hash: an unchanged feed costs a GET only
    assert (metrics.sample("monitor_fetches_total", {"source": "alpha", "outcome": "ok"}) or 0) - before == 1
    assert metrics.sample("monitor_fetches_total", {"source": "alpha", "outcome": "not_modified"})
    assert metrics.sample("monitor_fetches_total", {"source": "refused", "outcome": "connect"})
    assert [a.kind.value for a in pending] == ["new"]  # one parent for #export-controls, queued once
    assert broken.last_error_kind is not None and broken.last_error_kind.value == "parse"
    assert refused.consecutive_failures >= 1  # skipped in the second cycle while backing off
    assert second["refused"].outcome in ("skipped", "failed")
    assert stored(tmp_path / "monitor.db", "select count(*) from development") == [(1,)]


async def test_a_verbatim_copy_is_a_reprint_not_a_second_source(tmp_path: Path, feeds: LocalServer) -> None:
    feeds.add("/beta.xml", rss([("Commerce puts 14 Chinese AI chip designers on Entity List", feeds.url("/b/1"), STORY, NOW)]),
              content_type="application/rss+xml")
    config = write_config(tmp_path / "feeds.yaml", feeds)
    async with open_app(config) as app:
        await run_once(app.runtime)
    db = tmp_path / "monitor.db"
    assert stored(db, "select state, independent from development") == [("single_source", 1)]
    assert stored(db, "select count(*) from alert") == [(0,)]
    assert stored(db, "select count(*) from article where reprint_of is not null") == [(1,)]


async def test_a_restart_rebuilds_the_indexes_and_adds_to_the_same_development(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path / "feeds.yaml", feeds)
    async with open_app(config) as app:
        await run_once(app.runtime)
    feeds.add("/gamma.xml", rss([("Entity List grows by 14 Chinese AI chip designers", feeds.url("/c/1"), STORY.replace("officials said", "the agency said"), NOW)]),
              content_type="application/rss+xml")
    gamma = f"  - id: gamma\n    name: Gamma Daily\n    url: {feeds.url('/gamma.xml')}\n"
    write_config(config, feeds, extra_source=gamma)
    async with open_app(config) as app:  # a new process: the analyzer is restored from the store
        reports = {r.source_id: r for r in await run_once(app.runtime)}
    assert reports["gamma"].new_articles == 1
    db = tmp_path / "monitor.db"
    assert stored(db, "select count(*) from development") == [(1,)]
    assert stored(db, "select count(distinct development_id) from article") == [(1,)]


async def test_a_failed_write_loses_nothing_and_the_next_poll_stores_everything(
    tmp_path: Path, feeds: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A locked or full database rolls the batch back; the in-memory indexes must follow."""
    from monitor.store import articles

    config = write_config(tmp_path / "feeds.yaml", feeds)
    real_insert = articles.insert_articles
    failures = iter([OSError("database is locked")])

    def insert_once_failing(conn, batch):  # type: ignore[no-untyped-def]
        error = next(failures, None) if batch else None
        if error is not None:
            raise error
        return real_insert(conn, batch)

    monkeypatch.setattr(articles, "insert_articles", insert_once_failing)
    async with open_app(config) as app:
        first = {r.source_id: r for r in await run_once(app.runtime)}
        second = {r.source_id: r for r in await run_once(app.runtime)}
    assert "failed" in {first["alpha"].outcome, first["beta"].outcome}
    assert all(r.outcome != "failed" for name, r in second.items() if name in ("alpha", "beta"))
    db = tmp_path / "monitor.db"
    assert stored(db, "select count(*) from article") == [(2,)]
    assert stored(db, "select state, independent from development") == [("corroborated", 2)]


def test_a_development_corroborated_while_stale_gets_its_parent_when_news_arrives() -> None:
    """The outbox, not the stored state, says whether a channel already has a parent."""
    from alerts.decide import PreviousState, decide
    from monitor.config.settings import Route
    from monitor.models import Decision, Development, DevelopmentState, Impact

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    dev = Development(topic="t", headline="h", first_seen=now, last_seen=now, id=5,
                      state=DevelopmentState.CORROBORATED, independent=3, impact=Impact(5))
    decision = Decision(DevelopmentState.CORROBORATED, 3, "3 independent: A, B, C")
    earlier = PreviousState(DevelopmentState.CORROBORATED, 2, 5)
    routes = [Route(topic="t", channel="#c")]
    rows = decide(dev, decision, earlier, routes, [], now=now, new_article_ids=[9], posted=set())
    assert [(a.kind.value, a.channel) for a in rows] == [("new", "#c")]
    rows = decide(dev, decision, earlier, routes, [], now=now, new_article_ids=[9], posted={"#c"})
    assert [(a.kind.value, a.channel) for a in rows] == [("update", "#c")]
