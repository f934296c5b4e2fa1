"""Small named values the monitor keeps between runs (JSON): last digest, last prune, ..."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from monitor.store.db import upsert
from monitor.store.schema import meta


def get_meta(conn: Connection, key: str, default: Any = None) -> Any:
    """The stored value for `key`, or `default` when there is none."""
    row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
    return default if row is None else row.value


def set_meta(conn: Connection, key: str, value: Any) -> None:
    """Store a JSON-serialisable value under `key`, replacing any previous one."""
    upsert(conn, meta, {"key": key, "value": value}, ["key"])


# -- leases: one holder of a job per store, across processes and hosts ---------------------

NOBODY = {"owner": "", "expires": "1970-01-01T00:00:00+00:00"}


def take_lease(
    conn: Connection, name: str, owner: str, now: datetime, ttl: timedelta, *, stale: Callable[[str], bool] | None = None
) -> tuple[bool, dict[str, str]]:
    """Take or renew the lease `name` for `owner` until `now + ttl`; (taken, previous holder).

    Refused while another owner holds an unexpired lease, unless `stale(owner)` says that
    owner is gone (e.g. a process of this host that no longer runs). The row is locked for
    the transaction (PostgreSQL: FOR UPDATE; SQLite: the store's write transactions are
    IMMEDIATE), so two processes cannot both take it.
    """
    key = f"lease:{name}"
    # The key alone: db.upsert then inserts or does nothing, so the row exists for the lock
    # below and a holder's lease is never overwritten here (a new row's NULL reads as nobody).
    upsert(conn, meta, {"key": key}, ["key"])
    row = conn.execute(select(meta.c.value).where(meta.c.key == key).with_for_update()).first()
    current = dict(row.value) if row is not None and isinstance(row.value, dict) else dict(NOBODY)
    holder = str(current.get("owner", ""))
    expires = datetime.fromisoformat(str(current.get("expires", NOBODY["expires"])))
    if holder and holder != owner and expires > now and not (stale and stale(holder)):
        return False, current
    set_meta(conn, key, {"owner": owner, "expires": (now + ttl).isoformat()})
    return True, current


def release_lease(conn: Connection, name: str, owner: str) -> None:
    """Give the lease up (on a clean stop), so a restarted process need not wait for it."""
    current = get_meta(conn, f"lease:{name}")
    if isinstance(current, dict) and current.get("owner") == owner:
        set_meta(conn, f"lease:{name}", NOBODY)
