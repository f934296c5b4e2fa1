"""The store, on SQLite always and on PostgreSQL when MONITOR_TEST_POSTGRES_URL is set.

Every test that takes `store` runs once per engine (see tests/conftest.py).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from monitor.cli import db as db_commands
from monitor.models import (
    Alert,
    Article,
    Decision,
    Development,
    DevelopmentState,
    ErrorKind,
    Impact,
    Origin,
    Sentiment,
    SourceHealth,
    TopicMatch,
)
from monitor.store import Store, articles, developments, meta, outbox, sources
from monitor.store.schema import article as article_table
from monitor.store.schema import development
from monitor.store.views import load_view
from tests.store_rows import members

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def make_article(article_id: int | None, **changes: object) -> Article:
    base = Article(
        id=article_id,
        source_id="reuters-tech",
        outlet="Reuters",
        url=f"https://example.com/a/{article_id}?utm_source=x",
        canonical_url=f"https://example.com/a/{article_id}",
        title=f"US tightens AI chip export rules ({article_id})",
        summary="The Commerce Department issued new rules.",
        text="Full text of the story.",
        published=T0,
        fetched=T0 + timedelta(minutes=5),
        guid=f"guid-{article_id}",
        content_hash=f"hash-{article_id}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def make_development(dev_id: int | None, **changes: object) -> Development:
    base = Development(
        id=dev_id,
        topic="ai-export-controls",
        headline="US tightens AI chip export rules",
        first_seen=T0,
        last_seen=T0 + timedelta(hours=1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def add_development(store: Store, dev: Development, *items: Article) -> None:
    # Articles first, as the pipeline does: references are checked at commit.
    with store.transaction() as conn:
        articles.insert_articles(conn, list(items))
        developments.upsert_development(conn, dev, {"centroid": {"chip": 1.0}})


# --- schema and migrations ---------------------------------------------------------------


def test_migrations_create_exactly_the_schema(store: Store) -> None:
    assert store.current_revision() == store.head_revision()
    assert store.schema_diff() == []


def test_schema_drift_is_detected(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(text("ALTER TABLE meta ADD COLUMN stray TEXT"))
    diff = store.schema_diff()
    assert [d[0] for d in diff] == ["remove_column"]
    assert diff[0][3].name == "stray"


def test_upgrade_twice_changes_nothing(store: Store) -> None:
    with store.transaction() as conn:
        meta.set_meta(conn, "k", 1)
    store.upgrade()
    with store.connect() as conn:
        assert meta.get_meta(conn, "k") == 1


def test_processes_upgrading_at_once_queue_instead_of_colliding(store_url: str) -> None:
    stores = [Store.open(store_url) for _ in range(4)]
    errors: list[BaseException] = []

    def upgrade(store: Store) -> None:
        try:
            store.upgrade()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade, args=(s,), daemon=True) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)  # a guard against a deadlock, not a speed check
    assert not any(t.is_alive() for t in threads), "upgrades deadlocked"
    assert errors == []
    assert stores[0].schema_diff() == []
    for store in stores:
        store.close()


def test_db_commands_upgrade_and_report(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    db_commands.add_commands(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        args = parser.parse_args([*argv, "--url", store_url])
        return int(args.handler(args))

    assert run("db", "current") == 1
    assert "needs `monitor db upgrade`" in capsys.readouterr().out
    assert run("db", "upgrade") == 0
    assert "upgraded (empty) -> 0004" in capsys.readouterr().out
    assert run("db", "current") == 0
    assert "up to date" in capsys.readouterr().out


def test_db_upgrade_reports_an_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    db_commands.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["db", "upgrade", "--url", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"]
    )
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert "cannot upgrade" in err and "secret" not in err


def test_describe_names_the_database_and_its_schema(store_url: str) -> None:
    store = Store.open(store_url)
    assert "needs `monitor db upgrade` to 0004" in store.describe()
    store.upgrade()
    assert store.describe().endswith("(schema 0004)")
    assert store.describe().startswith(store_url.split(":")[0])
    store.close()
    secret = Store.open("postgresql+psycopg://u:hunter2@127.0.0.1:1/none").describe()
    assert "unreachable" in secret and "hunter2" not in secret


def test_ping(store: Store) -> None:
    assert store.ping() is True
    assert Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none").ping() is False


def test_plain_postgresql_urls_use_psycopg3() -> None:
    for url in ("postgresql://u@127.0.0.1/db", "postgres://u@127.0.0.1/db"):
        assert Store.open(url).engine.driver == "psycopg"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/new/dir/monitor.db")
    with store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (tmp_path / "new" / "dir" / "monitor.db").exists()
    store.close()


# --- articles ----------------------------------------------------------------------------


def test_article_round_trip(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    original = make_article(
        1,
        title="Exportkontrollen für KI-Chips: 美国 تشديد 🚫",
        summary="Ünïcödé summary — with “quotes”",
        published=datetime(2026, 3, 1, 10, 30, tzinfo=berlin),  # 09:30 UTC
        signature=bytes(range(256)),
        topics=(TopicMatch("ai-export-controls", 0.75, "'export controls' in title"),),
        credit="Reuters",
        owner="thomson-reuters",
        tier="wire",
        origin="wire:reuters",
    )
    reprint = make_article(2, reprint_of=1, outlet="Yahoo News", tier="aggregator")
    add_development(store, make_development(7), replace(original, development_id=7), reprint)

    with store.connect() as conn:
        (back,) = articles.articles_for_development(conn, 7)
        stored_reprint = members(conn, 99, 7)
    assert back == replace(original, development_id=7)
    assert back.published == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert back.published.utcoffset() == timedelta(0)
    assert back.fetched.tzinfo is not None
    assert stored_reprint[99] == []
    assert [a.id for a in stored_reprint[7]] == [1]


def test_article_without_id_gets_the_next_one(store: Store) -> None:
    with store.transaction() as conn:
        articles.insert_articles(conn, [make_article(41), make_article(None, guid="x")])
    with store.connect() as conn:
        assert store.max_ids(conn) == (42, 0)


def test_explicit_ids_leave_the_id_sequence_usable(store: Store) -> None:
    """Rows inserted without an id (an operator's script) do not collide with ours."""
    with store.transaction() as conn:
        articles.insert_articles(conn, [make_article(10), make_article(11)])
        developments.upsert_development(conn, make_development(5))
    row = {k: v for k, v in articles._row_from_article(make_article(None)).items() if k != "id"}
    with store.transaction() as conn:
        key = conn.execute(article_table.insert().values(**row)).inserted_primary_key
        developments.upsert_development(conn, dev := make_development(None))
    assert key is not None and key[0] == 12
    assert dev.id == 6


def test_find_known(store: Store) -> None:
    with store.transaction() as conn:
        articles.insert_articles(conn, [make_article(i) for i in range(1, 1201)])
    with store.connect() as conn:
        known = articles.find_known(
            conn,
            canonical_urls=[f"https://example.com/a/{i}" for i in range(1100, 1300)],
            guids=[("reuters-tech", "guid-5"), ("other-source", "guid-6"), ("reuters-tech", "")],
            content_hashes=[f"hash-{i}" for i in range(0, 1300)] + [""],
        )
        nothing = articles.find_known(conn)
    assert known.canonical_urls == {f"https://example.com/a/{i}" for i in range(1100, 1201)}
    assert known.guids == {("reuters-tech", "guid-5")}  # a GUID only counts for its source
    assert known.content_hashes == {f"hash-{i}" for i in range(1, 1201)}
    assert nothing == articles.KnownKeys()


def test_find_known_in_one_statement_finds_what_separate_lookups_find(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll's keys go in one UNION ALL; it must find exactly what one query per kind finds."""
    with store.transaction() as conn:
        articles.insert_articles(conn, [make_article(i) for i in range(1, 41)])
    asks: list[dict[str, Any]] = [
        {
            "canonical_urls": [f"https://example.com/a/{i}" for i in range(30, 50)] + [""],
            "guids": [("reuters-tech", "guid-5"), ("reuters-tech", "guid-45"), ("other-source", "guid-6"), ("x", "")],
            "content_hashes": [f"hash-{i}" for i in range(35, 45)],
        },
        {"content_hashes": ["hash-3", "nope"]},
        {"guids": [("reuters-tech", "guid-7")]},
        {"canonical_urls": ["https://example.com/a/1"], "guids": [("other-source", "guid-1")]},
    ]
    with store.connect() as conn:
        at_once = [articles.find_known(conn, **ask) for ask in asks]
        monkeypatch.setattr(articles, "MAX_SOURCES", -1)  # one query per kind and source
        separately = [articles.find_known(conn, **ask) for ask in asks]
    assert at_once == separately
    assert at_once[0].guids == {("reuters-tech", "guid-5")}
    assert at_once[0].content_hashes == {f"hash-{i}" for i in range(35, 41)}
    assert at_once[1].content_hashes == {"hash-3"} and not at_once[1].canonical_urls


def test_restore_streams_articles_then_open_developments_on_one_connection(store: Store) -> None:
    """What a start reads (pipeline.restore_analyzer): both streams, one after the other."""
    with store.transaction() as conn:
        for dev_id in (1, 2, 3):
            features = {"centroid": {"chip": 0.5}, "size": 2} if dev_id == 2 else None
            developments.upsert_development(conn, make_development(dev_id, headline=f"story {dev_id}"), features)
        articles.insert_articles(conn, [make_article(i, development_id=1 + i % 3) for i in range(1, 10)])
    with store.connect() as conn:
        recent = articles.iter_recent_articles(conn, T0 - timedelta(days=1))
        opened = developments.iter_open_developments(conn, T0 - timedelta(days=1))
        ids = [a.id for a in recent]
        found = [(d.id, features) for d, features in opened]
    assert ids == list(range(1, 10))
    assert found == [(1, None), (2, {"centroid": {"chip": 0.5}, "size": 2}), (3, None)]


def test_restored_articles_share_repeated_values_and_equal_the_stored_rows(store: Store) -> None:
    with store.transaction() as conn:
        developments.upsert_development(conn, make_development(1))
        articles.insert_articles(conn, [make_article(i, development_id=1, origin="wire:reuters") for i in (1, 2)])
    with store.connect() as conn:
        first, second = articles.iter_recent_articles(conn, T0 - timedelta(days=1))
        assert [first, second] == articles.articles_for_development(conn, 1)
    assert first.outlet is second.outlet and first.origin is second.origin and first.topics is second.topics


def test_iter_recent_articles_streams_in_id_order(store: Store) -> None:
    batch = [make_article(i, published=T0 + timedelta(minutes=i % 7)) for i in range(1, 2501)]
    old = make_article(3000, published=T0 - timedelta(days=30))
    with store.transaction() as conn:
        articles.insert_articles(conn, [*batch, old])
    with store.connect() as conn:
        recent = [a.id for a in articles.iter_recent_articles(conn, T0)]
        assert articles.count_articles(conn) == 2501
    assert recent == list(range(1, 2501))


# --- source health -----------------------------------------------------------------------


def test_health_upsert(store: Store, now: datetime) -> None:
    with store.connect() as conn:
        assert sources.get_health(conn, "bis") == SourceHealth("bis")
    failing = SourceHealth(
        "bis",
        etag='W/"abc"',
        last_modified="Tue, 10 Mar 2026 11:00:00 GMT",
        last_attempt=now,
        consecutive_failures=3,
        last_error_kind=ErrorKind.TIMEOUT,
        last_error="no response within 30 s",
        next_due=now + timedelta(minutes=20),
    )
    with store.transaction() as conn:
        sources.save_health(conn, SourceHealth("fedreg", last_ok=now, items_seen=4))
        sources.save_health(conn, failing)
        sources.set_health_alerted(conn, "bis", True)
    with store.connect() as conn:
        assert sources.get_health(conn, "bis") == failing
    recovered = replace(failing, consecutive_failures=0, last_error_kind=None, last_error="")
    with store.transaction() as conn:
        sources.save_health(conn, replace(recovered, last_ok=now))
    with store.connect() as conn:
        health = sources.load_all_health(conn)
        assert sources.is_health_alerted(conn, "bis") is True  # saving health keeps the flag
        assert sources.is_health_alerted(conn, "fedreg") is False
    assert sorted(health) == ["bis", "fedreg"]
    assert health["bis"] == replace(recovered, last_ok=now)
    assert health["fedreg"].items_seen == 4


def test_health_alerted_for_a_source_never_saved(store: Store) -> None:
    with store.transaction() as conn:
        sources.set_health_alerted(conn, "new-source", True)
    with store.connect() as conn:
        assert sources.is_health_alerted(conn, "new-source") is True
        assert sources.get_health(conn, "new-source") == SourceHealth("new-source")


# --- developments ------------------------------------------------------------------------


def test_development_round_trip_and_update(store: Store) -> None:
    dev = make_development(
        3,
        state=DevelopmentState.CORROBORATED,
        independent=3,
        key_terms=("BIS", "H20", "Entity List"),
        impact=Impact(8, ("new rule", "names Nvidia")),
        sentiment=Sentiment.VERY_NEGATIVE,
        lead="Le département du Commerce…",
        storyline_id=1,
        kind="us:entity-list",
        decision_reason="3 independent: Reuters (+2 reprints), Politico, BIS",
    )
    with store.transaction() as conn:
        developments.upsert_development(conn, dev, {"centroid": {"chip": 0.5}, "size": 3})
    with store.connect() as conn:
        assert developments.get_development(conn, 3) == dev
        assert developments.get_development(conn, 4) is None
    later = replace(dev, last_seen=T0 + timedelta(hours=5), independent=4, impact=None)
    with store.transaction() as conn:
        developments.upsert_development(conn, later)  # no features: the stored ones stay
    with store.connect() as conn:
        ((back, features),) = developments.open_developments(conn, T0)
    assert back == later
    assert features == {"centroid": {"chip": 0.5}, "size": 3}


def test_developments_seen_since_filters(store: Store) -> None:
    with store.transaction() as conn:
        for dev in (
            make_development(1, last_seen=T0 - timedelta(days=2)),
            make_development(2, last_seen=T0 + timedelta(hours=1)),
            make_development(3, last_seen=T0 + timedelta(hours=2), topic="chips"),
            make_development(
                4, last_seen=T0 + timedelta(hours=3), state=DevelopmentState.CORROBORATED
            ),
            make_development(5, last_seen=T0 + timedelta(hours=4), state=DevelopmentState.CLOSED),
        ):
            developments.upsert_development(conn, dev)
        developments.upsert_development(conn, replace(make_development(2, last_seen=T0 + timedelta(hours=1)), state=DevelopmentState.MERGED, merged_into=4))
    with store.connect() as conn:

        def ids(**kwargs: object) -> list[int | None]:
            found = developments.developments_seen_since(conn, T0, **kwargs)  # type: ignore[arg-type]
            return [d.id for d in found]

        assert ids() == [5, 4, 3]  # newest first, merged left out
        assert ids(topics=["chips"]) == [3]
        assert ids(states=[DevelopmentState.CORROBORATED]) == [4]
        assert ids(states=[DevelopmentState.MERGED]) == [2]
        assert [d.id for d, _ in developments.open_developments(conn, T0)] == [3, 4]


def test_storyline(store: Store) -> None:
    with store.transaction() as conn:
        for dev_id, day in ((1, 3), (2, 1), (3, 2), (4, 5)):
            first = T0 + timedelta(days=day)
            dev = make_development(dev_id, storyline_id=9, first_seen=first, last_seen=first)
            developments.upsert_development(conn, dev)
        developments.upsert_development(conn, make_development(5, storyline_id=8))
    with store.connect() as conn:
        assert [d.id for d in developments.storyline(conn, 9)] == [2, 3, 1, 4]
        before = T0 + timedelta(days=3)
        assert [d.id for d in developments.storyline(conn, 9, before=before)] == [2, 3]


def test_the_decision_is_kept_with_the_development_and_read_as_stored(store: Store) -> None:
    """Decided once by the pipeline: views (alerts, digests, `monitor developments`) read it."""
    decision = Decision(
        DevelopmentState.CORROBORATED, 2, "2 independent: Reuters (+1 reprint), Politico",
        origins=(Origin("wire:reuters", "Reuters", (1, 2), ("Reuters", "Daily Planet"), 1), Origin("outlet:politico", "Politico", (3,))),
        required=2,
    )
    dev = make_development(5, state=DevelopmentState.CORROBORATED, independent=2, decision=decision)
    with store.transaction() as conn:
        developments.upsert_development(conn, dev)
    with store.connect() as conn:
        assert developments.get_development(conn, 5) == dev
        view = load_view(conn, 5)  # no articles stored: a decision made again would say 0 sources
    assert view is not None and view.decision == decision


def test_latest_of_kind_reaches_past_the_recent_ones(store: Store) -> None:
    """A storyline's earlier development may be years back, behind thousands of others."""
    with store.transaction() as conn:
        old = make_development(1, kind="us:rule", first_seen=T0 - timedelta(days=700), last_seen=T0 - timedelta(days=700))
        developments.upsert_development(conn, old)
        for n in range(2, 40):
            developments.upsert_development(conn, make_development(n, kind="us:licence", last_seen=T0 + timedelta(minutes=n)))
        developments.upsert_development(conn, make_development(40, kind="us:rule", last_seen=T0))
    with store.connect() as conn:
        found = developments.latest_of_kind(conn, T0 - timedelta(days=1095), topic="ai-export-controls", kind="us:rule", limit=5)
        assert [d.id for d in found] == [40, 1]
        assert found[1].kind == "us:rule"
        assert developments.storyline_candidates(conn, None, topic="ai-export-controls", limit=5)[0].kind == "us:licence"


def test_a_store_of_the_previous_version_upgrades_and_keeps_its_developments(store_url: str) -> None:
    store = Store.open(store_url)
    store.upgrade("0001")
    with store.transaction() as conn:
        conn.execute(
            development.insert().values(
                id=7, topic="export-controls", headline="US adds firms to Entity List", lead="", first_seen=T0,
                last_seen=T0, state="corroborated", independent=2, decision_reason="", key_terms=[], impact_reasons=[],
            )
        )
    store.upgrade()
    with store.connect() as conn:
        back = developments.get_development(conn, 7)
    assert back is not None and back.headline == "US adds firms to Entity List" and back.kind == ""
    assert store.schema_diff() == []
    store.close()


def test_merge_moves_articles_and_keeps_the_merged_row(store: Store) -> None:
    add_development(store, make_development(1), make_article(1, development_id=1))
    add_development(store, make_development(2), make_article(2, development_id=2))
    with store.transaction() as conn:
        assert articles.reassign_development(conn, 2, 1) == 1
        developments.upsert_development(conn, replace(make_development(2), state=DevelopmentState.MERGED, merged_into=1))
    with store.connect() as conn:
        assert [a.id for a in articles.articles_for_development(conn, 1)] == [1, 2]
        merged = developments.get_development(conn, 2)
        assert [d.id for d, _ in developments.open_developments(conn, T0)] == [1]
    assert merged is not None
    assert (merged.state, merged.merged_into) == (DevelopmentState.MERGED, 1)


def _parent(dev_id: int, channel: str, *, state: str = "pending", attempts: int = 0) -> Alert:
    from monitor.models import AlertKind, AlertState, NewPayload

    payload = NewPayload(reason="corroborated", independent=2, impact=5, oncall=False, article_ids=())
    return Alert(kind=AlertKind.NEW, channel=channel, dedup_key=f"dev:{dev_id}:{channel}", development_id=dev_id,
                 payload=payload, created=T0, state=AlertState(state), attempts=attempts)


def test_merging_keeps_one_message_per_channel(store: Store) -> None:
    """Development 2 merges into 1: where only 2 had a message, that message now carries 1;
    where both had one and 2's was never attempted, 2's is superseded; a sent one stays for
    the MERGE row to turn into a pointer."""
    from monitor.models import AlertState

    add_development(store, make_development(1), make_article(1, development_id=1))
    add_development(store, make_development(2), make_article(2, development_id=2))
    with store.transaction() as conn:
        outbox.enqueue(conn, _parent(2, "#only-absorbed", state="sent"))
        outbox.enqueue(conn, _parent(1, "#both-held"))
        held = outbox.enqueue(conn, _parent(2, "#both-held"))
        outbox.enqueue(conn, _parent(1, "#both-sent", state="sent"))
        sent = outbox.enqueue(conn, _parent(2, "#both-sent", state="sent"))
        lines = outbox.fold_merged(conn, 2, 1, T0)
    with store.connect() as conn:
        assert outbox.parent_channels(conn, 1) == {"#only-absorbed", "#both-held", "#both-sent"}
        assert held is not None and sent is not None
        superseded, untouched = outbox.get_alert(conn, held), outbox.get_alert(conn, sent)
    assert len(lines) == 2
    assert superseded is not None and superseded.state is AlertState.SUPERSEDED
    assert superseded.last_error.startswith("merged into development 1 before it was sent")
    assert untouched is not None and (untouched.state, untouched.development_id) == (AlertState.SENT, 2)


def test_a_held_message_of_the_kept_development_gives_way_to_one_already_in_slack(store: Store) -> None:
    """Development 1's first message waits (held) while 2's went out; 2 merges into 1: the
    message people already have carries the story, 1's waiting one is never sent (the replay
    of the UCI stream found this case sending a second message)."""
    from monitor.models import AlertState

    add_development(store, make_development(1), make_article(1, development_id=1))
    add_development(store, make_development(2), make_article(2, development_id=2))
    with store.transaction() as conn:
        waiting = outbox.enqueue(conn, _parent(1, "#alerts"))
        posted = outbox.enqueue(conn, _parent(2, "#alerts", state="sent"))
        outbox.fold_merged(conn, 2, 1, T0)
    with store.connect() as conn:
        assert waiting is not None and posted is not None
        held, carried = outbox.get_alert(conn, waiting), outbox.get_alert(conn, posted)
        assert outbox.due(conn, T0 + timedelta(days=1)) == []  # nothing left to send
    assert held is not None and held.state is AlertState.SUPERSEDED
    assert carried is not None and (carried.state, carried.development_id) == (AlertState.SENT, 1)


def test_a_lease_has_one_holder_until_it_expires_or_is_given_up(store: Store) -> None:
    ttl = timedelta(minutes=2)

    def take(owner: str, at: datetime, stale=None) -> bool:
        with store.transaction() as conn:
            return meta.take_lease(conn, "relay", owner, at, ttl, stale=stale)[0]

    assert take("host-a:1:x", T0)
    assert take("host-a:1:x", T0 + timedelta(minutes=1))  # renewed by its holder
    assert not take("host-b:7:y", T0 + timedelta(minutes=2))  # renewed until 09:03
    assert take("host-b:7:y", T0 + timedelta(minutes=2), stale=lambda owner: owner == "host-a:1:x")  # holder known gone
    assert not take("host-a:1:x", T0 + timedelta(minutes=3))
    with store.transaction() as conn:
        meta.release_lease(conn, "relay", "host-a:1:x")  # not the holder: changes nothing
    assert not take("host-a:1:x", T0 + timedelta(minutes=3))
    with store.transaction() as conn:
        meta.release_lease(conn, "relay", "host-b:7:y")
    assert take("host-a:1:x", T0 + timedelta(minutes=3))
    assert take("host-c:2:z", T0 + timedelta(minutes=6))  # expired


# --- retention ---------------------------------------------------------------------------


def test_prune_clears_old_text_but_keeps_dedup_keys_and_developments(store: Store) -> None:
    old = T0 - timedelta(days=120)
    old_dev = make_development(1, first_seen=old, last_seen=old, lead="Old lead")
    live_dev = make_development(2, last_seen=T0)  # still being reported
    add_development(store, old_dev, make_article(1, published=old, development_id=1))
    add_development(store, live_dev, make_article(2, published=old, development_id=2))
    with store.transaction() as conn:
        articles.insert_articles(conn, [make_article(3, published=T0)])
        assert articles.prune_articles(conn, T0 - timedelta(days=90)) == 1
    with store.connect() as conn:
        (pruned,) = articles.articles_for_development(conn, 1)
        (kept,) = articles.articles_for_development(conn, 2)
        known = articles.find_known(conn, canonical_urls=[pruned.canonical_url])
        assert developments.get_development(conn, 1) == old_dev
        assert articles.count_articles(conn) == 3
    assert (pruned.text, pruned.summary, pruned.signature) == ("", "", None)
    assert (pruned.title, pruned.outlet) == (make_article(1).title, "Reuters")
    assert known.canonical_urls == {pruned.canonical_url}  # a lingering feed item stays seen
    assert kept.text == "Full text of the story."


def test_forget_deletes_old_rows_and_keeps_references_valid(store: Store) -> None:
    very_old = T0 - timedelta(days=400)
    dev = make_development(1, first_seen=very_old, last_seen=very_old, headline="Kept")
    original = make_article(1, published=very_old, development_id=1)
    reprint = make_article(2, published=T0, reprint_of=1)
    add_development(store, dev, original, reprint)
    with store.transaction() as conn:
        affected = articles.prune_articles(
            conn, T0 - timedelta(days=90), forget_before=T0 - timedelta(days=365)
        )
    assert affected == 1
    with store.connect() as conn:
        assert articles.articles_for_development(conn, 1) == []
        assert developments.get_development(conn, 1) == dev
        (survivor,) = list(articles.iter_recent_articles(conn, T0))
    assert survivor.reprint_of is None


# --- transactions and durability -----------------------------------------------------------


def test_failed_transaction_leaves_nothing_half_written(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        add_rows = [make_article(1, development_id=1), make_article(2, development_id=1)]
        articles.insert_articles(conn, add_rows)
        developments.upsert_development(conn, make_development(1))
        sources.save_health(conn, SourceHealth("reuters-tech", items_seen=2))
        raise RuntimeError("crash between stages")
    with store.connect() as conn:
        assert store.max_ids(conn) == (0, 0)
        assert sources.load_all_health(conn) == {}


def test_dangling_reference_fails_the_whole_transaction(store: Store) -> None:
    """References are checked at commit: a development that never arrives undoes the batch."""
    with pytest.raises(IntegrityError), store.transaction() as conn:
        articles.insert_articles(conn, [make_article(1), make_article(2, development_id=99)])
    with store.connect() as conn:
        assert articles.count_articles(conn) == 0


def test_reopening_keeps_everything(store: Store, reopen: Callable[[], Store]) -> None:
    add_development(store, make_development(1), make_article(1, development_id=1))
    with store.transaction() as conn:
        meta.set_meta(conn, "last_digest", {"daily": "2026-03-01T09:00:00+00:00"})
        sources.save_health(conn, SourceHealth("bis", consecutive_failures=2))
    store.close()
    again = reopen()
    again.upgrade()
    with again.connect() as conn:
        assert [a.id for a in articles.articles_for_development(conn, 1)] == [1]
        assert developments.get_development(conn, 1) == make_development(1)
        assert meta.get_meta(conn, "last_digest") == {"daily": "2026-03-01T09:00:00+00:00"}
        assert sources.get_health(conn, "bis").consecutive_failures == 2


def test_meta(store: Store) -> None:
    with store.transaction() as conn:
        assert meta.get_meta(conn, "missing", default=5) == 5
        meta.set_meta(conn, "cursor", [1, "two"])
        meta.set_meta(conn, "cursor", {"n": 3})
    with store.connect() as conn:
        assert meta.get_meta(conn, "cursor") == {"n": 3}


def test_sqlite_writers_queue_instead_of_failing(tmp_path) -> None:
    """Read-modify-write from several threads: none fails with 'database is locked',
    none loses an update (write transactions take the lock up front)."""
    store = Store.open(f"sqlite:///{tmp_path}/m.db")
    store.upgrade()
    errors: list[BaseException] = []

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                with store.transaction() as conn:
                    value = meta.get_meta(conn, "counter", 0)
                    meta.set_meta(conn, "counter", value + 1)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.connect() as conn:
        assert errors == []
        assert meta.get_meta(conn, "counter") == 100
        assert conn.execute(select(article_table.c.id)).first() is None
    store.close()
