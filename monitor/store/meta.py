"""Small named values the monitor keeps between runs (JSON): last digest, last prune, ..."""

from __future__ import annotations

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
