"""Source-health alerts: one when a source starts failing, none while it stays down, one
recovery when it works again — driven cycle by cycle as the scheduler would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.health_alerts import HealthChange, health_alert, health_transitions
from monitor.config.settings import Health
from monitor.models import AlertKind, ErrorKind, SourceHealth

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=15)
SETTINGS = Health(failures_before_alert=3, silent_factor=10)


def cycle(health: SourceHealth, ok: bool, now: datetime) -> SourceHealth:
    """What the fetch stage records after one poll."""
    if ok:
        return replace(health, last_ok=now, last_attempt=now, consecutive_failures=0, last_error_kind=None, last_error="")
    return replace(
        health,
        last_attempt=now,
        consecutive_failures=health.consecutive_failures + 1,
        last_error_kind=ErrorKind.TIMEOUT,
        last_error="read timed out after 20s",
    )


def simulate(outcomes: list[bool]) -> list:
    """Run the cycles, keeping `health_alerted` as the store would, and collect the alerts."""
    health = SourceHealth("bis-press", last_ok=START)
    alerted = False
    alerts = []
    for n, ok in enumerate(outcomes, start=1):
        now = START + n * INTERVAL
        health = cycle(health, ok, now)
        event = health_transitions(health, alerted=alerted, expected_interval=INTERVAL, now=now, settings=SETTINGS)
        if event is not None:
            alerted = event.failing
            alerts.append(event.alert("#ops"))
    return alerts


def test_one_alert_after_n_failures_none_while_failing_one_recovery() -> None:
    alerts = simulate([False] * 10 + [True] * 5)

    assert [a.kind for a in alerts] == [AlertKind.HEALTH, AlertKind.RECOVERY]
    failing, recovery = alerts
    assert failing.channel == recovery.channel == "#ops"
    assert "3 consecutive failures (timeout: read timed out after 20s)" in str(failing.payload.reason)
    assert failing.dedup_key == f"health:bis-press:{START.isoformat()}"
    assert recovery.dedup_key == f"recovery:bis-press:{(START + 11 * INTERVAL).isoformat()}"


def test_failures_below_the_limit_alert_nobody() -> None:
    assert simulate([False, False, True, False, False, True]) == []


def test_two_separate_episodes_get_distinct_keys() -> None:
    alerts = simulate([False] * 3 + [True] + [False] * 4 + [True])

    assert [a.kind for a in alerts] == [AlertKind.HEALTH, AlertKind.RECOVERY, AlertKind.HEALTH, AlertKind.RECOVERY]
    assert len({a.dedup_key for a in alerts}) == 4


def test_the_same_cycle_evaluated_twice_names_the_same_episode() -> None:
    # A retried cycle (crash before health_alerted was saved) must produce the same key, so
    # the outbox's unique key drops the second row.
    health = SourceHealth("s", last_ok=START, consecutive_failures=4, last_error_kind=ErrorKind.DNS)
    now = START + 4 * INTERVAL
    first = health_transitions(health, alerted=False, expected_interval=INTERVAL, now=now, settings=SETTINGS)
    second = health_transitions(health, alerted=False, expected_interval=INTERVAL, now=now + INTERVAL, settings=SETTINGS)
    assert first is not None and second is not None
    assert health_alert(first, channel="#ops", now=now).dedup_key == health_alert(second, channel="#ops", now=now).dedup_key


def test_a_source_silent_far_beyond_its_cadence_is_reported_once() -> None:
    health = SourceHealth("quiet-feed", last_ok=START)
    just_under = START + 10 * INTERVAL
    beyond = START + 10 * INTERVAL + timedelta(minutes=1)

    assert health_transitions(health, alerted=False, expected_interval=INTERVAL, now=just_under, settings=SETTINGS) is None
    event = health_transitions(health, alerted=False, expected_interval=INTERVAL, now=beyond, settings=SETTINGS)
    assert event is not None and event.change is HealthChange.FAILING
    assert event.reason.startswith("silent for 2.5 h (no successful fetch; usual cadence 15 min")
    assert health_transitions(health, alerted=True, expected_interval=INTERVAL, now=beyond + INTERVAL, settings=SETTINGS) is None


def test_an_alerted_source_that_is_still_failing_does_not_recover() -> None:
    health = SourceHealth("s", last_ok=START, consecutive_failures=1)
    assert health_transitions(health, alerted=True, expected_interval=INTERVAL, now=START + INTERVAL, settings=SETTINGS) is None


def test_a_source_that_never_worked_names_its_episode_never() -> None:
    health = SourceHealth("new", consecutive_failures=3, last_error_kind=ErrorKind.HTTP_STATUS, last_error="HTTP 404")
    event = health_transitions(health, alerted=False, expected_interval=INTERVAL, now=START, settings=SETTINGS)
    assert event is not None
    assert health_alert(event, channel="#ops", now=START).dedup_key == "health:new:never"
