"""A fetch worker's commits: polls of a batch that finish together share a transaction, yet each
is written whole or not at all — a lost claim writes nothing and a poll the store refuses
fails alone, while the others of its group are committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("psycopg")

from monitor.models import SourceHealth  # noqa: E402
from monitor.run.pipeline import Gathered  # noqa: E402
from monitor.run.worker import GroupCommit, PolledSource  # noqa: E402
from monitor.store import Store, sources  # noqa: E402
from monitor.store import distributed as cluster  # noqa: E402

NOW = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)
SOURCES = ["a", "b", "c", "d"]


@pytest.fixture
def claimed(pg_url: str) -> Iterator[tuple[Store, str]]:
    """Four sources, claimed by one batch; the store and the batch's token."""
    store = Store.open(pg_url)
    store.upgrade()
    with store.transaction() as conn:
        cluster.sync_schedule(conn, [cluster.Scheduled(s, f"{s}.example", timedelta(minutes=30)) for s in SOURCES], NOW)
    with store.transaction() as conn:
        (batch,) = cluster.claim_due(conn, NOW, per_batch=50, ttl=timedelta(minutes=5))
    yield store, batch.token
    store.close()


def _poll(source_id: str, token: str, *, error: str = "") -> PolledSource:
    health = SourceHealth(source_id, etag=f'"{source_id}-1"', last_ok=NOW, last_attempt=NOW)
    gathered = Gathered(source_id, health, "unchanged", error=error)
    return PolledSource(source_id, token, NOW, gathered, [], NOW + timedelta(minutes=30))


def _state(store: Store) -> tuple[dict[str, str | None], list[str], dict[str, str | None]]:
    with store.connect() as conn:
        claims = cluster.claims(conn, SOURCES)
        polls = [p.source_id for p in cluster.pending_polls(conn, 0)]
        etags = {s: h.etag for s, h in sources.get_healths(conn, SOURCES).items()}
    return claims, polls, etags


async def _commit_all(store: Store, polls: list[PolledSource]) -> list[bool | BaseException]:
    commits = GroupCommit(store)
    results = await asyncio.gather(*(commits.commit(p) for p in polls), return_exceptions=True)
    await commits.finished()
    return results


def test_polls_that_finish_together_commit_together_and_a_lost_claim_writes_nothing(claimed: tuple[Store, str]) -> None:
    store, token = claimed
    polls = [_poll("a", token), _poll("b", "someone-elses-token"), _poll("c", token), _poll("d", token)]
    results = asyncio.run(_commit_all(store, polls))
    assert results == [True, False, True, True]
    claims, waiting, etags = _state(store)
    assert waiting == ["a", "c", "d"]  # b's poll is not in the intake
    assert claims == {"a": None, "b": token, "c": None, "d": None}  # b's claim is untouched
    assert etags["a"] == '"a-1"' and etags["b"] is None


def test_a_poll_the_store_refuses_fails_alone(claimed: tuple[Store, str]) -> None:
    store, token = claimed
    # NaN is not JSON: PostgreSQL refuses the report, and with it the whole group's transaction.
    bad = _poll("c", token)
    setattr(bad.gathered, "items", float("nan"))  # noqa: B010 - a value the type does not allow
    results = asyncio.run(_commit_all(store, [_poll("a", token), _poll("b", token), bad, _poll("d", token)]))
    assert results[:2] == [True, True] and results[3] is True
    assert isinstance(results[2], Exception)
    claims, waiting, _ = _state(store)
    assert waiting == ["a", "b", "d"]
    assert claims["c"] == token  # still claimed: the sweeper dispatches it again when it expires
