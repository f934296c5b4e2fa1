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

from monitor.config.settings import Health
from monitor.models import ErrorKind, FetchResult, SourceHealth


def backoff_delay(
    failures: int, interval: timedelta, backoff_max: timedelta, rng: random.Random
) -> timedelta:
    """Delay before retry number `failures` (1 = first failure): full jitter, capped."""
    # In seconds: a long interval times 2**32 is past what a timedelta can hold.
    ceiling = min(backoff_max.total_seconds(), interval.total_seconds() * 2.0 ** min(failures, 32))
    floor = min(interval.total_seconds(), ceiling)
    return timedelta(seconds=floor + (ceiling - floor) * rng.random())


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
        # Never sooner than the server asked, never later than backoff_max: a Retry-After of
        # year 9999 must not silence a source for good.
        wait = min(result.retry_after, backoff_max.total_seconds())
        due = max(due, now + timedelta(seconds=wait))
    return replace(
        health,
        last_status=result.status,
        last_attempt=now,
        consecutive_failures=failures,
        last_error_kind=result.error_kind,
        last_error=_bounded(result.error or ""),
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
        last_error=_bounded(error),
        next_due=now + backoff_delay(failures, interval, backoff_max, rng),
    )


MAX_ERROR_CHARS = 500  # what is stored: enough for a sentence or two, never a server's bytes


def bounded_error(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error as it is stored and printed: one line, at most `limit` characters (rows
    written before this bound existed are cut when shown, too)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_bounded = bounded_error


def failing_reason(health: SourceHealth, *, expected_interval: timedelta, now: datetime, settings: Health) -> str | None:
    """Why the source counts as failing now, or None when it does not: the one rule for
    source-health alerts, `monitor status` and `monitor sources list`.

    Failing means `health.failures_before_alert` failed polls in a row, or no successful
    fetch for `health.silent_factor` times its usual cadence. Fewer failures are retries.
    """
    if health.consecutive_failures >= settings.failures_before_alert:
        kind = health.last_error_kind.value if health.last_error_kind else "error"
        detail = f" ({kind}: {health.last_error})" if health.last_error else f" ({kind})"
        return f"{health.consecutive_failures} consecutive failures{detail}"
    if health.last_ok is not None and expected_interval > timedelta(0):
        silent = now - health.last_ok
        if silent > expected_interval * settings.silent_factor:
            return (
                f"silent for {_hours(silent)} (no successful fetch; usual cadence {_hours(expected_interval)}, "
                f"alert after {settings.silent_factor:g}×)"
            )
    return None


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"
