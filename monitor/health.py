"""Source health: what the last fetch taught us, and when to try the source again.

Pure functions: the clock and the random generator come in as arguments, so tests can pin
both. A failing source backs off exponentially with full jitter: a uniform draw between
its normal interval (a failing source is never polled more often than a healthy one) and
interval * 2**failures, capped at `backoff_max`; never sooner than the server's Retry-After.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.models import ErrorKind, FetchResult, SourceHealth


def backoff_delay(
    failures: int, interval: timedelta, backoff_max: timedelta, rng: random.Random
) -> timedelta:
    """Delay before retry number `failures` (1 = first failure): full jitter, capped."""
    ceiling = min(backoff_max, interval * (2 ** min(failures, 32)))
    floor = min(interval, ceiling)
    return floor + (ceiling - floor) * rng.random()


def record_fetch(
    health: SourceHealth,
    result: FetchResult,
    interval: timedelta,
    now: datetime,
    *,
    backoff_max: timedelta,
    rng: random.Random,
) -> SourceHealth:
    """The health after `result`; validators and body hash are kept only from successes."""
    if result.ok:
        return replace(
            health,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=result.body_hash or health.body_hash,
            last_status=result.status,
            last_ok=now,
            last_attempt=now,
            consecutive_failures=0,
            last_error_kind=None,
            last_error="",
            next_due=now + interval,
        )
    failures = health.consecutive_failures + 1
    due = now + backoff_delay(failures, interval, backoff_max, rng)
    if result.retry_after is not None:
        due = max(due, now + timedelta(seconds=result.retry_after))
    return replace(
        health,
        last_status=result.status,
        last_attempt=now,
        consecutive_failures=failures,
        last_error_kind=result.error_kind,
        last_error=result.error or "",
        next_due=due,
    )


def record_parse_failure(
    health: SourceHealth,
    error: str,
    interval: timedelta,
    now: datetime,
    *,
    backoff_max: timedelta,
    rng: random.Random,
) -> SourceHealth:
    """Use instead of `record_fetch` when the body arrived but nothing could be read from it.

    Pass the health from *before* this poll: a `record_fetch` of the same (successful)
    response has already reset `consecutive_failures`, and the count would never grow.

    Counts as a failure of kind PARSE. Validators and body hash are forgotten, so the next
    poll downloads and parses the body again instead of calling the broken body "unchanged".
    """
    failures = health.consecutive_failures + 1
    return replace(
        health,
        etag=None,
        last_modified=None,
        body_hash=None,
        last_attempt=now,
        consecutive_failures=failures,
        last_error_kind=ErrorKind.PARSE,
        last_error=error,
        next_due=now + backoff_delay(failures, interval, backoff_max, rng),
    )
