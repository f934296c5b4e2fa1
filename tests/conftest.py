"""Shared fixtures.

`store` is an upgraded, empty `Store` on every engine we support: SQLite (a temp file)
always, PostgreSQL when MONITOR_TEST_POSTGRES_URL is set (CI sets it; otherwise those tests
skip and say why). Each PostgreSQL test gets a fresh schema of its own, so tests never see
each other's rows and parallel CI runs on one server do not collide.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.store import Store
from tests.corpus import check_missing_marker

POSTGRES_ENV = "MONITOR_TEST_POSTGRES_URL"


@pytest.fixture
def now() -> datetime:
    """A fixed, aware 'now' for tests that pass the clock in."""
    return datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (not migrated) on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    yield from _postgres_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to an empty PostgreSQL schema of the test's own (not migrated)."""
    yield from _postgres_url()


def _postgres_url() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} not set (.ci/run sets it)")
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An upgraded, empty store on each engine."""
    opened = Store.open(store_url)
    opened.upgrade()
    yield opened
    opened.close()


@pytest.fixture
def reopen(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open the same database again, as a restarted process would."""
    opened: list[Store] = []

    def open_again() -> Store:
        opened.append(Store.open(store_url))
        return opened[-1]

    yield open_again
    for item in opened:
        item.close()


class postgres_schema:  # noqa: N801 - used as a context manager, reads like a function
    """Create a schema named t_<random>, yield a URL whose search_path is it, drop it after."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin = create_engine(base_url)

    def __enter__(self) -> str:
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        url = make_url(self.base_url).update_query_dict(
            # application_name marks this test's connections, for the clean-up below.
            {"options": f"-csearch_path={self.name}", "application_name": self.name}
        )
        return url.render_as_string(hide_password=False)

    def __exit__(self, *exc: object) -> None:
        with self.admin.begin() as conn:
            # A connection the test left open in a transaction would block DROP SCHEMA
            # forever; end it, and say so, since it is a leak worth fixing.
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name AND pid <> pg_backend_pid()"
                    # Only these hold locks; a just-closed connection may still be listed.
                    " AND state IN ('active', 'idle in transaction',"
                    " 'idle in transaction (aborted)')"
                ),
                {"name": self.name},
            ).scalar()
            if ended:
                warnings.warn(f"{ended} connection(s) still open after the test", stacklevel=2)
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "corpus_missing(reason): a parameter standing for a corpus that is absent"
    )
    config.addinivalue_line(
        "markers",
        "netns: aims at a non-loopback address; runs only inside a network namespace with only "
        "loopback (tests/netns.py), so nothing can leave the machine even if the guard fails",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    check_missing_marker(item)
