"""Copy a whole store to an empty database: moving from SQLite to PostgreSQL.

    monitor db copy --to postgresql+psycopg://monitor:PW@db/monitor
    monitor db copy --from sqlite:////var/lib/monitor/monitor.db --to postgresql+psycopg://...

The monitor must be stopped (nothing may write to the source while it is read). The target is
migrated to the newest schema, must hold no rows, and receives every table with the same ids
in one transaction (references are checked at commit, so the order within it does not
matter); id sequences are then moved past the copied ids, and row counts are compared. Any
error leaves the target as empty as it was.

Rows go through SQLAlchemy Core with the schema's own types, so JSON, booleans and UTC
timestamps arrive as the target engine stores them, not as SQLite's text.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Table, func, select

from monitor.store import Store
from monitor.store.db import sync_id_sequence
from monitor.store.schema import metadata

log = logging.getLogger(__name__)

BATCH = 2_000


class CopyError(Exception):
    """The copy cannot start or did not add up; nothing was committed to the target."""


def copy_database(source: Store, target: Store, *, batch: int = BATCH) -> dict[str, int]:
    """Copy every table of `source` into the empty `target`; returns rows per table."""
    source_revision, head = source.current_revision(), source.head_revision()
    if source_revision != head:
        raise CopyError(f"{source.url} is at migration {source_revision or '(empty)'}, not {head}: run `monitor db upgrade` on it first")
    target.upgrade()
    tables = list(metadata.sorted_tables)
    copied: dict[str, int] = {}
    with source.connect() as reader, target.transaction() as writer:
        busy = [t.name for t in tables if _count(writer, t)]
        if busy:
            raise CopyError(f"{target.url} already holds data (tables: {', '.join(busy)}); copy only into an empty database")
        for table in tables:
            copied[table.name] = _copy_table(reader, writer, table, batch)
            if "id" in table.c:
                sync_id_sequence(writer, table.name)
        mismatched = [t.name for t in tables if _count(writer, t) != copied[t.name]]
        if mismatched:
            raise CopyError(f"row counts differ after the copy in: {', '.join(mismatched)}")
    return copied


def _copy_table(reader: Connection, writer: Connection, table: Table, batch: int) -> int:
    order = [table.c.id] if "id" in table.c else list(table.primary_key.columns)
    rows = reader.execute(select(table).order_by(*order).execution_options(yield_per=batch)).mappings()
    total = 0
    while chunk := [dict(row) for row in rows.fetchmany(batch)]:
        writer.execute(table.insert(), chunk)
        total += len(chunk)
    log.info("copied %d rows of %s", total, table.name)
    return total


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
