"""save_results keeps what it wrote (development rows, member articles) instead of reading them
back: the rows, decisions and alerts must be exactly those of reading the store every time."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from monitor.config.load import load_settings
from monitor.models import Article, SourceHealth
from monitor.run import pipeline
from monitor.run.app import open_store
from monitor.store import articles as stored_articles
from monitor.store import cache
from tests.monitor.story.story_data import (
    EDITED_COPY,
    OWN_REPORTING,
    QUAKE_HAITI,
    QUAKE_SUMATRA,
    T0,
    WIRE_STORY,
    article,
)

OUTLETS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def write_config(directory: Path) -> Path:
    sources = "".join(
        f"  - id: {name}\n    name: {name.title()} News\n    url: https://{name}.example/feed.xml\n" for name in OUTLETS
    )
    path = directory / "feeds.yaml"
    path.write_text(
        f"""
store:
  url: sqlite:///{directory / 'monitor.db'}
sources:
{sources}
topics:
  - id: news
    name: News
    rules:
      any: ["earthquake", "quake", "chip*", "export control*"]
routes:
  - topic: news
    channel: "#news"
    oncall_channel: "#oncall"
    oncall_threshold: 4
""",
        encoding="utf-8",
    )
    return path


def polls() -> list[list[tuple[str, str, str, float]]]:
    """(outlet, title, text, minutes after T0) per poll: stories that grow over several polls."""
    sumatra, haiti = QUAKE_SUMATRA, QUAKE_HAITI
    return [
        [("alpha", *sumatra[0], 0), ("alpha", *WIRE_STORY, 1)],
        [("beta", *sumatra[1], 5), ("beta", *haiti[0], 6)],
        [("gamma", *EDITED_COPY, 8), ("gamma", *sumatra[2], 9)],
        [("delta", *haiti[1], 12), ("delta", *OWN_REPORTING, 13)],
        [("epsilon", *sumatra[0][:1], sumatra[1][1], 20)],
        [("zeta", sumatra[2][0] + " (update)", sumatra[2][1] + " Aid arrived on Wednesday.", 30)],
    ]


def run(directory: Path, *, keep: bool, prune_before: int | None = None, text_limit: int | None = None) -> dict[str, Any]:
    """Every poll through save_results; with `prune_before`, the polls are a backlog read
    long after publication and retention prunes the articles stored before that poll."""
    directory.mkdir()
    config = write_config(directory)
    settings = load_settings(config)
    store = open_store(settings, config)
    clock = {"now": T0}
    rt = pipeline.build_runtime(settings, store, None, clock=lambda: clock["now"])  # type: ignore[arg-type]
    if not keep:
        rt.stored.limit = 0  # every read goes to the store
    if text_limit is not None:
        rt.stored.text_limit = text_limit
    try:
        for n, poll in enumerate(polls()):
            now = T0 + timedelta(minutes=max(m for *_, m in poll) + 1)
            if prune_before is not None:
                now += settings.store.retention + timedelta(days=10)
                if n == prune_before:  # retention runs: the texts stored so far are gone
                    with store.transaction() as conn:
                        stored_articles.prune_articles(conn, now - settings.store.retention)
            clock["now"] = now
            by_source: dict[str, list[Article]] = {}
            for outlet, title, text, minutes in poll:
                item = article(title, text, outlet=f"{outlet}.example", minutes=minutes)
                source = rt.sources[outlet]
                item = replace(item, source_id=source.id, outlet=source.outlet, owner=source.owner, tier=source.tier)
                item.content_hash = f"{outlet}:{title}"
                by_source.setdefault(outlet, []).append(pipeline.with_topics(item, source, rt))
            for outlet, found in by_source.items():
                outcomes = [rt.analyzer.add(a, now) for a in pipeline.unseen(found, rt)]
                health = SourceHealth(source_id=outlet, last_status=200, last_ok=now, last_attempt=now)
                pipeline.save_results(rt, rt.sources[outlet], health, now, outcomes)
    finally:
        store.close()
    return dump(directory / "monitor.db")


def dump(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(db)
    try:
        found = {}
        for table in ("development", "article", "alert"):
            cursor = con.execute(f"select * from {table} order by id")  # noqa: S608 - fixed names
            names = [d[0] for d in cursor.description]
            found[table] = [{k: v for k, v in zip(names, row, strict=True) if k != "updated"} for row in cursor]
        return found
    finally:
        con.close()


def test_kept_rows_and_members_give_exactly_what_reading_the_store_gives(tmp_path: Path) -> None:
    kept = run(tmp_path / "kept", keep=True)
    read = run(tmp_path / "read", keep=False)
    assert kept == read
    assert any(row["state"] == "corroborated" for row in kept["development"])
    assert any(row["kind"] == "update" for row in kept["alert"])  # developments touched again


def test_members_over_the_text_bound_are_dropped_and_read_again(tmp_path: Path) -> None:
    kept = run(tmp_path / "kept", keep=True, text_limit=1200)  # about two articles' texts
    read = run(tmp_path / "read", keep=False)
    assert kept == read


def test_members_pruned_by_retention_are_read_again(tmp_path: Path) -> None:
    kept = run(tmp_path / "kept", keep=True, prune_before=2)
    read = run(tmp_path / "read", keep=False, prune_before=2)
    assert kept == read
    assert any(row["pruned"] for row in kept["article"])


def test_a_rolled_back_batch_forgets_what_was_kept(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config)
    store = open_store(settings, config)
    rt = pipeline.build_runtime(settings, store, None, clock=lambda: T0)  # type: ignore[arg-type]
    source = rt.sources["alpha"]
    item = pipeline.with_topics(replace(article(*QUAKE_SUMATRA[0], minutes=0), source_id="alpha", content_hash="x"), source, rt)
    outcome = rt.analyzer.add(item, T0)
    health = SourceHealth(source_id="alpha", last_status=200, last_ok=T0, last_attempt=T0)
    pipeline.save_results(rt, source, health, T0, [outcome])
    assert rt.stored.developments and rt.stored.members
    broken = replace(health, source_id=None)  # type: ignore[arg-type]  # NOT NULL: the commit fails
    try:
        pipeline.save_results(rt, source, broken, T0, [])
    except Exception:  # noqa: BLE001 - whatever the driver raises
        pass
    else:  # pragma: no cover - the write must fail for this test to mean anything
        raise AssertionError("expected the write to fail")
    assert not rt.stored.developments and not rt.stored.members
    store.close()


def test_recent_developments_stay_the_stores_newest(tmp_path: Path) -> None:
    """Storyline candidates from memory equal the store's query through new developments,
    later sightings, merges, other topics and trimming."""
    import random

    from monitor.models import Development, DevelopmentState
    from monitor.store import developments

    config = write_config(tmp_path)
    settings = load_settings(config)
    store = open_store(settings, config)
    kept = cache.StoredCopies()
    rng = random.Random(3)
    written: dict[int, Development] = {}
    try:
        for step in range(1500):
            with store.transaction() as conn:
                newest = sorted(written.values(), key=lambda d: d.last_seen)[-8:]
                if written and rng.random() < 0.6:  # mostly the newest: they leave and rejoin the kept ones
                    dev_id = rng.choice(newest).id if rng.random() < 0.7 else rng.choice(list(written))
                else:
                    dev_id = len(written) + 1000
                assert dev_id is not None
                dev = written.get(dev_id) or Development(
                    topic=rng.choice(["news", "other"]), headline=f"story {dev_id}", first_seen=T0, last_seen=T0, id=dev_id
                )
                dev.last_seen = T0 + timedelta(minutes=rng.randrange(0, 3000))  # may also move back
                dev.state = DevelopmentState.MERGED if rng.random() < 0.3 else DevelopmentState.SINGLE_SOURCE
                written[dev_id] = dev
                developments.upsert_development(conn, dev)
                kept.wrote_development(dev)
                since = T0 + timedelta(minutes=rng.randrange(1500, 3000))
                if step < 100:
                    continue  # a store with history before the first storyline question
                for topic in ("news", "other"):
                    expected = developments.storyline_candidates(conn, since, topic=topic, limit=3)
                    found = kept.storyline_candidates(conn, since, topic, 3)
                    assert [(d.id, d.last_seen) for d in found] == [(d.id, d.last_seen) for d in expected], step
    finally:
        store.close()
