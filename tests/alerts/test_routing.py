"""Routes, quiet hours (over midnight, across DST) and silence matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.routing import (
    ActiveSilence,
    in_quiet_hours,
    matching_silence,
    quiet_hours_end,
    routes_for,
)
from monitor.config.settings import QuietHours, Route


def route(start: str, end: str, timezone: str = "Europe/Berlin") -> Route:
    return Route(topic="t", channel="#t", quiet_hours=QuietHours(start=start, end=end, timezone=timezone))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_routes_for_keeps_only_the_topic_in_config_order() -> None:
    routes = [Route(topic="a", channel="#1"), Route(topic="b", channel="#2"), Route(topic="a", channel="#3")]
    assert [r.channel for r in routes_for("a", routes)] == ["#1", "#3"]
    assert routes_for("c", routes) == []


def test_no_quiet_hours_means_never_quiet() -> None:
    plain = Route(topic="t", channel="#t")
    assert not in_quiet_hours(plain, utc(2026, 1, 1, 3, 0))
    assert quiet_hours_end(plain, utc(2026, 1, 1, 3, 0)) == utc(2026, 1, 1, 3, 0)


@pytest.mark.parametrize(
    ("now", "quiet", "end"),
    [
        # Winter, Berlin is UTC+1: quiet 22:00–06:00 local = 21:00–05:00 UTC.
        (utc(2026, 1, 14, 20, 59), False, None),
        (utc(2026, 1, 14, 21, 0), True, utc(2026, 1, 15, 5, 0)),  # 22:00 local, the evening side
        (utc(2026, 1, 14, 23, 30), True, utc(2026, 1, 15, 5, 0)),  # 00:30 local, after midnight
        (utc(2026, 1, 15, 4, 59), True, utc(2026, 1, 15, 5, 0)),
        (utc(2026, 1, 15, 5, 0), False, None),  # end is exclusive
    ],
)
def test_quiet_hours_over_midnight(now: datetime, quiet: bool, end: datetime | None) -> None:
    r = route("22:00", "06:00")
    assert in_quiet_hours(r, now) is quiet
    assert quiet_hours_end(r, now) == (end if quiet else now)


def test_quiet_hours_end_on_the_night_clocks_go_forward() -> None:
    # 29 March 2026, Berlin: 02:00 CET jumps to 03:00 CEST. The night began at UTC+1 and
    # ends at 06:00 UTC+2, which is 04:00 UTC, not 05:00.
    r = route("22:00", "06:00")
    assert quiet_hours_end(r, utc(2026, 3, 28, 23, 0)) == utc(2026, 3, 29, 4, 0)


def test_quiet_hours_end_on_the_night_clocks_go_back() -> None:
    # 25 October 2026, Berlin: 03:00 CEST falls back to 02:00 CET; 06:00 is then UTC+1.
    r = route("22:00", "06:00")
    assert quiet_hours_end(r, utc(2026, 10, 24, 21, 0)) == utc(2026, 10, 25, 5, 0)


def test_quiet_hours_end_inside_the_skipped_hour_lands_after_the_gap() -> None:
    # An end of 02:30 does not exist on the spring-forward night; quiet ends when the clock
    # reads 03:30 CEST (01:30 UTC), never before the night is over.
    r = route("23:00", "02:30")
    end = quiet_hours_end(r, utc(2026, 3, 28, 23, 0))
    assert end == utc(2026, 3, 29, 1, 30)
    assert not in_quiet_hours(r, end)


def test_same_day_quiet_hours_in_another_timezone() -> None:
    r = route("12:00", "13:30", "America/New_York")
    now = utc(2026, 7, 1, 16, 15)  # 12:15 EDT
    assert in_quiet_hours(r, now)
    assert quiet_hours_end(r, now) == utc(2026, 7, 1, 17, 30)
    assert not in_quiet_hours(r, utc(2026, 7, 1, 15, 59))


def test_equal_start_and_end_is_no_quiet_time() -> None:
    assert not in_quiet_hours(route("08:00", "08:00"), utc(2026, 7, 1, 6, 0))


def silence(matcher: str, value: str, sid: int = 1) -> ActiveSilence:
    return ActiveSilence(id=sid, matcher=matcher, value=value, reason="r", expires=utc(2030, 1, 1) + timedelta(0))


def test_matching_silence_each_matcher() -> None:
    kw = {"topic": "ec", "development_id": 5, "source_ids": ["bis"], "headline": "BIS adds 12 entities"}
    assert matching_silence([silence("topic", "ec")], **kw) is not None
    assert matching_silence([silence("topic", "other")], **kw) is None
    assert matching_silence([silence("development", "5")], **kw) is not None
    assert matching_silence([silence("source", "bis")], **kw) is not None
    assert matching_silence([silence("match", "bis ADDS")], **kw) is not None
    assert matching_silence([silence("match", "tariff")], **kw) is None
    assert matching_silence([], **kw) is None


def test_matching_silence_returns_the_first_that_matches() -> None:
    found = matching_silence(
        [silence("topic", "x", 1), silence("match", "entities", 2), silence("topic", "ec", 3)],
        topic="ec", development_id=None, source_ids=[], headline="BIS adds 12 entities",
    )
    assert found is not None and found.id == 2
