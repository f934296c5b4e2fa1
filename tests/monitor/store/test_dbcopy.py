"""Moving a store to another database (SQLite to PostgreSQL): everything arrives, ids and all,
and the copy refuses what would lose or mix data."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.models import (
    Alert,
    AlertKind,
    Article,
    Development,
    DevelopmentState,
    DigestPayload,
    ErrorKind,
    NewPayload,
    SourceHealth,
    TopicMatch,
)
from monitor.store import Store, articles, developments, meta, outbox, silences, sources
from monitor.store.copy import CopyError, copy_database
from monitor.store.schema import metadata

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def seeded_sqlite(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'source.db'}")
    store.upgrade()
    dev = Development(id=1, topic="ai", headline="US tightens AI chip rules", lead="Lead.", first_seen=NOW, last_seen=NOW,
                      state=DevelopmentState.CORROBORATED, independent=2, key_terms=("chip", "rule"))
    merged = Development(id=2, topic="ai", headline="Chip rule", first_seen=NOW, last_seen=NOW, state=DevelopmentState.MERGED, merged_into=1)
    items = [
        Article(id=n, source_id="wire", outlet="Reuters", url=f"https://e.com/{n}", canonical_url=f"https://e.com/{n}",
                title=f"Story {n}", summary="Sum", text="Text", published=NOW - timedelta(hours=n), fetched=NOW,
                guid=f"g{n}", content_hash=f"h{n}", signature=bytes(range(16)), development_id=1,
                reprint_of=1 if n == 3 else None, topics=(TopicMatch("ai", 2.5, "'chip' in title"),))
        for n in (1, 2, 3)
    ]
    with store.transaction() as conn:
        articles.insert_articles(conn, items)
        developments.upsert_development(conn, dev, {"centroid": {"chip": 0.5}})
        developments.upsert_development(conn, merged)
        outbox.enqueue(conn, Alert(AlertKind.NEW, "#exports", "new:1:#exports", development_id=1, payload=PAYLOAD, created=NOW))
        sources.save_health(conn, SourceHealth("wire", etag='"abc"', last_ok=NOW, consecutive_failures=2, last_error_kind=ErrorKind.TIMEOUT))
        silences.add_silence(conn, "topic", "ai", "noise", NOW, NOW + timedelta(days=1))
        meta.set_meta(conn, "digest:morning", {"last": NOW.isoformat()})
    return store


DIGEST = DigestPayload(reason="digest x", digest_id="x", period_start=None, period_end=None, text="Digest", blocks=())
PAYLOAD = NewPayload(reason="US tightens", independent=2, impact=6, oncall=False, article_ids=(1, 2), urgent=True)


def rows(store: Store) -> dict[str, list[dict]]:
    with store.connect() as conn:
        return {
            table.name: [dict(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()]
            for table in metadata.sorted_tables
        }


def test_every_row_arrives_with_its_ids_and_values(tmp_path: Path, store: Store) -> None:
    source = seeded_sqlite(tmp_path)
    counts = copy_database(source, store)
    assert counts["article"] == 3 and counts["development"] == 2 and counts["alert"] == 1
    assert rows(store) == rows(source)
    with store.connect() as conn:
        (copied,) = [a for a in articles.articles_for_development(conn, 1) if a.id == 3]
        alert = outbox.get_alert(conn, 1)
        health = sources.get_health(conn, "wire")
    assert copied.reprint_of == 1 and copied.topics == (TopicMatch("ai", 2.5, "'chip' in title"),)
    assert alert is not None and alert.payload == PAYLOAD
    assert health.last_ok == NOW and health.last_error_kind is ErrorKind.TIMEOUT
    source.close()


def test_new_rows_after_the_copy_get_fresh_ids(tmp_path: Path, store: Store) -> None:
    source = seeded_sqlite(tmp_path)
    copy_database(source, store)
    with store.transaction() as conn:
        new_id = outbox.enqueue(conn, Alert(AlertKind.DIGEST, "#exports", "digest:x", payload=DIGEST, created=NOW))
        silence_id = silences.add_silence(conn, "source", "wire", "again", NOW, NOW + timedelta(hours=1))
    assert new_id == 2
    assert silence_id is not None
    source.close()


def test_a_target_with_data_is_refused_and_left_alone(tmp_path: Path, store: Store) -> None:
    source = seeded_sqlite(tmp_path)
    with store.transaction() as conn:
        meta.set_meta(conn, "mine", 1)
    with pytest.raises(CopyError, match="already holds data"):
        copy_database(source, store)
    assert sum(len(v) for v in rows(store).values()) == 1
    source.close()


def test_command_copies_from_the_config_store_and_reports(tmp_path: Path) -> None:
    source = seeded_sqlite(tmp_path)
    source.close()
    config = tmp_path / "feeds.yaml"
    config.write_text("store:\n  url: sqlite:///source.db\n", encoding="utf-8")
    target = tmp_path / "target.db"
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli.db", "copy", "--config", str(config), "--to", f"sqlite:///{target}"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "article" in done.stdout and "3 rows" in done.stdout
    again = subprocess.run(
        [sys.executable, "-m", "monitor.cli.db", "copy", "--config", str(config), "--to", f"sqlite:///{target}"],
        capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 1 and "already holds data" in again.stderr
