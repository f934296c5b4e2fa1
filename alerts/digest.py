"""Digests for on-call staff: choose what happened in a period, render it, queue it once.

Three steps, each testable alone:

- choose: `load_digest_data` reads the store (developments, parent alerts, source state);
  `build_digest` picks the corroborated developments of the period (highest impact first,
  each with its Slack thread link), the single-source watch list and the failing sources.
- render (pure): `render_blocks` → one Block Kit message of at most 50 blocks plus thread
  replies for what does not fit; `render_text`, `render_markdown`, `render_json` for the CLI.
- schedule: `due_digests` says which configured digests are due (croniter, in the digest's
  timezone); `enqueue_digest` writes the outbox row with dedup key
  `digest:<id>:<period end, UTC ISO>`, so a restart can never post one period twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Connection

from alerts.render import Message
from monitor.clock import format_utc
from monitor.config.settings import Digest as DigestSettings
from monitor.models import (
    Alert,
    AlertKind,
    Development,
    DevelopmentState,
    DigestPayload,
    SlackMessage,
)
from monitor.store import developments, outbox, sources

log = logging.getLogger(__name__)

UNVERIFIED = "unverified — 1 source"


# --- what a digest holds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One development as the digest shows it."""

    development_id: int
    topic: str
    headline: str
    independent: int
    first_seen: datetime
    last_seen: datetime
    impact: int | None = None
    impact_reasons: tuple[str, ...] = ()
    sentiment: str | None = None
    thread_url: str | None = None  # the Slack thread of its parent message, once posted


@dataclass(frozen=True, slots=True)
class FailingSource:
    source_id: str
    consecutive_failures: int
    last_ok: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class DigestData:
    """What the store holds for a period, before choosing (the input of `build_digest`)."""

    developments: tuple[DigestEntry, ...] = ()
    states: Mapping[int, str] = field(default_factory=dict)  # development id → state
    failing: tuple[FailingSource, ...] = ()


@dataclass(frozen=True, slots=True)
class Digest:
    """A chosen digest: the three sections, in the order they are shown."""

    digest_id: str
    channel: str
    since: datetime
    until: datetime
    corroborated: tuple[DigestEntry, ...] = ()
    watch: tuple[DigestEntry, ...] = ()
    failing: tuple[FailingSource, ...] = ()
    include: tuple[str, ...] = ("corroborated", "single_source", "failing_sources")

    @property
    def empty(self) -> bool:
        return not (self.corroborated or self.watch or self.failing)


class DigestMessages(NamedTuple):
    """The main message and the thread replies carrying what did not fit in it."""

    main: Message
    thread: list[Message]


# --- reading the store ----------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def permalink(channel_id: str, ts: str) -> str | None:
    """Slack's archive link for a message: https://slack.com/archives/<C>/p<ts without dot>."""
    if not channel_id or not ts:
        return None
    return f"https://slack.com/archives/{channel_id}/p{ts.replace('.', '')}"


def thread_links(conn: Connection, development_ids: Iterable[int]) -> dict[int, str]:
    """Development id → link to its first delivered parent message.

    A permalink the relay stored from chat.getPermalink (its `Delivery.permalink`) wins; else
    one is built from the channel id and ts.
    """
    links: dict[int, str] = {}
    for dev_id, (channel_id, ts, stored) in outbox.first_parents(conn, development_ids).items():
        url = stored or permalink(channel_id, ts)
        if url:
            links[dev_id] = url
    return links


def load_digest_data(
    conn: Connection,
    *,
    since: datetime,
    until: datetime,
    topics: Sequence[str] | None = None,
    failures_before_alert: int = 3,
) -> DigestData:
    """Developments active in [since, until), their thread links, and the failing sources."""
    found = developments.active_between(conn, since.astimezone(UTC), until.astimezone(UTC), topics=topics)
    links = thread_links(conn, [d.id for d in found if d.id is not None])
    entries = tuple(entry_from_development(d, links.get(d.id or 0)) for d in found)
    states = {d.id or 0: d.state.value for d in found}
    failing = tuple(
        FailingSource(h.source_id, h.consecutive_failures, h.last_ok, h.last_error)
        for h in sources.failing(conn, failures_before_alert)
    )
    return DigestData(entries, states, failing)


