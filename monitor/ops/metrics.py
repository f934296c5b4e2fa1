"""Prometheus metrics of the monitor, in a registry of our own.

A module-level `REGISTRY` (not prometheus-client's global default) holds every metric, so
tests read exactly what `/metrics` serves and nothing a library registered on import. The
pipeline, scheduler and relay call the small `observe_*` / `set_*` functions below; none of
them raises: a metric must never stop a poll.

Label cardinality is bounded on purpose: `source` is a configured source id (a few thousand
at most), `outcome` and `state` are small enums, `channel` is a configured channel. The
latency histogram has no `source` label (buckets × sources would be the largest series count
by far); its per-source view is `monitor_source_last_success_timestamp_seconds` and the
fetch counter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

# `*_created` series double the series count and no dashboard of ours reads them.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Feeds answer in 50 ms to tens of seconds; the last bucket is near the default deadline.
_FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0)

FETCHES = Counter(
    "monitor_fetches",
    "Feed and page fetches by source and outcome (new, unchanged, failed, skipped).",
    ["source", "outcome"],
    registry=REGISTRY,
)
FETCH_SECONDS = Histogram(
    "monitor_fetch_duration_seconds",
    "Time one fetch took, from request to last byte (or failure), by outcome.",
    ["outcome"],
    buckets=_FETCH_BUCKETS,
    registry=REGISTRY,
)
ITEMS_PARSED = Counter(
    "monitor_items_parsed",
    "Items read from feeds and pages, before relevance and dedup.",
    ["source"],
    registry=REGISTRY,
)
ARTICLES_STORED = Counter(
    "monitor_articles_stored",
    "New relevant articles stored (after dedup).",
    ["source"],
    registry=REGISTRY,
)
DEVELOPMENTS = Gauge(
    "monitor_developments",
    "Developments in the store by state (single_source, corroborated, closed, merged).",
    ["state"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "monitor_alerts",
    "Delivery attempts by result (sent, retry, failed, silenced) and channel.",
    ["state", "channel"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "monitor_outbox_depth",
    "Alerts waiting in the outbox to be delivered (pending or retrying).",
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "monitor_source_last_success_timestamp_seconds",
    "Unix time of the last successful fetch of each source.",
    ["source"],
    registry=REGISTRY,
)
RELOADS = Counter(
    "monitor_config_reloads",
    "Configuration reloads (SIGHUP or a changed file) by result (ok, error).",
    ["result"],
    registry=REGISTRY,
)

# The names as they appear on /metrics (counters get `_total`); the README lists each one and
# tests/test_docs_complete.py keeps the two in step.
# The distributed mode's backlog (set by the leader every second).
BACKLOG = Gauge(
    "monitor_backlog",
    "Distributed mode: oldest_due_seconds (the longest a due source waits to be claimed), intake_waiting (polls waiting for analysis), intake_lag_seconds (age of the oldest), claims (sources being polled now).",
    ["measure"],
    registry=REGISTRY,
)
BACKLOG_MEASURES = ("oldest_due_seconds", "intake_waiting", "intake_lag_seconds", "claims")
for _measure in BACKLOG_MEASURES:
    BACKLOG.labels(_measure)  # exposed (at 0) from the start, as the other gauges are

METRIC_NAMES: tuple[str, ...] = (
    "monitor_fetches_total",
    "monitor_fetch_duration_seconds",
    "monitor_items_parsed_total",
    "monitor_articles_stored_total",
    "monitor_developments",
    "monitor_alerts_total",
    "monitor_outbox_depth",
    "monitor_source_last_success_timestamp_seconds",
    "monitor_config_reloads_total",
    "monitor_backlog",
)


class PollReportLike(Protocol):
    """What `observe_poll` reads from `monitor.run.pipeline.PollReport`."""

    @property
    def source_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def items(self) -> int: ...
    @property
    def new_articles(self) -> int: ...


def observe_fetch(source_id: str, outcome: str, seconds: float) -> None:
    """One fetch of `source_id` ended with `outcome` after `seconds`."""
    try:
        FETCHES.labels(source=source_id, outcome=outcome).inc()
        FETCH_SECONDS.labels(outcome=outcome).observe(max(0.0, float(seconds)))
    except Exception:  # a metric must never stop a poll
        log.exception("metrics: observe_fetch failed")


def observe_poll(report: PollReportLike) -> None:
    """Count what one poll parsed and stored (the fetch itself is `observe_fetch`)."""
    try:
        if report.items:
            ITEMS_PARSED.labels(source=report.source_id).inc(report.items)
        if report.new_articles:
            ARTICLES_STORED.labels(source=report.source_id).inc(report.new_articles)
    except Exception:
        log.exception("metrics: observe_poll failed")


def observe_alert(state: str, channel: str) -> None:
    """A delivery attempt for `channel` ended in `state` (sent, retry, failed, silenced)."""
    try:
        ALERTS.labels(state=state, channel=channel).inc()
    except Exception:
        log.exception("metrics: observe_alert failed")


def observe_reload(ok: bool) -> None:
    RELOADS.labels(result="ok" if ok else "error").inc()


def set_outbox_depth(n: int) -> None:
    OUTBOX_DEPTH.set(max(0, int(n)))


def set_developments(counts_by_state: Mapping[str, int]) -> None:
    """Replace the per-state development counts (states absent from the map read 0)."""
    for state in _known_states():
        DEVELOPMENTS.labels(state=state).set(0)
    for state, count in counts_by_state.items():
        DEVELOPMENTS.labels(state=str(state)).set(int(count))


def set_last_success(source_id: str, ts: datetime | float) -> None:
    """`ts` is an aware datetime or a Unix timestamp."""
    value = ts.timestamp() if isinstance(ts, datetime) else float(ts)
    LAST_SUCCESS.labels(source=source_id).set(value)


def forget_source(source_id: str) -> None:
    """Drop a removed source's series, so /metrics does not report it forever."""
    for metric in (ITEMS_PARSED, ARTICLES_STORED, LAST_SUCCESS):
        with contextlib.suppress(KeyError):
            metric.remove(source_id)


def render() -> bytes:
    """The Prometheus text exposition of `REGISTRY`."""
    return generate_latest(REGISTRY)


def sample(name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The current value of one sample (e.g. `monitor_fetches_total`), for tests and status."""
    return REGISTRY.get_sample_value(name, dict(labels or {}))


def _known_states() -> tuple[str, ...]:
    from monitor.models import DevelopmentState

    return tuple(state.value for state in DevelopmentState)


__all__ = [
    "CONTENT_TYPE",
    "METRIC_NAMES",
    "REGISTRY",
    "forget_source",
    "observe_alert",
    "observe_backlog",
    "observe_fetch",
    "observe_poll",
    "observe_reload",
    "render",
    "sample",
    "set_developments",
    "set_last_success",
    "set_outbox_depth",
]


def observe_backlog(*, oldest_due: float, intake_waiting: int, intake_lag: float, claims: int) -> None:
    """The leader's backlog gauges (the distributed mode)."""
    BACKLOG.labels("oldest_due_seconds").set(oldest_due)
    BACKLOG.labels("intake_waiting").set(intake_waiting)
    BACKLOG.labels("intake_lag_seconds").set(intake_lag)
    BACKLOG.labels("claims").set(claims)
