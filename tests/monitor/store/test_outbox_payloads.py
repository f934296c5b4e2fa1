"""The outbox stores each alert kind's typed payload, and the relay's delivery record, in the
row's JSON column under the keys earlier versions wrote: rows queued before the payloads were
typed load (and keep their meaning), and rows written now read the same in an older version.

Every test that takes `db` (the `store` fixture) runs once per engine (see tests/conftest.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from monitor.models import (
    Alert,
    AlertKind,
    AlertPayload,
    AlertState,
    Delivery,
    Development,
    DigestPayload,
    HealthPayload,
    InFlight,
    MergePayload,
    NewPayload,
    PostedPart,
    SilenceNote,
    SlackMessage,
    UpdatePayload,
)
from monitor.store import Store, developments, outbox
from monitor.store.schema import alert as alert_table

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BLOCK = {"type": "section", "text": {"type": "mrkdwn", "text": "*Digest*", "verbatim": True}}

HELD = NewPayload(
    reason="corroborated (2 independent: Reuters, BIS); impact 9 ≥ on-call threshold 8; held 1m: development 6 is forming",
    independent=2, impact=9, oncall=True, article_ids=(11, 12), mention="<!subteam^S0123>", urgent=True,
    held_until=NOW + timedelta(minutes=1),
)
SILENCED_UPDATE = UpdatePayload(
    reason="independent sources 2 → 3: 3 independent; silenced by silence #3 (topic=export-controls): handled",
    new_article_ids=(21,), independent=3, previous_independent=2, impact=5, previous_impact=None, material=False,
    oncall=False, silence=SilenceNote(id=3, matcher="topic", value="export-controls", reason="handled"),
)
MERGE = MergePayload(reason="development 4 merged into 7", from_id=4, into_id=7, urgent=False)
DIGEST = DigestPayload(
    reason="digest morning for 10 Mar: 2 developments", digest_id="morning", period_start=NOW - timedelta(days=1),
    period_end=NOW, text="Morning digest", blocks=(BLOCK,), thread=(SlackMessage("part 1", (BLOCK,)),),
)
HEALTH = HealthPayload(reason="3 consecutive failures", source_id="bis-press", change="failing",
                       text="Source bis-press is failing: 3 consecutive failures")

# What the untyped version wrote for the rows above: the stored form must not change.
STORED = {
    AlertKind.NEW: {
        "reason": HELD.reason, "independent": 2, "impact": 9, "oncall": True, "article_ids": [11, 12],
        "mention": "<!subteam^S0123>", "urgent": True, "held_until": "2026-03-10T12:01:00+00:00",
    },
    AlertKind.UPDATE: {
        "reason": SILENCED_UPDATE.reason, "new_article_ids": [21], "independent": 3, "previous_independent": 2,
        "impact": 5, "previous_impact": None, "material": False, "oncall": False,
        "silence": {"id": 3, "matcher": "topic", "value": "export-controls", "reason": "handled"},
    },
    AlertKind.MERGE: {"reason": MERGE.reason, "from": 4, "into": 7, "urgent": False},
    AlertKind.DIGEST: {
        "reason": DIGEST.reason, "digest_id": "morning", "period_start": "2026-03-09T12:00:00+00:00",
        "period_end": "2026-03-10T12:00:00+00:00", "text": "Morning digest", "blocks": [BLOCK],
        "thread": [{"text": "part 1", "blocks": [BLOCK]}],
    },
    AlertKind.HEALTH: {"reason": HEALTH.reason, "source_id": "bis-press", "change": "failing", "text": HEALTH.text},
}
PAYLOADS: dict[AlertKind, AlertPayload] = {
    AlertKind.NEW: HELD, AlertKind.UPDATE: SILENCED_UPDATE, AlertKind.MERGE: MERGE, AlertKind.DIGEST: DIGEST,
    AlertKind.HEALTH: HEALTH,
}


@pytest.fixture
def db(store: Store) -> Store:
    """The store, with the development the rows belong to (the alert table refers to it)."""
    with store.transaction() as conn:
        developments.upsert_development(
            conn, Development(topic="export-controls", headline="BIS adds 12 entities", first_seen=NOW, last_seen=NOW, id=7)
        )
    return store


def stored_json(conn: Connection, alert_id: int) -> dict[str, Any]:
    return dict(conn.execute(select(alert_table.c.payload).where(alert_table.c.id == alert_id)).scalar_one())


def insert_old_row(conn: Connection, kind: str, payload: object, *, key: str, development_id: int | None = 7,
                   state: str = "pending", attempts: int = 0, not_before: datetime | None = None) -> int:
    """A row as the version before typed payloads wrote it: the payload dict went into the column as is."""
    values = {
        "kind": kind, "channel": "#export-controls", "dedup_key": key, "development_id": development_id,
        "payload": payload, "state": state, "attempts": attempts, "last_error": "", "not_before": not_before,
        "slack_channel_id": "", "slack_ts": "", "thread_ts": "", "created": NOW, "sent": None, "updated": NOW,
    }
    return int(conn.execute(insert(alert_table).values(values).returning(alert_table.c.id)).scalar_one())


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_each_kind_is_stored_as_before_and_reads_back_equal(db: Store, kind: AlertKind) -> None:
    alert = Alert(kind, "#export-controls", f"key:{kind.value}", development_id=7, payload=PAYLOADS[kind], created=NOW)
    with db.transaction() as conn:
        alert_id = outbox.enqueue(conn, alert)
        assert alert_id is not None
        assert stored_json(conn, alert_id) == STORED[kind]
        loaded = outbox.get_alert(conn, alert_id)
    assert loaded is not None and loaded.kind is kind
    assert loaded.payload == PAYLOADS[kind]
    assert loaded.delivery == Delivery()


def test_a_recovery_row_carries_a_health_payload(db: Store) -> None:
    recovered = replace(HEALTH, change="recovered", text="Source bis-press is back: working again")
    with db.transaction() as conn:
        alert_id = outbox.enqueue(conn, Alert(AlertKind.RECOVERY, "#ops", "recovery:bis-press:1", payload=recovered, created=NOW))
        assert alert_id is not None
        loaded = outbox.get_alert(conn, alert_id)
    assert loaded is not None and loaded.payload == recovered


def test_an_alert_refuses_the_payload_of_another_kind() -> None:
    with pytest.raises(TypeError, match="a new alert carries a NewPayload, not a DigestPayload"):
        Alert(AlertKind.NEW, "#export-controls", "dev:7:#export-controls", payload=DIGEST, created=NOW)


def test_rows_written_by_the_untyped_version_load_typed(db: Store) -> None:
    """Stored dicts load as they were meant: ids written as strings, a permalink and warnings
    the relay kept in the payload, and keys nobody reads any more."""
    with db.transaction() as conn:
        new_id = insert_old_row(conn, "new", {
            "reason": "corroborated: 2 independent: Reuters, BIS", "independent": 2, "impact": 6, "oncall": False,
            "article_ids": [1, 2], "urgent": False, "attempts_recorded": True, "permalink": "https://slack.example/p1",
            "delivered_parts": {"parent": {"channel": "C0123", "ts": "1700000000.000100"}},
            "delivery_warnings": ["sources: posted again after Slack answered 503"], "headline": "an old extra key",
        }, key="dev:7:#export-controls", state="sent")
        update_id = insert_old_row(conn, "update", {
            "reason": "independent sources 2 → 3", "new_article_ids": ["21", 22, "x"], "material": 1,
            "previous_impact": "6",
        }, key="dev:7:#export-controls:upd:3")
        merge_id = insert_old_row(conn, "merge", {"reason": "development 4 merged into 7", "from": "4", "into": 7},
                                  key="merge:4:7:#export-controls")
        new, update, merge = (outbox.get_alert(conn, i) for i in (new_id, update_id, merge_id))
        warned = outbox.sent_with_warnings(conn)

    assert new is not None and update is not None and merge is not None
    assert new.payload == NewPayload(reason="corroborated: 2 independent: Reuters, BIS", independent=2, impact=6,
                                     oncall=False, article_ids=(1, 2))
    assert new.delivery == Delivery(
        parts={"parent": PostedPart("C0123", "1700000000.000100")}, recorded=True,
        warnings=["sources: posted again after Slack answered 503"], permalink="https://slack.example/p1",
    )
    assert isinstance(update.payload, UpdatePayload)
    assert (update.payload.new_article_ids, update.payload.material, update.payload.previous_impact) == ((21, 22), True, 6)
    assert (update.payload.independent, update.payload.oncall) == (0, False)  # missing: the old relay's fallbacks
    assert isinstance(merge.payload, MergePayload) and (merge.payload.from_id, merge.payload.into_id) == (4, 7)
    assert [a.id for a in warned] == [new_id]


def test_a_malformed_row_loads_with_fallbacks_and_does_not_stop_the_others(db: Store) -> None:
    with db.transaction() as conn:
        insert_old_row(conn, "digest", ["not", "an", "object"], key="digest:odd:1", development_id=None)
        insert_old_row(conn, "health", {"text": 3, "thread": "x", "in_flight": {"part": 1}}, key="health:odd:1",
                       development_id=None)
        insert_old_row(conn, "merge", {"reason": "no ids", "silence": {"id": "three"}}, key="merge:odd:1")
        odd_digest, odd_health, odd_merge = outbox.due(conn, NOW)

    assert odd_digest.payload == DigestPayload(reason="", digest_id="", period_start=None, period_end=None, text="", blocks=())
    assert odd_health.payload == HealthPayload(reason="", source_id="", change="", text="")
    assert odd_health.delivery.in_flight is None
    assert odd_merge.payload == MergePayload(reason="no ids", from_id=None, into_id=None)


def test_saving_progress_rewrites_only_the_relays_keys(db: Store) -> None:
    """The payload stays as queued (even keys this version does not know); the delivery record
    replaces the previous one, and an empty one leaves no keys behind."""
    old = {"reason": "corroborated", "independent": 2, "impact": 6, "oncall": False, "article_ids": [], "urgent": False,
           "headline": "kept", "in_flight": {"part": "parent", "error": "timeout", "answered": False}}
    with db.transaction() as conn:
        alert_id = insert_old_row(conn, "new", old, key="dev:7:#export-controls", attempts=1)
        progress = Delivery(parts={"parent": PostedPart("C0123", "1.2")}, recorded=True, in_flight=InFlight("sources"))
        outbox.save_progress(conn, alert_id, progress, NOW)
        saved = stored_json(conn, alert_id)
        outbox.mark_sent(conn, alert_id, "C0123", "1.2", "", NOW, Delivery(permalink="https://slack.example/p1"))
        sent = stored_json(conn, alert_id)

    payload_keys = {k: v for k, v in old.items() if k != "in_flight"}
    assert saved == {**payload_keys, "delivered_parts": {"parent": {"channel": "C0123", "ts": "1.2"}},
                     "attempts_recorded": True, "in_flight": {"part": "sources"}}
    assert sent == {**payload_keys, "permalink": "https://slack.example/p1"}


def test_release_holds_reads_an_old_held_row(db: Store) -> None:
    until = NOW + timedelta(minutes=1)
    with db.transaction() as conn:
        alert_id = insert_old_row(conn, "new", {
            "reason": "corroborated: 2 independent; held 1m: development 6 is forming", "independent": 2, "impact": 5,
            "oncall": False, "article_ids": [3], "urgent": False, "held_until": until.isoformat(),
        }, key="dev:7:#export-controls", not_before=until)
        assert outbox.release_holds(conn, NOW, "sent at the end of this run") == 1
        released = outbox.get_alert(conn, alert_id)
        column = stored_json(conn, alert_id)

    assert released is not None and released.state is AlertState.PENDING and released.not_before is None
    assert isinstance(released.payload, NewPayload) and released.payload.held_until is None
    assert released.payload.reason.endswith("; held 1m: development 6 is forming; sent at the end of this run")
    assert "held_until" not in column and column["article_ids"] == [3]
