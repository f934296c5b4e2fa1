"""Silences: operator-made rules that keep matching alerts out of Slack for a while.

A silence is never deleted: `remove_silence` stamps `removed`, so `silence list --all` can
show who muted what and why. Expired and removed silences are simply no longer active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from monitor.models import SILENCE_MATCHERS, ActiveSilence
from monitor.store.schema import as_utc, silence


def add_silence(
    conn: Connection,
    matcher: str,
    value: str,
    reason: str,
    created: datetime,
    expires: datetime,
) -> int:
    """Store a silence and return its id. `matcher` is topic, development, source or match."""
    if matcher not in SILENCE_MATCHERS:
        raise ValueError(f"unknown silence matcher {matcher!r}; use one of {', '.join(SILENCE_MATCHERS)}")
    if not value.strip():
        raise ValueError("a silence needs a non-empty value")
    if expires <= created:
        raise ValueError("a silence must expire after it is created")
    result = conn.execute(
        silence.insert().values(
            matcher=matcher,
            value=value.strip(),
            reason=reason,
            created=as_utc(created),
            expires=as_utc(expires),
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # an insert into a table with an autoincrement id
    return int(key[0])


def _active(row: Any) -> ActiveSilence:
    return ActiveSilence(
        id=row.id,
        matcher=row.matcher,
        value=row.value,
        reason=row.reason,
        expires=as_utc(row.expires),
        created=as_utc(row.created),
    )


def active_silences(conn: Connection, now: datetime) -> list[ActiveSilence]:
    """Silences in force at `now`: not removed and not yet expired."""
    query = (
        select(silence)
        .where(and_(silence.c.removed.is_(None), silence.c.expires > as_utc(now)))
        .order_by(silence.c.id)
    )
    return [_active(row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """A silence as `silence list` and `monitor status` show it, active or not."""

    id: int
    matcher: str
    value: str
    reason: str
    created: datetime
    expires: datetime
    removed: datetime | None
    status: str  # active | expired | removed


def list_silences(conn: Connection, now: datetime, include_expired: bool = False) -> list[SilenceRecord]:
    """Silences for `monitor silence list` and `monitor status`, newest first."""
    query = select(silence).order_by(silence.c.id.desc())
    if not include_expired:
        query = query.where(and_(silence.c.removed.is_(None), silence.c.expires > as_utc(now)))
    return [_record(row, as_utc(now)) for row in conn.execute(query)]


def _record(row: Any, now: datetime) -> SilenceRecord:
    expires = as_utc(row.expires)
    removed = as_utc(row.removed) if row.removed is not None else None
    status = "removed" if removed is not None else ("expired" if expires <= now else "active")
    return SilenceRecord(row.id, row.matcher, row.value, row.reason, as_utc(row.created), expires, removed, status)


def remove_silence(conn: Connection, silence_id: int, now: datetime) -> bool:
    """End a silence now. False when no active silence has this id."""
    result = conn.execute(
        update(silence)
        .where(
            and_(
                silence.c.id == silence_id,
                silence.c.removed.is_(None),
                silence.c.expires > as_utc(now),
            )
        )
        .values(removed=as_utc(now))
    )
    return bool(result.rowcount)
