"""Alembic environment, configured in code by `monitor.store.db` (no alembic.ini).

`Store.upgrade()` passes its open connection in `config.attributes["connection"]`, so the
migration runs inside the store's own transaction. For developers' `alembic` commands a
`sqlalchemy.url` main option is used instead.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection, create_engine

from monitor.store.schema import UtcDateTime, metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # A revision must not import today's code: write our UTC type as the column type it is.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_item=render_item,
        # SQLite cannot ALTER most things; batch mode rebuilds tables when a later
        # revision needs it.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as own_connection:
        run_with(own_connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; use `monitor db upgrade`")
run_migrations_online()
