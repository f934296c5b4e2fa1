"""What the operator's gauges read from the store (`/metrics`): outbox depth, developments by
state, each source's last successful fetch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from monitor.store.schema import alert, as_utc, development, source_state

# Alerts that are still to be delivered.
WAITING_STATES = ("pending", "deferred")


@dataclass(frozen=True)
class Gauges:
    waiting_alerts: int
    developments_by_state: dict[str, int]
    last_ok: dict[str, datetime]  # source id → last successful fetch


def gauges(conn: Connection) -> Gauges:
    waiting = conn.execute(select(func.count()).select_from(alert).where(alert.c.state.in_(WAITING_STATES))).scalar()
    rows = conn.execute(select(development.c.state, func.count()).group_by(development.c.state))
    last_ok = conn.execute(
        select(source_state.c.source_id, source_state.c.last_ok).where(source_state.c.last_ok.is_not(None))
    ).all()
    return Gauges(
        int(waiting or 0),
        {str(state): int(count) for state, count in rows},
        {str(source_id): as_utc(when) for source_id, when in last_ok},
    )
