"""`monitor status` and `monitor sources list` call a source failing by the same rule as the
source-health alert: a failed poll or two is a retry, not an outage."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from monitor.config.settings import Settings
from monitor.models import ErrorKind, SourceHealth
from monitor.ops.status import print_sources
from monitor.store import Store, sources

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SETTINGS = Settings.model_validate(
    {
        "defaults": {"interval": "15m"},
        "sources": [
            {"id": "steady", "name": "Steady", "url": "https://steady.example/feed"},
            {"id": "blip", "name": "Blip", "url": "https://blip.example/feed"},
            {"id": "down", "name": "Down", "url": "https://down.example/feed"},
        ],
    }
)


def _health(source_id: str, failures: int) -> SourceHealth:
    return SourceHealth(
        source_id, last_ok=NOW - timedelta(minutes=20), consecutive_failures=failures,
        last_error_kind=ErrorKind.CONNECT if failures else None, last_error="refused" if failures else "",
    )


def test_failing_means_what_the_health_alert_means(store: Store) -> None:
    with store.transaction() as conn:
        for source_id, failures in (("steady", 0), ("blip", 1), ("down", SETTINGS.health.failures_before_alert)):
            sources.save_health(conn, _health(source_id, failures))
    out = io.StringIO()
    print_sources(SETTINGS, store, NOW, out=out)
    states = {line.split()[0]: line.split()[-1] for line in out.getvalue().splitlines()}
    assert states == {"steady": "ok", "blip": "retrying", "down": "FAILING"}