def entry_from_development(dev: Development, thread_url: str | None = None) -> DigestEntry:
    """A development (as the pipeline holds it) as a digest entry."""
    if dev.id is None:
        raise ValueError("a development needs an id to appear in a digest")
    return DigestEntry(
        development_id=dev.id,
        topic=dev.topic,
        headline=dev.headline,
        independent=dev.independent,
        first_seen=dev.first_seen,
        last_seen=dev.last_seen,
        impact=dev.impact.score if dev.impact else None,
        impact_reasons=tuple(dev.impact.reasons) if dev.impact else (),
        sentiment=dev.sentiment.value if dev.sentiment else None,
        thread_url=thread_url,
    )


# --- choosing -------------------------------------------------------------------------


def build_digest(
    source: Connection | DigestData,
    *,
    since: datetime,
    until: datetime,
    settings_digest: DigestSettings,
    now: datetime,
    failures_before_alert: int = 3,
) -> Digest:
    """Choose the digest for [since, until) from the store (a Connection) or from data."""
    if isinstance(source, DigestData):
        data = source
    else:
        data = load_digest_data(
            source, since=since, until=until, topics=settings_digest.topics, failures_before_alert=failures_before_alert
        )
    include = settings_digest.include
    topics = set(settings_digest.topics) if settings_digest.topics else None
    entries = [e for e in data.developments if topics is None or e.topic in topics]
    corroborated = [e for e in entries if _corroborated(data.states.get(e.development_id), e)]
    watch = [e for e in entries if data.states.get(e.development_id) == DevelopmentState.SINGLE_SOURCE.value]
    corroborated.sort(key=lambda e: (-(e.impact or 0), -e.independent, -e.last_seen.timestamp(), e.development_id))
    watch.sort(key=lambda e: (-(e.impact or 0), -e.last_seen.timestamp(), e.development_id))
    log.debug("digest %s at %s: %d corroborated, %d watch", settings_digest.id, now.isoformat(), len(corroborated), len(watch))
    return Digest(
        digest_id=settings_digest.id,
        channel=settings_digest.channel,
        since=since,
        until=until,
        corroborated=tuple(corroborated) if "corroborated" in include else (),
        watch=tuple(watch) if "single_source" in include else (),
        failing=tuple(data.failing) if "failing_sources" in include else (),
        include=tuple(include),
    )


def _corroborated(state: str | None, entry: DigestEntry) -> bool:
    # A closed development was corroborated if it had two or more independent sources.
    if state == DevelopmentState.CORROBORATED.value:
        return True
    return state == DevelopmentState.CLOSED.value and entry.independent >= 2


# --- scheduling -----------------------------------------------------------------------


def _fires_before(cron: str, zone: ZoneInfo, moment: datetime) -> croniter:
    # croniter's get_prev is strictly before its start; one microsecond past the whole
    # second makes a fire time equal to `moment` count as reached.
    start = moment.astimezone(zone).replace(microsecond=0) + timedelta(microseconds=1)
    return croniter(cron, start)


FIRST_RUN_GRACE = timedelta(hours=1)


def due_digests(
    digests: Sequence[DigestSettings],
    last_runs: Mapping[str, datetime],
    now: datetime,
    *,
    first_run_grace: timedelta = FIRST_RUN_GRACE,
) -> list[tuple[DigestSettings, datetime, datetime]]:
    """(digest, period start, period end) for each digest whose latest fire time ≤ now has
    not run yet. The period ends at that fire time and starts at the fire before it — or at
    the last run, if that is earlier, so a period missed while the monitor was down is
    covered rather than lost. A digest that never ran waits for its next fire time unless
    the latest one is within `first_run_grace` (a fresh install at 15:00 does not post the
    08:00 digest). Times are UTC."""
    due = []
    for digest in digests:
        try:
            fires = _fires_before(digest.cron, ZoneInfo(digest.timezone), now)
            end = fires.get_prev(datetime).astimezone(UTC)
            start = fires.get_prev(datetime).astimezone(UTC)
        except (ValueError, KeyError) as exc:  # a bad cron expression must not stop the others
            log.error("digest %s: cannot evaluate cron %r: %s", digest.id, digest.cron, exc)
            continue
        last = last_runs.get(digest.id)
        if last is not None and last >= end:
            continue
        if last is None and now - end > first_run_grace:
            continue
        if last is not None and last < start:
            start = last
        due.append((digest, start, end))
    return due


