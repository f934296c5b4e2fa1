"""The outbox: the `alert` table as a queue of Slack deliveries and a notification log.

Rows are written by `enqueue` in the same transaction as the state change that caused them
(decide, digests, source health), so a crash either keeps both or neither. The relay
(`alerts.deliver`) reads `due` rows and records the outcome with `mark_sent`,
`mark_retry` or `mark_failed`; a row stays `pending` until Slack's `ts` is recorded, so
nothing is lost between the two.

`dedup_key` is unique: enqueueing the same key twice inserts one row (the second call
returns None), which is what makes decide, digests and health alerts idempotent.

This module is also the one place that turns a row's typed payload (`monitor.models`, one
class per kind) and the relay's `Delivery` record into the row's JSON column and back. Both
share that one JSON object under the key names earlier versions wrote, so rows queued before
the payloads were typed load and deliver unchanged, and no migration is needed. Reading is
lenient (a missing or malformed value takes the fallback the relay always used): one odd row
must not stop the relay from reading the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.models import (
    Alert,
    AlertKind,
    AlertPayload,
    AlertState,
    Delivery,
    DevelopmentPayload,
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
from monitor.store.schema import alert as table

MAX_ERROR = 2000  # a stored error is for a person to read, not a dump


def enqueue(conn: Connection, alert: Alert) -> int | None:
    """Insert the row; None (and nothing written) when its dedup_key is already there."""
    values = _row_from_alert(alert)
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        builder = sqlite.insert if dialect == "sqlite" else postgresql.insert
        statement = (
            builder(table).values(values).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(table.c.id)
        )
        new_id = conn.execute(statement).scalar()
    else:  # other engines: check, then insert, inside the caller's transaction
        exists = conn.execute(select(table.c.id).where(table.c.dedup_key == alert.dedup_key)).first()
        inserted = None if exists else conn.execute(insert(table).values(values)).inserted_primary_key
        new_id = inserted[0] if inserted else None
    if new_id is not None:
        alert.id = int(new_id)
    return None if new_id is None else int(new_id)


def get_alert(conn: Connection, alert_id: int) -> Alert | None:
    row = conn.execute(select(table).where(table.c.id == alert_id)).mappings().first()
    return _alert_from_row(row) if row else None


def due(conn: Connection, now: datetime, limit: int = 100) -> list[Alert]:
    """Pending rows whose `not_before` has passed (or is unset), oldest first."""
    query = (
        select(table)
        .where(and_(table.c.state == AlertState.PENDING.value, or_(table.c.not_before.is_(None), table.c.not_before <= now)))
        .order_by(table.c.id)
        .limit(limit)
    )
    return [_alert_from_row(row) for row in conn.execute(query).mappings()]


def parent_for(conn: Connection, development_id: int, channel: str) -> Alert | None:
    """The NEW row (the parent message) of a development in a channel, whatever its state."""
    query = select(table).where(
        and_(
            table.c.kind == AlertKind.NEW.value,
            table.c.development_id == development_id,
            table.c.channel == channel,
        )
    ).order_by(table.c.id).limit(1)
    row = conn.execute(query).mappings().first()
    return _alert_from_row(row) if row else None


def parent_channels(conn: Connection, development_id: int) -> set[str]:
    """Channels that already have a parent row for this development (in any state)."""
    query = select(table.c.channel).where(
        and_(table.c.kind == AlertKind.NEW.value, table.c.development_id == development_id)
    )
    return set(conn.execute(query).scalars())


def channel_id_for(conn: Connection, channel: str) -> str | None:
    """The Slack channel id a channel name resolved to on an earlier delivery, if any."""
    query = (
        select(table.c.slack_channel_id)
        .where(and_(table.c.channel == channel, table.c.slack_channel_id != ""))
        .order_by(table.c.id.desc())
        .limit(1)
    )
    return conn.execute(query).scalar()


def begin_attempt(conn: Connection, alert_id: int, now: datetime) -> int:
    """Count an attempt *before* calling Slack; returns the attempts made before this one.

    A row that starts with attempts > 0 may already be in Slack (a crash or timeout after
    the request went out), so the relay looks for it before posting again.
    """
    before = conn.execute(select(table.c.attempts).where(table.c.id == alert_id)).scalar() or 0
    conn.execute(update(table).where(table.c.id == alert_id).values(attempts=before + 1, updated=now))
    return int(before)


def save_progress(conn: Connection, alert_id: int, delivery: Delivery, now: datetime) -> None:
    """Record partial delivery (e.g. thread replies already posted) beside the payload."""
    conn.execute(update(table).where(table.c.id == alert_id).values(payload=_with_delivery(conn, alert_id, delivery), updated=now))


def mark_sent(
    conn: Connection,
    alert_id: int,
    channel_id: str,
    ts: str,
    thread_ts: str,
    now: datetime,
    delivery: Delivery | None = None,
) -> None:
    values: dict[str, Any] = {
        "state": AlertState.SENT.value,
        "slack_channel_id": channel_id,
        "slack_ts": ts,
        "thread_ts": thread_ts,
        "sent": now,
        "updated": now,
        "last_error": "",
        "not_before": None,
    }
    if delivery is not None:
        values["payload"] = _with_delivery(conn, alert_id, delivery)
    conn.execute(update(table).where(table.c.id == alert_id).values(**values))


def mark_retry(conn: Connection, alert_id: int, error: str, not_before: datetime, now: datetime | None = None) -> None:
    """Keep the row pending, to be tried again at `not_before`."""
    conn.execute(
        update(table)
        .where(table.c.id == alert_id)
        .values(last_error=error[:MAX_ERROR], not_before=not_before, updated=now or not_before)
    )


def mark_failed(conn: Connection, alert_id: int, error: str, now: datetime | None = None) -> None:
    """A permanent error: the row is kept, with the reason, and never retried."""
    values: dict[str, Any] = {"state": AlertState.FAILED.value, "last_error": error[:MAX_ERROR]}
    if now is not None:
        values["updated"] = now
    conn.execute(update(table).where(table.c.id == alert_id).values(**values))


def mark_silenced(conn: Connection, alert_id: int, reason: str, now: datetime | None = None) -> None:
    """Recorded, not delivered: e.g. an update whose parent message was silenced."""
    values: dict[str, Any] = {"state": AlertState.SILENCED.value, "last_error": reason[:MAX_ERROR]}
    if now is not None:
        values["updated"] = now
    conn.execute(update(table).where(table.c.id == alert_id).values(**values))


def fold_merged(conn: Connection, absorbed: int, kept: int, now: datetime) -> list[str]:
    """Keep one message per story when development `absorbed` is merged into `kept`.

    Per channel where the absorbed development has a parent row:

    - the kept development has none there → the absorbed development's rows (its parent,
      sent or still waiting, and its updates) now belong to `kept`: that message goes on
      as the merged development's, and no second parent is decided for it;
    - the kept development has one and the absorbed parent was never attempted (held or
      queued) → the absorbed rows are marked superseded: never sent, kept with the reason;
    - the kept development's parent was never attempted (held) and the absorbed one is in
      Slack → the absorbed message carries `kept`, the waiting rows are superseded;
    - otherwise (already in Slack) nothing changes here: the MERGE row turns that message
      into a pointer to the surviving thread.

    Returns one line per channel saying what happened (for the log).
    """
    kept_channels = parent_channels(conn, kept)
    rows = conn.execute(
        select(table.c.id, table.c.kind, table.c.channel, table.c.state, table.c.attempts)
        .where(and_(table.c.development_id == absorbed, table.c.kind.in_([AlertKind.NEW.value, AlertKind.UPDATE.value])))
        .order_by(table.c.id)
    ).mappings().all()
    parents = {r["channel"]: r for r in rows if r["kind"] == AlertKind.NEW.value}
    done: list[str] = []
    for channel, parent in parents.items():
        ids = [r["id"] for r in rows if r["channel"] == channel]
        if channel in kept_channels and parent["state"] == AlertState.SENT.value and _unsent_parent(conn, kept, channel):
            # The kept development's first message is still waiting (held) while the absorbed
            # one's is in Slack: that message carries the merged story, the waiting one is
            # superseded, so people are not notified twice.
            reason = f"merged with development {absorbed}, whose message is already in Slack and now carries it"
            conn.execute(
                update(table)
                .where(and_(table.c.development_id == kept, table.c.channel == channel, table.c.state == AlertState.PENDING.value))
                .values(state=AlertState.SUPERSEDED.value, last_error=reason, updated=now, not_before=None)
            )
            conn.execute(update(table).where(table.c.id.in_(ids)).values(development_id=kept, updated=now))
            done.append(f"{channel}: message of {absorbed} now carries {kept}; {kept}'s waiting message superseded")
        elif channel not in kept_channels and parent["state"] in (AlertState.PENDING.value, AlertState.SENT.value):
            conn.execute(update(table).where(table.c.id.in_(ids)).values(development_id=kept, updated=now))
            done.append(f"{channel}: message of {absorbed} now carries {kept}")
        elif channel in kept_channels and parent["state"] == AlertState.PENDING.value and not parent["attempts"]:
            reason = f"merged into development {kept} before it was sent; that development's message carries it"
            pending = [r["id"] for r in rows if r["channel"] == channel and r["state"] == AlertState.PENDING.value]
            conn.execute(
                update(table)
                .where(table.c.id.in_(pending))
                .values(state=AlertState.SUPERSEDED.value, last_error=reason, updated=now, not_before=None)
            )
            done.append(f"{channel}: {len(pending)} unsent row(s) of {absorbed} superseded by {kept}'s message")
    return done


def _unsent_parent(conn: Connection, development_id: int, channel: str) -> bool:
    """Whether the development's parent row in this channel is waiting and never attempted."""
    row = conn.execute(
        select(table.c.state, table.c.attempts).where(
            and_(table.c.development_id == development_id, table.c.channel == channel, table.c.kind == AlertKind.NEW.value)
        )
    ).first()
    return row is not None and row.state == AlertState.PENDING.value and not row.attempts


