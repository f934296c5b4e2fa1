"""Reading rows back in tests, through the store's own readers (tests may speak SQL; the
product's modules outside monitor/store may not)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from monitor.models import Alert, AlertKind, Article
from monitor.store import articles, outbox
from monitor.store.schema import alert as alert_table
from monitor.store.schema import development as development_table


def all_alerts(conn: Connection, kind: AlertKind | None = None) -> list[Alert]:
    """Every outbox row (of one kind), oldest first."""
    query = select(alert_table.c.id).order_by(alert_table.c.id)
    if kind is not None:
        query = query.where(alert_table.c.kind == kind.value)
    found = [outbox.get_alert(conn, row_id) for (row_id,) in conn.execute(query)]
    return [a for a in found if a is not None]


def features(conn: Connection, development_id: int) -> dict | None:
    """The clustering features stored with a development (None when cleared)."""
    value = conn.execute(select(development_table.c.features).where(development_table.c.id == development_id)).scalar()
    return dict(value) if value else None


def members(conn: Connection, *development_ids: int) -> dict[int, list[Article]]:
    return {dev_id: articles.articles_for_development(conn, dev_id) for dev_id in development_ids}
