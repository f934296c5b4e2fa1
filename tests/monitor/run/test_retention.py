"""Retention as the daily job runs it: what is pruned, forgotten and kept, and SQLite's size."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config.holder import ConfigHolder
from monitor.config.settings import Settings
from monitor.models import Alert, AlertKind, Article, Development, NewPayload
from monitor.run.retention import make_retention_job, prune
from monitor.store import Store, articles, developments, outbox
from monitor.store.maintenance import checkpoint_wal, vacuum
from tests.store_rows import features

NOW = datetime(2026, 3, 10, 3, 17, tzinfo=UTC)


def settings(retention: str = "7d", forget_after: str = "30d") -> Settings:
    return Settings.model_validate({"store": {"retention": retention, "forget_after": forget_after}})


def article(n: int, published: datetime, *, text: str = "Full text of the story.", **changes: object) -> Article:
    base = Article(
        id=n,
        source_id="wire",
        outlet="Reuters",
        url=f"https://example.com/a/{n}",
        canonical_url=f"https://example.com/a/{n}",
        title=f"Export rule story {n}",
        summary="Summary.",
        text=text,
        published=published,
        fetched=published,
        guid=f"g{n}",
        content_hash=f"h{n}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def seed(store: Store) -> None:
    """A closed development 40 days old with an alert, articles aged 1, 10 and 40 days."""
    old = NOW - timedelta(days=40)
    dev = Development(id=1, topic="ai", headline="Old rule", lead="The old lead", first_seen=old, last_seen=old)
    with store.transaction() as conn:
        articles.insert_articles(
            conn,
            [
                article(1, old, development_id=1),
                article(2, NOW - timedelta(days=10)),
                article(3, NOW - timedelta(days=1)),
            ],
        )
        developments.upsert_development(conn, dev, {"centroid": {"chip": 1.0}})
        outbox.enqueue(conn, Alert(AlertKind.NEW, "#exports", "dev-1", development_id=1, payload=NewPayload(reason="Old rule", independent=2, impact=5, oncall=False, article_ids=()), created=old))


def test_prune_clears_middle_aged_text_forgets_the_oldest_and_keeps_summaries(store: Store) -> None:
    seed(store)
    report = prune(store, settings("7d", "30d"), NOW)
    assert (report.pruned, report.forgotten) == (1, 1)
    with store.connect() as conn:
        known = articles.find_known(conn, canonical_urls=[f"https://example.com/a/{n}" for n in (1, 2, 3)])
        dev = developments.get_development(conn, 1)
        alert = outbox.get_alert(conn, 1)
        recent = {a.id: a for a in articles.iter_recent_articles(conn, NOW - timedelta(days=60))}
    # 40 days: gone, keys too. 10 days: text cleared, still known to dedup. 1 day: whole.
    assert known.canonical_urls == {"https://example.com/a/2", "https://example.com/a/3"}
    assert set(recent) == {2, 3}
    assert (recent[2].text, recent[2].title) == ("", "Export rule story 2")
    assert recent[3].text == "Full text of the story."
    # The development and its alert keep their summaries after their articles are gone.
    assert dev is not None and (dev.headline, dev.lead) == ("Old rule", "The old lead")
    assert alert is not None and alert.payload.reason == "Old rule"


def test_clustering_features_go_only_once_a_development_is_past_both_windows(store: Store) -> None:
    seed(store)  # development 1: last seen 40 days ago
    recent = Development(id=2, topic="ai", headline="Recent", first_seen=NOW - timedelta(days=2), last_seen=NOW - timedelta(days=2))
    with store.transaction() as conn:
        developments.upsert_development(conn, recent, {"centroid": {"rule": 1.0}})
    report = prune(store, settings("1d", "30d"), NOW)  # retention 1d, cluster.window 3d
    with store.connect() as conn:
        old_features = features(conn, 1)
        recent_features = features(conn, 2)
    assert report.features_cleared == 1
    assert old_features is None
    # Within cluster.window: a restart rebuilds the cluster index from these.
    assert recent_features == {"centroid": {"rule": 1.0}}


def test_a_second_run_the_same_day_changes_nothing(store: Store) -> None:
    seed(store)
    prune(store, settings(), NOW)
    again = prune(store, settings(), NOW)
    assert (again.pruned, again.forgotten, again.features_cleared) == (0, 0, 0)


def test_forget_after_shorter_than_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="forget_after must not be shorter than store.retention"):
        settings("30d", "7d")


def sqlite_store(tmp_path: Path) -> tuple[Store, Path]:
    path = tmp_path / "monitor.db"
    store = Store.open(f"sqlite:///{path}")
    store.upgrade()
    return store, path


def fill(store: Store, first: int, count: int, published: datetime, chars: int = 4000) -> None:
    with store.transaction() as conn:
        articles.insert_articles(conn, [article(n, published, text="x" * chars) for n in range(first, first + count)])


def test_sqlite_compacts_when_most_of_the_file_is_freed(tmp_path: Path) -> None:
    store, path = sqlite_store(tmp_path)
    fill(store, 1, 2000, NOW - timedelta(days=60))  # ~8 MB that retention will forget
    fill(store, 5000, 50, NOW)
    vacuum(store)
    checkpoint_wal(store)  # the main file holds everything before we measure it
    size_full = path.stat().st_size
    report = prune(store, settings(), NOW, compact_min_free_bytes=1_000_000)
    store.close()
    assert report.forgotten == 2000 and report.compacted
    assert path.stat().st_size < size_full / 4
    assert report.file_bytes == path.stat().st_size
    wal = Path(str(path) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_sqlite_compacts_when_pruned_text_leaves_pages_mostly_empty(tmp_path: Path) -> None:
    store, path = sqlite_store(tmp_path)
    # Rows that fit in a page: clearing their text empties the pages without freeing them.
    fill(store, 1, 3000, NOW - timedelta(days=10), chars=2500)
    checkpoint_wal(store)  # the main file holds everything before we measure it
    size_full = path.stat().st_size
    report = prune(store, settings("7d", "30d"), NOW, compact_min_free_bytes=1_000_000)
    store.close()
    assert (report.pruned, report.forgotten, report.compacted) == (3000, 0, True)
    assert path.stat().st_size < size_full / 2


def test_sqlite_keeps_freed_pages_for_reuse_when_little_is_freed(tmp_path: Path) -> None:
    store, path = sqlite_store(tmp_path)
    fill(store, 1, 100, NOW - timedelta(days=60))
    fill(store, 1000, 1000, NOW)
    report = prune(store, settings(), NOW, compact_min_free_bytes=1_000_000)
    size_after_prune = path.stat().st_size
    assert report.forgotten == 100 and not report.compacted
    assert report.free_bytes and report.free_bytes > 100 * 4000
    # The next day's articles go into the freed pages: the file does not grow.
    fill(store, 3000, 80, NOW + timedelta(days=1))
    checkpoint_wal(store)
    store.close()
    assert path.stat().st_size == size_after_prune


def test_wal_is_truncated_after_the_daily_prune(tmp_path: Path) -> None:
    store, path = sqlite_store(tmp_path)
    fill(store, 1, 500, NOW - timedelta(days=10))  # pruned (text cleared): a large write
    prune(store, settings(), NOW)
    wal = Path(str(path) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    store.close()


async def test_the_job_uses_the_settings_in_force_and_the_clock(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("store:\n  url: sqlite:///monitor.db\n  retention: 90d\n", encoding="utf-8")
    holder = ConfigHolder.load(config)
    store, _path = sqlite_store(tmp_path)
    seed(store)
    job = make_retention_job(store, holder, clock=lambda: NOW)
    first = await job()
    assert first is not None and (first.pruned, first.forgotten) == (0, 0)
    config.write_text("store:\n  url: sqlite:///monitor.db\n  retention: 5d\n  forget_after: 20d\n", encoding="utf-8")
    assert holder.reload()[0]
    second = await job()
    store.close()
    assert second is not None and (second.pruned, second.forgotten) == (1, 1)


async def test_a_failing_store_is_logged_and_the_job_returns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("store:\n  retention: 7d\n", encoding="utf-8")
    dead = Store.open("postgresql+psycopg://monitor@127.0.0.1:1/monitor?connect_timeout=2")
    job = make_retention_job(dead, ConfigHolder.load(config), clock=lambda: NOW)
    with caplog.at_level(logging.ERROR):
        assert await job() is None
    dead.close()
    assert "retention failed" in caplog.text