def release_holds(conn: Connection, now: datetime, why: str) -> int:
    """Make held first alerts (decide's `Hold`, never attempted) due now; returns how many.

    For `run --once`: every source has just been polled and nothing more arrives before the
    next run, so waiting for a merge would only delay the alert until then. Rows waiting
    for quiet hours or a retry keep their time.
    """
    rows = conn.execute(
        select(table.c.id, table.c.not_before, table.c.payload).where(
            and_(
                table.c.state == AlertState.PENDING.value,
                table.c.kind == AlertKind.NEW.value,
                table.c.attempts == 0,
                table.c.not_before > now,
            )
        )
    ).mappings().all()
    released = 0
    for row in rows:
        stored = _json_object(row["payload"])
        payload = _read_new(stored)
        held_until = payload.held_until
        if held_until is None or row["not_before"] > held_until:
            continue
        released_payload = replace(payload, held_until=None, reason=f"{payload.reason}; {why}")
        column = _with_payload(stored, released_payload)
        conn.execute(update(table).where(table.c.id == row["id"]).values(not_before=None, payload=column, updated=now))
        released += 1
    return released


def waiting_alerts(conn: Connection, now: datetime, limit: int = 20) -> list[Alert]:
    """Pending rows that wait for a later time (held, quiet hours, retry), soonest first."""
    query = (
        select(table)
        .where(and_(table.c.state == AlertState.PENDING.value, table.c.not_before > now))
        .order_by(table.c.not_before)
        .limit(limit)
    )
    return [_alert_from_row(row) for row in conn.execute(query).mappings()]


