"""Where an alert goes and whether it may go now: routes, quiet hours, silences.

Pure functions over settings and plain values; the clock is passed in. Quiet hours are wall
clock times in the route's timezone, so "22:00–06:00 Europe/Berlin" keeps meaning the same
local night across DST changes: the arithmetic is done on local dates, then converted to UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.config.settings import QuietHours, Route
from monitor.models import ActiveSilence


def routes_for(topic_id: str, routes: Sequence[Route]) -> list[Route]:
    """The routes configured for a topic, in configuration order."""
    return [route for route in routes if route.topic == topic_id]


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _local_span(quiet: QuietHours) -> tuple[time, time]:
    return _clock(quiet.start), _clock(quiet.end)


def in_quiet_hours(route: Route, now: datetime) -> bool:
    """Whether `now` falls inside the route's quiet hours (start inclusive, end exclusive).

    A span whose end is before its start runs over midnight (22:00–06:00). A span with equal
    start and end is empty: "always quiet" would mean "never alert", which a silence says
    more honestly.
    """
    quiet = route.quiet_hours
    if quiet is None:
        return False
    start, end = _local_span(quiet)
    local = now.astimezone(ZoneInfo(quiet.timezone)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    if start > end:
        return local >= start or local < end
    return False


def _at_local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """`day` at `clock` in `zone`, as UTC. A wall time skipped by DST resolves to the later
    side of the gap (02:30 on a spring-forward night means 03:30 local)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def quiet_hours_end(route: Route, now: datetime) -> datetime:
    """When the quiet hours that contain `now` end, in UTC; `now` itself outside quiet hours."""
    if route.quiet_hours is None or not in_quiet_hours(route, now):
        return now
    zone = ZoneInfo(route.quiet_hours.timezone)
    end = _clock(route.quiet_hours.end)
    today = now.astimezone(zone).date()
    # The end is the first local `end` o'clock after now: today's, or tomorrow's when the span
    # started this evening and runs over midnight.
    for offset in (0, 1, 2):
        candidate = _at_local(today + timedelta(days=offset), end, zone)
        if candidate > now:
            return candidate
    return now  # unreachable: a local time recurs within two days


def matching_silence(
    silences: Iterable[ActiveSilence],
    *,
    topic: str,
    development_id: int | None,
    source_ids: Sequence[str],
    headline: str,
) -> ActiveSilence | None:
    """The first silence that matches an alert, or None.

    - topic: the development's topic id equals the value;
    - development: the development id equals the value;
    - source: every source behind the alert (the sources whose articles triggered it) is
      silenced, so one noisy source cannot hide a story others also report;
    - match: the value appears in the headline, ignoring case.
    """
    candidates = list(silences)
    folded = headline.casefold()
    for silence in candidates:
        if silence.matcher == "topic" and silence.value == topic:
            return silence
        if silence.matcher == "development" and development_id is not None and silence.value.strip() == str(development_id):
            return silence
        if silence.matcher == "match" and silence.value and silence.value.casefold() in folded:
            return silence
    return _source_silence(candidates, source_ids)


def _source_silence(silences: Sequence[ActiveSilence], source_ids: Sequence[str]) -> ActiveSilence | None:
    by_source = {s.value: s for s in silences if s.matcher == "source"}
    if not source_ids or not by_source:
        return None
    if all(source in by_source for source in source_ids):
        return by_source[source_ids[0]]
    return None
