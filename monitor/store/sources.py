"""Source health: validators for conditional GET, failures, and the "failing" alert flag."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.engine import RowMapping

from monitor.models import ErrorKind, SourceHealth
from monitor.store.db import upsert
from monitor.store.schema import source_state

log = logging.getLogger(__name__)

# SourceHealth field → column; health_alerted is not part of SourceHealth, so saving health
# never clears an outstanding "source failing" alert flag.
_HEALTH_FIELDS = (
    "etag",
    "last_modified",
    "body_hash",
    "last_status",
    "last_ok",
    "last_attempt",
    "consecutive_failures",
    "last_error_kind",
    "last_error",
    "next_due",
    "items_seen",
)


def get_health(conn: Connection, source_id: str) -> SourceHealth:
    """The stored health of a source; a fresh `SourceHealth` when it has never run."""
    return get_healths(conn, [source_id])[source_id]


def get_healths(conn: Connection, source_ids: list[str]) -> dict[str, SourceHealth]:
    """The stored health of each source (fresh for one that never ran), in one query."""
    found = {sid: SourceHealth(sid) for sid in source_ids}
    for row in conn.execute(select(source_state).where(source_state.c.source_id.in_(source_ids))):
        found[row.source_id] = _health_from_row(row._mapping)
    return found


def load_all_health(conn: Connection) -> dict[str, SourceHealth]:
    """Every stored source's health, by source id (sources removed from config included)."""
    rows = conn.execute(select(source_state).order_by(source_state.c.source_id))
    return {row.source_id: _health_from_row(row._mapping) for row in rows}


def save_health(conn: Connection, health: SourceHealth) -> None:
    """Insert or replace a source's health."""
    upsert(conn, source_state, {"source_id": health.source_id, **health_values(health)}, ["source_id"])


def health_values(health: SourceHealth) -> dict[str, Any]:
    """The source_state columns that hold a source's health."""
    values = {name: getattr(health, name) for name in _HEALTH_FIELDS}
    values["last_error_kind"] = health.last_error_kind.value if health.last_error_kind else None
    values["last_error"] = health.last_error or None
    return values


def set_health_alerted(conn: Connection, source_id: str, flag: bool) -> None:
    """Remember whether a "source failing" alert is outstanding for this source."""
    result = conn.execute(
        update(source_state)
        .where(source_state.c.source_id == source_id)
        .values(health_alerted=flag)
    )
    if result.rowcount == 0:
        conn.execute(
            source_state.insert().values(
                source_id=source_id, health_alerted=flag, consecutive_failures=0, items_seen=0
            )
        )


def is_health_alerted(conn: Connection, source_id: str) -> bool:
    """True while a "source failing" alert is outstanding for this source."""
    value = conn.execute(
        select(source_state.c.health_alerted).where(source_state.c.source_id == source_id)
    ).scalar()
    return bool(value)


def _health_from_row(row: RowMapping) -> SourceHealth:
    return SourceHealth(
        source_id=row["source_id"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_status=row["last_status"],
        last_ok=row["last_ok"],
        last_attempt=row["last_attempt"],
        consecutive_failures=row["consecutive_failures"] or 0,
        last_error_kind=_error_kind(row["last_error_kind"]),
        last_error=row["last_error"] or "",
        next_due=row["next_due"],
        items_seen=row["items_seen"] or 0,
    )


def _error_kind(value: str | None) -> ErrorKind | None:
    if value is None:
        return None
    try:
        return ErrorKind(value)
    except ValueError:
        # A kind written by a newer version: keep the health readable.
        log.warning("unknown error kind %r in source_state; reading it as 'other'", value)
        return ErrorKind.OTHER


def failing(conn: Connection, failures_before_alert: int) -> list[SourceHealth]:
    """Sources alerted as failing, or failing at least `failures_before_alert` times in a row;
    the most failures first."""
    query = (
        select(source_state)
        .where(or_(source_state.c.health_alerted.is_(True), source_state.c.consecutive_failures >= failures_before_alert))
        .order_by(source_state.c.consecutive_failures.desc(), source_state.c.source_id)
    )
    return [_health_from_row(row._mapping) for row in conn.execute(query)]
