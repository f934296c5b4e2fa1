"""The analysis owner's drain: polls that brought nothing are analysed together, in order,
fenced like any other, and still raise the health alerts they carry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("psycopg")

from monitor.models import ErrorKind, SourceHealth  # noqa: E402
from monitor.run.owner import ROLE, AnalysisOwner, quiet_runs  # noqa: E402
from monitor.store import Store, outbox  # noqa: E402
from monitor.store import distributed as cluster  # noqa: E402

NOW = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)
SOURCES = [f"s{n}" for n in range(1, 8)]


def _poll(batch_id: int, items: int) -> cluster.PendingPoll:
    return cluster.PendingPoll(batch_id, f"s{batch_id}", NOW, {}, [object()] * items)  # type: ignore[list-item]


def test_quiet_polls_run_together_in_order_and_a_poll_with_items_runs_alone() -> None:
    polls = [_poll(1, 0), _poll(2, 0), _poll(3, 2), _poll(4, 0), _poll(5, 0), _poll(6, 0), _poll(7, 1)]
    runs = [[p.batch_id for p in run] for run in quiet_runs(polls, most=2)]
    assert runs == [[1, 2], [3], [4, 5], [6], [7]]
    assert [b for run in runs for b in run] == [1, 2, 3, 4, 5, 6, 7]  # nothing lost, order kept


def _config(url: str) -> str:
    sources = "".join(f"  - id: {s}\n    name: Outlet {s}\n    url: http://127.0.0.1:9/{s}.xml\n" for s in SOURCES)
    return f"store:\n  url: {url}\nslack:\n  ops_channel: '#ops'\nsources:\n{sources}"


@pytest.fixture
def cluster_store(pg_url: str) -> Iterator[Store]:
    store = Store.open(pg_url)
    store.upgrade()
    with store.transaction() as conn:
        cluster.publish_config(conn, _config(pg_url), NOW)
        cluster.sync_schedule(conn, [cluster.Scheduled(s, "127.0.0.1", timedelta(minutes=30)) for s in SOURCES], NOW)
    yield store
    store.close()


def _polled(store: Store, failing: str) -> None:
    """Every source claimed and polled once, nothing new; `failing` has failed for hours."""
    with store.transaction() as conn:
        batches = cluster.claim_due(conn, NOW, per_batch=50, ttl=timedelta(minutes=5))
    (batch,) = batches
    for source_id in batch.source_ids:
        health = SourceHealth(source_id, last_ok=NOW, last_attempt=NOW)
        if source_id == failing:
            health = SourceHealth(
                source_id, last_ok=NOW - timedelta(hours=6), last_attempt=NOW, consecutive_failures=9,
                last_error_kind=ErrorKind.TIMEOUT, last_error="timed out",
            )
        with store.transaction() as conn:
            cluster.commit_poll(
                conn, source_id=source_id, token=batch.token, shard=0, polled_at=NOW,
                report={"outcome": "failed" if source_id == failing else "unchanged"}, items=[],
                health=health, next_check_at=NOW + timedelta(minutes=30),
            )


def _waiting(store: Store) -> int:
    with store.connect() as conn:
        return cluster.intake_lag(conn, NOW)[0]


def test_a_drain_of_quiet_polls_marks_every_one_done_and_queues_the_health_alert(cluster_store: Store) -> None:
    _polled(cluster_store, failing="s3")
    owner = AnalysisOwner(cluster_store, clock=lambda: NOW)
    owner.take_office()
    reports = asyncio.run(owner.drain())
    assert [r.source_id for r in reports] == SOURCES  # in the order they were committed
    assert [r.outcome for r in reports] == ["unchanged", "unchanged", "failed", "unchanged", "unchanged", "unchanged", "unchanged"]
    assert [r.alerts for r in reports] == [0, 0, 1, 0, 0, 0, 0]  # s3's "source failing" for #ops
    assert _waiting(cluster_store) == 0
    with cluster_store.connect() as conn:
        (queued,) = outbox.due(conn, NOW + timedelta(minutes=1))
    assert queued.channel == "#ops" and "s3" in repr(queued)


def test_an_owner_fenced_off_commits_none_of_a_quiet_run(cluster_store: Store) -> None:
    _polled(cluster_store, failing="s3")
    owner = AnalysisOwner(cluster_store, clock=lambda: NOW)
    owner.take_office()
    with cluster_store.transaction() as conn:  # a successor takes the role: a higher epoch
        cluster.take_role(conn, ROLE, "successor:1", NOW)
    with pytest.raises(cluster.Fenced):
        asyncio.run(owner.drain())
    assert _waiting(cluster_store) == len(SOURCES)  # every poll still waits for the successor
    with cluster_store.connect() as conn:
        assert outbox.due(conn, NOW + timedelta(minutes=1)) == []


def test_the_owner_hears_a_workers_commit(cluster_store: Store) -> None:
    listener = cluster.IntakeListener(cluster_store.engine)
    try:
        assert listener.wait(0.05) is False  # listening now; nothing committed yet
        with cluster_store.transaction() as conn:
            cluster.notify_intake(conn)
        assert listener.wait(10) is True  # woken by the commit, not by the timeout
    finally:
        listener.close()


def test_without_notifications_the_owner_only_looks_later(caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    listener = cluster.IntakeListener(engine)
    assert listener.wait(0.01) is False  # no exception: the owner polls on its timer instead
    assert "intake notifications unavailable" in caplog.text
    engine.dispose()