def counts_by_state(conn: Connection) -> dict[str, int]:
    """{'pending': 3, 'sent': 120, 'failed': 1, ...} (states without rows are absent)."""
    query = select(table.c.state, func.count()).group_by(table.c.state)
    return {state: int(count) for state, count in conn.execute(query)}


def failed_alerts(conn: Connection, limit: int = 20) -> list[Alert]:
    """The most recent permanently failed rows, newest first (for `monitor status`)."""
    query = select(table).where(table.c.state == AlertState.FAILED.value).order_by(table.c.id.desc()).limit(limit)
    return [_alert_from_row(row) for row in conn.execute(query).mappings()]


def sent_with_warnings(conn: Connection, limit: int = 20, scan: int = 500) -> list[Alert]:
    """Recently sent rows the relay left delivery warnings on (e.g. unconfirmed posts), newest
    first; looks at the last `scan` sent rows, which is what `monitor status` needs."""
    query = select(table).where(table.c.state == AlertState.SENT.value).order_by(table.c.id.desc()).limit(scan)
    found = [_alert_from_row(row) for row in conn.execute(query).mappings()]
    return [a for a in found if a.delivery.warnings][:limit]


def _row_from_alert(alert: Alert) -> dict[str, Any]:
    if alert.created is None:
        raise ValueError(f"alert {alert.dedup_key!r} has no created time")
    return {
        "kind": alert.kind.value,
        "channel": alert.channel,
        "dedup_key": alert.dedup_key,
        "development_id": alert.development_id,
        "payload": {**_payload_json(alert.payload), **_delivery_json(alert.delivery)},
        "state": alert.state.value,
        "attempts": alert.attempts,
        "last_error": alert.last_error,
        "not_before": alert.not_before,
        "slack_channel_id": alert.slack_channel_id,
        "slack_ts": alert.slack_ts,
        "thread_ts": alert.thread_ts,
        "created": alert.created,
        "sent": alert.sent,
        "updated": alert.updated or alert.created,
    }


