"""SQLite upkeep the retention job asks for: checkpointing the WAL, compacting the file, and
how much of it could be reclaimed. No-ops on PostgreSQL, which does its own."""

from __future__ import annotations

from monitor.store.db import Store


def checkpoint_wal(store: Store) -> None:
    """Copy the WAL into the main file and truncate it (SQLite; a no-op elsewhere).

    A reader holding an old snapshot makes the checkpoint partial; that is fine, the next
    run finishes it.
    """
    if store.dialect == "sqlite":
        _outside_transaction(store, "PRAGMA wal_checkpoint(TRUNCATE)")


def vacuum(store: Store) -> None:
    """Rewrite the SQLite file without its free pages (a no-op elsewhere)."""
    if store.dialect == "sqlite":
        _outside_transaction(store, "VACUUM")


def _outside_transaction(store: Store, statement: str) -> None:
    # VACUUM and a full checkpoint refuse to run inside a transaction, and the store's
    # SQLAlchemy connections always BEGIN (see monitor.store.db); the DB-API connection is
    # in autocommit mode (isolation_level=None), so the statement runs on its own there.
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(statement)
            cursor.fetchall()
        finally:
            cursor.close()
    finally:
        raw.close()


def space(store: Store) -> tuple[int, int]:
    """(file bytes, reclaimable bytes: free pages + unused bytes inside pages)."""
    with store.connect() as conn:
        page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0) * page_size
        try:
            # Aggregated per table and index (the second argument); reads every page once.
            unused = int(conn.exec_driver_sql("SELECT sum(unused) FROM dbstat('main', 1)").scalar() or 0)
        except Exception:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            unused = 0
    return pages * page_size, free + unused
