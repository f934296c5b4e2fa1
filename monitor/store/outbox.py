"""The outbox: the `alert` table as a queue of Slack deliveries and a notification log.

Rows are written by `enqueue` in the same transaction as the state change that caused them
(decide, digests, source health), so a crash either keeps both or neither. The relay
(`alerts.deliver`) reads `due` rows and records the outcome with `mark_sent`,
`mark_retry` or `mark_failed`; a row stays `pending` until Slack's `ts` is recorded, so
nothing is lost between the two.

`dedup_key` is unique: enqueueing the same key twice inserts one row (the second call
returns None), which is what makes decide, digests and health alerts idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.models import Alert, AlertKind, AlertState
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


def save_progress(conn: Connection, alert_id: int, payload: Mapping[str, Any], now: datetime) -> None:
    """Record partial delivery (e.g. thread replies already posted) inside the payload."""
    conn.execute(update(table).where(table.c.id == alert_id).values(payload=dict(payload), updated=now))


def mark_sent(
    conn: Connection,
    alert_id: int,
    channel_id: str,
    ts: str,
    thread_ts: str,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
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
    if payload is not None:
        values["payload"] = dict(payload)
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
        payload = dict(row["payload"] or {})
        held_until = payload.get("held_until")
        if not isinstance(held_until, str) or row["not_before"] > datetime.fromisoformat(held_until):
            continue
        payload.pop("held_until")
        payload["reason"] = f"{payload.get('reason', '')}; {why}"
        conn.execute(update(table).where(table.c.id == row["id"]).values(not_before=None, payload=payload, updated=now))
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


def sent_with_note(conn: Connection, key: str, limit: int = 20, scan: int = 500) -> list[Alert]:
    """Recently sent rows whose payload carries `key` (e.g. the relay's delivery warnings),
    newest first; looks at the last `scan` sent rows, which is what `monitor status` needs."""
    query = select(table).where(table.c.state == AlertState.SENT.value).order_by(table.c.id.desc()).limit(scan)
    found = [_alert_from_row(row) for row in conn.execute(query).mappings()]
    return [a for a in found if a.payload.get(key)][:limit]


def alerts_between(
    conn: Connection, since: datetime, until: datetime, kinds: Iterable[AlertKind] | None = None
) -> list[Alert]:
    """Rows created in [since, until), optionally of some kinds, oldest first."""
    conditions = [table.c.created >= since, table.c.created < until]
    chosen: Sequence[AlertKind] = list(kinds) if kinds is not None else []
    if chosen:
        conditions.append(table.c.kind.in_([k.value for k in chosen]))
    query = select(table).where(and_(*conditions)).order_by(table.c.id)
    return [_alert_from_row(row) for row in conn.execute(query).mappings()]


def _row_from_alert(alert: Alert) -> dict[str, Any]:
    if alert.created is None:
        raise ValueError(f"alert {alert.dedup_key!r} has no created time")
    return {
        "kind": alert.kind.value,
        "channel": alert.channel,
        "dedup_key": alert.dedup_key,
        "development_id": alert.development_id,
        "payload": dict(alert.payload),
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
    return Alert(
        kind=AlertKind(row["kind"]),
        channel=row["channel"],
        dedup_key=row["dedup_key"],
        development_id=row["development_id"],
        payload=dict(row["payload"] or {}),
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
            stored = (row.payload or {}).get("permalink") if isinstance(row.payload, dict) else None
            found[row.development_id] = (row.slack_channel_id, row.slack_ts, stored if isinstance(stored, str) and stored else None)
    return found


def keys_like(conn: Connection, pattern: str) -> list[str]:
    """Dedup keys matching a LIKE pattern ("digest:%": the digest periods queued)."""
    return [key for (key,) in conn.execute(select(table.c.dedup_key).where(table.c.dedup_key.like(pattern)))]