def _alert_from_row(row: RowMapping | Mapping[str, Any]) -> Alert:
    kind = AlertKind(row["kind"])
    stored = _json_object(row["payload"])
    return Alert(
        kind=kind,
        channel=row["channel"],
        dedup_key=row["dedup_key"],
        development_id=row["development_id"],
        payload=_READERS[kind](stored),
        delivery=_read_delivery(stored),
        state=AlertState(row["state"]),
        attempts=row["attempts"],
        last_error=row["last_error"] or "",
        not_before=row["not_before"],
        slack_channel_id=row["slack_channel_id"] or "",
        slack_ts=row["slack_ts"] or "",
        thread_ts=row["thread_ts"] or "",
        created=row["created"],
        sent=row["sent"],
        updated=row["updated"],
        id=row["id"],
    )


def first_parents(conn: Connection, development_ids: Iterable[int]) -> dict[int, tuple[str, str, str | None]]:
    """Development id → (channel id, ts, stored permalink) of its first delivered parent."""
    ids = list(development_ids)
    if not ids:
        return {}
    query = (
        select(table.c.development_id, table.c.slack_channel_id, table.c.slack_ts, table.c.payload)
        .where(and_(table.c.kind == AlertKind.NEW.value, table.c.development_id.in_(ids), table.c.slack_ts != ""))
        .order_by(table.c.id)
    )
    found: dict[int, tuple[str, str, str | None]] = {}
    for row in conn.execute(query):
        if row.development_id not in found:
            stored = _read_delivery(_json_object(row.payload)).permalink
            found[row.development_id] = (row.slack_channel_id, row.slack_ts, stored or None)
    return found


def keys_like(conn: Connection, pattern: str) -> list[str]:
    """Dedup keys matching a LIKE pattern ("digest:%": the digest periods queued)."""
    return [key for (key,) in conn.execute(select(table.c.dedup_key).where(table.c.dedup_key.like(pattern)))]


# --- the JSON column: typed payload and delivery record ↔ one JSON object -------------------
# Key names are those written before the payloads were typed; do not rename them (stored rows
# and a rolled-back version read them). Optional values are left out when unset, as then.

# The relay's keys (Delivery); every other key belongs to the payload.
DELIVERED = "delivered_parts"  # part → {"channel", "ts"} for every part already in Slack
IN_FLIGHT = "in_flight"  # {"part"} or {"part", "error", "answered"}: a post that may have reached Slack
RECORDED = "attempts_recorded"  # this row's attempts keep the in-flight record
WARNINGS = "delivery_warnings"  # what `monitor status` should show about this row
PERMALINK = "permalink"
NOTE = "delivery"  # why a row was sent without posting anything
DELIVERY_KEYS = frozenset({DELIVERED, IN_FLIGHT, RECORDED, WARNINGS, PERMALINK, NOTE})


