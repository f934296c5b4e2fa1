"""Source-health alerts: one FAILING notice per failure episode, one RECOVERED when it ends.

`health_transitions` is pure: it compares a source's health with whether an alert is
already outstanding (`source_state.health_alerted`) and returns an event only on a change.
The caller writes the alert row and flips `health_alerted` in one transaction; the dedup
key names the episode (the last success before it), so even a retried cycle cannot queue a
second notice for the same episode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.config.settings import Health
from monitor.ingest.health import failing_reason
from monitor.models import Alert, AlertKind, HealthPayload, SourceHealth


class HealthChange(enum.StrEnum):
    FAILING = "failing"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A change in a source's health worth telling the ops channel about, and why."""

    change: HealthChange
    source_id: str
    reason: str  # "5 consecutive failures (timeout: read timed out after 20s)"
    episode: str  # stable name of the failure episode: last success before it, or "never"
    at: datetime | None = None  # when the change was noticed

    @property
    def failing(self) -> bool:
        """True for FAILING (the caller sets `health_alerted`), False for RECOVERED."""
        return self.change is HealthChange.FAILING

    def alert(self, channel: str) -> Alert:
        """The ops-channel outbox row for this event (see `health_alert`)."""
        return health_alert(self, channel=channel, now=self.at)


def _episode(health: SourceHealth) -> str:
    return health.last_ok.astimezone(UTC).isoformat() if health.last_ok else "never"


def health_transitions(
    health: SourceHealth,
    *,
    alerted: bool,
    expected_interval: timedelta,
    now: datetime,
    settings: Health,
) -> HealthEvent | None:
    """FAILING once when a source crosses the failure or silence limit, RECOVERED once when
    a source with an outstanding alert works again; None otherwise (every other cycle)."""
    reason = failing_reason(health, expected_interval=expected_interval, now=now, settings=settings)
    if reason is not None and not alerted:
        return HealthEvent(HealthChange.FAILING, health.source_id, reason, _episode(health), now)
    if reason is None and alerted and health.consecutive_failures == 0 and health.last_ok is not None:
        why = f"working again: last successful fetch {health.last_ok.astimezone(UTC):%Y-%m-%d %H:%M UTC}"
        return HealthEvent(HealthChange.RECOVERED, health.source_id, why, _episode(health), now)
    return None


def health_alert(event: HealthEvent, *, channel: str, now: datetime | None) -> Alert:
    """The ops-channel outbox row for a health event.

    Dedup keys: `health:<source>:<last success before the episode>` for FAILING and
    `recovery:<source>:<first success after it>` for RECOVERED — one of each per episode.
    """
    failing = event.change is HealthChange.FAILING
    prefix = "health" if failing else "recovery"
    return Alert(
        kind=AlertKind.HEALTH if failing else AlertKind.RECOVERY,
        channel=channel,
        dedup_key=f"{prefix}:{event.source_id}:{event.episode}",
        payload=HealthPayload(
            reason=event.reason,
            source_id=event.source_id,
            change=event.change.value,
            text=f"Source {event.source_id} is {'failing' if failing else 'back'}: {event.reason}",
        ),
        created=now,
    )
