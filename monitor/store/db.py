"""The database handle: engines, transactions, migrations (`monitor db` is `monitor.cli.db`).

`Store` is the only object that owns an SQLAlchemy engine. Query modules (sources, articles,
developments, meta, outbox, silences) are plain functions that take a `Connection` first,
so callers group several of them into one transaction:

    store = Store.open("sqlite:///var/monitor.db")
    store.upgrade()
    with store.transaction() as conn:   # commit on success, rollback on any exception
        insert_articles(conn, articles)
        upsert_development(conn, dev)
    with store.connect() as conn:       # reads
        dev = get_development(conn, 7)

SQLite gets WAL, foreign keys, a busy timeout and `synchronous=NORMAL` on every connection,
and write transactions start with `BEGIN IMMEDIATE` so two writers queue on the busy
timeout instead of failing half-way when one upgrades its read lock.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from monitor.store import schema

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
SQLITE_BUSY_TIMEOUT_MS = 10_000
# pg_advisory_xact_lock key held while migrating ("mon" "db" in ASCII; any fixed number works).
UPGRADE_LOCK_ID = 0x6D6F6E6462
# Tables that belong to the migration tool, not to our schema.
_FOREIGN_TABLES = frozenset({"alembic_version"})


class Store:
    """One database (SQLite file or PostgreSQL URL) behind SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, pool: int | None = None) -> Store:
        """Open (not migrate) the database at `url`; SQLite's parent directory is created.
        `pool`: PostgreSQL connections kept at most (SQLAlchemy's 5 + 10 overflow otherwise)."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return cls(_sqlite_engine(url))
        if parsed.drivername in ("postgres", "postgresql"):
            # The bare scheme operators paste from elsewhere means psycopg 3 here (the only
            # PostgreSQL driver we install), not SQLAlchemy's default psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        sized = {"pool_size": pool, "max_overflow": 0} if pool else {}
        return cls(create_engine(parsed, pool_pre_ping=True, **sized))

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The URL with any password masked, for logs and status screens."""
        return self.engine.url.render_as_string(hide_password=True)

    def describe(self) -> str:
        """One line for `monitor status`: where the data is and whether it is migrated."""
        try:
            current, head = self.current_revision(), self.head_revision()
        except SQLAlchemyError as exc:
            return f"{self.url} (unreachable: {first_line(exc)})"
        if current == head:
            return f"{self.url} (schema {current})"
        return f"{self.url} (schema {current or 'empty'}; needs `monitor db upgrade` to {head})"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: commit on success, rollback on exception."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def connect(self) -> Connection:
        """A connection for reads (`with store.connect() as conn:`); nothing is committed."""
        return self.engine.connect()

    def ping(self) -> bool:
        """True when the database answers a trivial query (for /readyz)."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
        except Exception as exc:  # any driver error means "not ready"; say why in the log
            log.warning("store ping failed: %s", exc)
            return False
        return True

    def ping_or_raise(self) -> None:
        """A trivial query; the driver's error when the database does not answer."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to `revision`, in one transaction."""
        from alembic import command

        with self.transaction() as conn:
            if self.dialect == "postgresql":
                # Two processes starting at once (replicas, `monitor run` next to `monitor db
                # upgrade`) queue here instead of racing on CREATE TABLE. The lock ends with
                # the transaction. SQLite's BEGIN IMMEDIATE already queues writers.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK_ID})")
            command.upgrade(_alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        """The applied migration revision, or None for an empty database."""
        from alembic.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest migration revision shipped with this package."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def schema_diff(self) -> list[Any]:
        """Differences between the database and `schema.metadata` (empty when in sync)."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
            return not (type_ == "table" and name in _FOREIGN_TABLES)

        with self.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": include_name, "compare_type": True}
            )
            return list(compare_metadata(context, schema.metadata))

    def max_ids(self, conn: Connection) -> tuple[int, int]:
        """(largest article id, largest development id); see the module function."""
        return max_ids(conn)

    def compact(self) -> None:
        """Give space freed by retention back to the file system (SQLite `VACUUM`).

        Not needed for a bounded size (SQLite reuses freed pages), only to shrink the file.
        PostgreSQL's autovacuum does this job there, so it is a no-op.
        """
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def max_ids(conn: Connection) -> tuple[int, int]:
    """(largest article id, largest development id), 0 for an empty table.

    The analysis engine allocates ids itself from these, and the store inserts them as given.
    """
    article_max = conn.execute(select(func.max(schema.article.c.id))).scalar()
    development_max = conn.execute(select(func.max(schema.development.c.id))).scalar()
    return int(article_max or 0), int(development_max or 0)


def sync_id_sequence(conn: Connection, table: str) -> None:
    """After inserting explicit ids on PostgreSQL, move the table's id sequence past them.

    Otherwise a later insert without an id (an operator's script, an alert row) would get a
    sequence value that is already taken. SQLite needs nothing: it uses max(rowid) + 1.
    """
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"GREATEST((SELECT max(id) FROM {table}), 1), "
        f"(SELECT max(id) FROM {table}) IS NOT NULL)"
    )


def upsert(conn: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, on SQLite and PostgreSQL alike."""
    statement = _upsert_statement(conn.dialect.name, table, tuple(values), tuple(key))
    conn.execute(statement, dict(values))


@functools.lru_cache(maxsize=256)
def _upsert_statement(dialect_name: str, table: Table, columns: tuple[str, ...], key: tuple[str, ...]) -> Any:
    # Built once per shape and reused: constructing an upsert costs more CPU than running it,
    # and every poll of every source writes its health with one.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    changes = {name: statement.excluded[name] for name in columns if name not in key}
    if changes:
        return statement.on_conflict_do_update(index_elements=list(key), set_=changes)
    return statement.on_conflict_do_nothing(index_elements=list(key))


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if in_memory:
        # One shared connection, or every checkout would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Take transaction control away from pysqlite (it delays BEGIN until the first write and
    # commits before DDL); `_on_sqlite_begin` issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoint the WAL every ~40 MB instead of SQLite's 4 MB: on a store of a million
        # articles the frequent checkpoints doubled the cost of a commit (bench: 1.2× the
        # analysis rate at 1M). The daily retention job still truncates the WAL to 0.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, waiting like the busy timeout does.

    Switching a new file to WAL needs an exclusive lock, and SQLite refuses it at once
    (without its busy handler, to avoid a deadlock) while another connection holds a shared
    one: processes opening a new store together (e.g. upgrading it) hit that. Once the file
    is in WAL mode the pragma changes nothing and takes no lock.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _alembic_config(connection: Connection | None = None) -> Any:
    """Alembic configured in code: no alembic.ini, works from an installed package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def autogenerate_revision(message: str, rev_id: str) -> list[str]:
    """For developers, after editing schema.py: write a new revision file that brings a
    database at head up to `schema.metadata`, and return its path(s). Review it before
    committing (rename columns by hand; autogenerate sees a drop and an add).

        python -c "from monitor.store.db import autogenerate_revision as a; \\
                   print(a('add article.language', '0002'))"

    `test_migrations_create_exactly_the_schema` fails until such a revision exists.
    """
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as scratch:
        store = Store.open(f"sqlite:///{scratch}/head.db")
        try:
            store.upgrade()
            with store.transaction() as conn:
                config = _alembic_config(conn)
                scripts = command.revision(config, message, autogenerate=True, rev_id=rev_id)
        finally:
            store.close()
    items = scripts if isinstance(scripts, list) else [scripts]
    return [script.path for script in items if script is not None]


def first_line(exc: BaseException) -> str:
    """What a database error says, in one line: driver errors carry the SQL and a link on later
    lines; the first says what happened."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