def _with_delivery(conn: Connection, alert_id: int, delivery: Delivery) -> dict[str, Any]:
    """The row's JSON with the relay's keys replaced; the payload's stay as queued."""
    stored = _json_object(conn.execute(select(table.c.payload).where(table.c.id == alert_id)).scalar())
    kept = {key: value for key, value in stored.items() if key not in DELIVERY_KEYS}
    return {**kept, **_delivery_json(delivery)}


def _with_payload(stored: Mapping[str, Any], payload: AlertPayload) -> dict[str, Any]:
    """The row's JSON with a changed payload (release_holds) and the relay's keys kept."""
    kept = {key: value for key, value in stored.items() if key in DELIVERY_KEYS}
    return {**_payload_json(payload), **kept}


def _json_object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _payload_json(payload: AlertPayload) -> dict[str, Any]:
    if isinstance(payload, NewPayload):
        return _new_json(payload)
    if isinstance(payload, UpdatePayload):
        return _update_json(payload)
    if isinstance(payload, MergePayload):
        return {"reason": payload.reason, "from": payload.from_id, "into": payload.into_id, **_decided_json(payload)}
    if isinstance(payload, DigestPayload):
        return _digest_json(payload)
    if isinstance(payload, HealthPayload):
        return {"reason": payload.reason, "source_id": payload.source_id, "change": payload.change, "text": payload.text}
    raise TypeError(f"no JSON form for {type(payload).__name__}")


def _new_json(payload: NewPayload) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reason": payload.reason,
        "independent": payload.independent,
        "impact": payload.impact,
        "oncall": payload.oncall,
        "article_ids": list(payload.article_ids),
    }
    if payload.mention:
        out["mention"] = payload.mention
    out |= _decided_json(payload)
    if payload.held_until is not None:
        out["held_until"] = payload.held_until.isoformat()
    return out


def _update_json(payload: UpdatePayload) -> dict[str, Any]:
    return {
        "reason": payload.reason,
        "new_article_ids": list(payload.new_article_ids),
        "independent": payload.independent,
        "previous_independent": payload.previous_independent,
        "impact": payload.impact,
        "previous_impact": payload.previous_impact,
        "material": payload.material,
        "oncall": payload.oncall,
        **_decided_json(payload),
    }


def _digest_json(payload: DigestPayload) -> dict[str, Any]:
    return {
        "reason": payload.reason,
        "digest_id": payload.digest_id,
        "period_start": _iso(payload.period_start),
        "period_end": _iso(payload.period_end),
        "text": payload.text,
        "blocks": list(payload.blocks),
        "thread": [{"text": m.text, "blocks": list(m.blocks)} for m in payload.thread],
    }


def _decided_json(payload: DevelopmentPayload) -> dict[str, Any]:
    """A silenced row records its silence; any other row whether it was urgent."""
    silence = payload.silence
    if silence is None:
        return {"urgent": payload.urgent}
    return {"silence": {"id": silence.id, "matcher": silence.matcher, "value": silence.value, "reason": silence.reason}}


def _read_new(data: Mapping[str, Any]) -> NewPayload:
    return NewPayload(
        reason=_text(data.get("reason")),
        independent=_int(data.get("independent")) or 0,
        impact=_int(data.get("impact")) or 0,
        oncall=bool(data.get("oncall")),
        article_ids=_ids(data.get("article_ids")),
        mention=_text(data.get("mention")),
        held_until=_when(data.get("held_until")),
        urgent=bool(data.get("urgent")),
        silence=_read_silence(data.get("silence")),
    )


def _read_update(data: Mapping[str, Any]) -> UpdatePayload:
    return UpdatePayload(
        reason=_text(data.get("reason")),
        new_article_ids=_ids(data.get("new_article_ids")),
        independent=_int(data.get("independent")) or 0,
        previous_independent=_int(data.get("previous_independent")) or 0,
        impact=_int(data.get("impact")) or 0,
        previous_impact=_int(data.get("previous_impact")),
        material=bool(data.get("material")),
        oncall=bool(data.get("oncall")),
        urgent=bool(data.get("urgent")),
        silence=_read_silence(data.get("silence")),
    )


