"""Source health after successes, failures, Retry-After and parse failures."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.ingest.health import backoff_delay, record_fetch, record_parse_failure
from monitor.models import ErrorKind, FetchResult, SourceHealth

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=10)
CAP = timedelta(hours=6)


def ok(**kw: object) -> FetchResult:
    base: dict[str, object] = {
        "status": 200,
        "body": b"<rss/>",
        "etag": '"a"',
        "last_modified": "x",
        "body_hash": "h1",
    }
    return FetchResult("s", "http://f/", "http://f/", NOW, **(base | kw))  # type: ignore[arg-type]


def failed(kind: ErrorKind = ErrorKind.TIMEOUT, retry_after: float | None = None) -> FetchResult:
    return FetchResult(
        "s",
        "http://f/",
        "http://f/",
        NOW,
        error_kind=kind,
        error="it broke",
        retry_after=retry_after,
    )


def fail_n_times(n: int, seed: int = 0) -> SourceHealth:
    health, rng = SourceHealth("s"), random.Random(seed)
    for _ in range(n):
        health = record_fetch(health, failed(), INTERVAL, NOW, backoff_max=CAP, rng=rng)
    return health


def test_success_stores_validators_and_schedules_the_next_poll() -> None:
    health = record_fetch(
        fail_n_times(3), ok(), INTERVAL, NOW, backoff_max=CAP, rng=random.Random(0)
    )
    assert (health.etag, health.last_modified, health.body_hash) == ('"a"', "x", "h1")
    assert health.last_ok == NOW and health.consecutive_failures == 0
    assert health.last_error_kind is None and health.last_error == ""
    assert health.next_due == NOW + INTERVAL


def test_not_modified_keeps_the_known_body_hash() -> None:
    health = SourceHealth("s", body_hash="h0")
    result = ok(body=None, not_modified=True, status=304, body_hash=None)
    assert (
        record_fetch(health, result, INTERVAL, NOW, backoff_max=CAP, rng=random.Random(0)).body_hash
        == "h0"
    )


def test_failures_count_up_and_keep_the_last_good_state() -> None:
    good = record_fetch(
        SourceHealth("s"), ok(), INTERVAL, NOW, backoff_max=CAP, rng=random.Random(0)
    )
    later = NOW + timedelta(hours=1)
    health = record_fetch(
        good, failed(ErrorKind.DNS), INTERVAL, later, backoff_max=CAP, rng=random.Random(0)
    )
    assert health.consecutive_failures == 1
    assert health.last_error_kind is ErrorKind.DNS and health.last_error == "it broke"
    assert health.last_ok == NOW and health.etag == '"a"'  # validators survive a failure
    assert health.last_attempt == later


def test_backoff_grows_with_jitter_and_stops_at_the_cap() -> None:
    delays = [fail_n_times(n).next_due - NOW for n in range(1, 15)]  # type: ignore[operator]
    assert all(INTERVAL <= d <= CAP for d in delays)
    assert delays[-1] > timedelta(hours=2)  # many failures back off far
    assert max(fail_n_times(40, seed).next_due - NOW for seed in range(20)) <= CAP  # type: ignore[operator]
    # Full jitter: sources failing together do not all come back at the same moment.
    assert len({fail_n_times(6, seed).next_due for seed in range(10)}) == 10


def test_backoff_delay_bounds() -> None:
    rng = random.Random(3)
    for failures in (1, 2, 5):
        delay = backoff_delay(failures, INTERVAL, CAP, rng)
        assert INTERVAL <= delay <= min(CAP, INTERVAL * 2**failures)


def test_retry_after_wins_over_a_shorter_backoff() -> None:
    result = failed(ErrorKind.HTTP_STATUS, retry_after=3 * 3600)
    health = record_fetch(
        SourceHealth("s"), result, INTERVAL, NOW, backoff_max=CAP, rng=random.Random(0)
    )
    assert health.next_due == NOW + timedelta(hours=3)


def test_parse_failure_is_recorded_and_forgets_validators() -> None:
    good = record_fetch(
        SourceHealth("s"), ok(), INTERVAL, NOW, backoff_max=CAP, rng=random.Random(0)
    )
    health = record_parse_failure(
        good, "not a feed: HTML page", INTERVAL, NOW, backoff_max=CAP, rng=random.Random(0)
    )
    assert (
        health.last_error_kind is ErrorKind.PARSE and health.last_error == "not a feed: HTML page"
    )
    assert health.consecutive_failures == 1
    assert (health.etag, health.last_modified, health.body_hash) == (None, None, None)
    assert health.next_due is not None and health.next_due >= NOW + INTERVAL