def digest_key(digest_id: str, period_end: datetime) -> str:
    """The outbox dedup key of one scheduled digest period."""
    return f"digest:{digest_id}:{period_end.astimezone(UTC).isoformat()}"


def last_digest_runs(conn: Connection) -> dict[str, datetime]:
    """Digest id → end of the latest period queued, read from the outbox's dedup keys."""
    rows = [(key,) for key in outbox.keys_like(conn, "digest:%")]
    runs: dict[str, datetime] = {}
    for (key,) in rows:
        _, digest_id, iso = key.split(":", 2)
        try:
            end = datetime.fromisoformat(iso)
        except ValueError:
            continue
        if digest_id not in runs or end > runs[digest_id]:
            runs[digest_id] = end
    return runs


def digest_alert(digest: Digest, *, key: str, now: datetime) -> Alert:
    """The outbox row of a digest: the rendered main message and its thread replies."""
    from alerts.digest_render import counts, period, render_blocks

    messages = render_blocks(digest)
    return Alert(
        kind=AlertKind.DIGEST,
        channel=digest.channel,
        dedup_key=key,
        payload=DigestPayload(
            reason=f"digest {digest.digest_id} for {period(digest)}: {counts(digest)}",
            digest_id=digest.digest_id,
            period_start=digest.since.astimezone(UTC),
            period_end=digest.until.astimezone(UTC),
            text=messages.main.text,
            blocks=tuple(messages.main.blocks),
            thread=tuple(SlackMessage(m.text, tuple(m.blocks)) for m in messages.thread),
        ),
        created=now,
    )


def enqueue_digest(conn: Connection, digest: Digest, *, key: str, now: datetime) -> int | None:
    """Queue a digest in the outbox; None when this key was already queued (a restart)."""
    from monitor.store.outbox import enqueue

    return enqueue(conn, digest_alert(digest, key=key, now=now))


def run_due_digests(
    conn: Connection,
    digests: Sequence[DigestSettings],
    *,
    now: datetime,
    failures_before_alert: int = 3,
) -> list[int]:
    """Build and queue every due digest; returns the new outbox ids. Call inside one
    transaction: the dedup key makes a second call for the same period a no-op."""
    queued = []
    for settings_digest, start, end in due_digests(digests, last_digest_runs(conn), now):
        digest = build_digest(
            conn, since=start, until=end, settings_digest=settings_digest, now=now, failures_before_alert=failures_before_alert
        )
        alert_id = enqueue_digest(conn, digest, key=digest_key(settings_digest.id, end), now=now)
        if alert_id is not None:
            log.info("queued digest %s for %s", settings_digest.id, f"{format_utc(digest.since)} and {format_utc(digest.until)}")
            queued.append(alert_id)
    return queued


def make_digest_job(store: Any, holder: Any, *, clock: Callable[[], datetime]) -> Callable[[], Awaitable[list[int]]]:
    """The scheduler's every-minute job: queue each due digest once (the relay posts it).

    `holder` is the ConfigHolder, read on each run so a reloaded feeds.yaml takes effect.
    """

    async def run_digests() -> list[int]:
        settings = holder.settings
        if not settings.digests:
            return []
        try:
            with store.transaction() as conn:
                return run_due_digests(
                    conn, settings.digests, now=clock(), failures_before_alert=settings.health.failures_before_alert
                )
        except Exception:  # a failing digest must not stop polling; the next minute retries
            log.exception("digest job failed")
            return []

    return run_digests