def _read_merge(data: Mapping[str, Any]) -> MergePayload:
    return MergePayload(
        reason=_text(data.get("reason")),
        from_id=_int(data.get("from")),
        into_id=_int(data.get("into")),
        urgent=bool(data.get("urgent")),
        silence=_read_silence(data.get("silence")),
    )


def _read_digest(data: Mapping[str, Any]) -> DigestPayload:
    thread = data.get("thread")
    return DigestPayload(
        reason=_text(data.get("reason")),
        digest_id=_text(data.get("digest_id")),
        period_start=_when(data.get("period_start")),
        period_end=_when(data.get("period_end")),
        text=_text(data.get("text")),
        blocks=_blocks(data.get("blocks")),
        thread=tuple(
            SlackMessage(_text(item.get("text")), _blocks(item.get("blocks")))
            for item in (thread if isinstance(thread, list) else [])
            if isinstance(item, Mapping)
        ),
    )


def _read_health(data: Mapping[str, Any]) -> HealthPayload:
    return HealthPayload(
        reason=_text(data.get("reason")),
        source_id=_text(data.get("source_id")),
        change=_text(data.get("change")),
        text=_text(data.get("text")),
    )


_READERS: Mapping[AlertKind, Callable[[Mapping[str, Any]], AlertPayload]] = {
    AlertKind.NEW: _read_new,
    AlertKind.UPDATE: _read_update,
    AlertKind.MERGE: _read_merge,
    AlertKind.DIGEST: _read_digest,
    AlertKind.HEALTH: _read_health,
    AlertKind.RECOVERY: _read_health,
}


def _read_silence(value: object) -> SilenceNote | None:
    if not isinstance(value, Mapping):
        return None
    silence_id = _int(value.get("id"))
    if silence_id is None:
        return None
    return SilenceNote(
        id=silence_id,
        matcher=_text(value.get("matcher")),
        value=_text(value.get("value")),
        reason=_text(value.get("reason")),
    )


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if delivery.parts:
        out[DELIVERED] = {part: {"channel": p.channel, "ts": p.ts} for part, p in delivery.parts.items()}
    flight = delivery.in_flight
    if flight is not None:
        out[IN_FLIGHT] = {"part": flight.part}
        if flight.error:  # the post ended ambiguously; without an error it was cut off mid-call
            out[IN_FLIGHT] |= {"error": flight.error, "answered": flight.answered}
    if delivery.recorded:
        out[RECORDED] = True
    if delivery.warnings:
        out[WARNINGS] = list(delivery.warnings)
    if delivery.permalink:
        out[PERMALINK] = delivery.permalink
    if delivery.note:
        out[NOTE] = delivery.note
    return out


def _read_delivery(data: Mapping[str, Any]) -> Delivery:
    parts = data.get(DELIVERED)
    flight = data.get(IN_FLIGHT)
    warnings = data.get(WARNINGS)
    return Delivery(
        parts={
            str(part): PostedPart(_text(where.get("channel")), _text(where.get("ts")))
            for part, where in (parts.items() if isinstance(parts, Mapping) else ())
            if isinstance(where, Mapping)
        },
        in_flight=(
            InFlight(flight["part"], _text(flight.get("error")), bool(flight.get("answered")))
            if isinstance(flight, Mapping) and isinstance(flight.get("part"), str)
            else None
        ),
        recorded=bool(data.get(RECORDED)),
        warnings=[str(w) for w in warnings] if isinstance(warnings, list) else [],
        permalink=_text(data.get(PERMALINK)),
        note=_text(data.get(NOTE)),
    )


# Lenient readers: the fallbacks the relay applied to the untyped payloads.


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    """An int, or a string of digits (as an int); None for anything else."""
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def _ids(value: object) -> tuple[int, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(int(v) for v in value if isinstance(v, int | str) and str(v).isdigit())


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _blocks(value: object) -> tuple[dict[str, Any], ...]:
    return tuple(dict(block) for block in value if isinstance(block, Mapping)) if isinstance(value, list) else ()
