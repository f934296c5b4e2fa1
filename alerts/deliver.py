"""The outbox relay: delivers pending alert rows to Slack, exactly once as far as people see.

    relay = Relay(store, sink, settings=settings, clock=utc_now)
    report = await relay.deliver_due()

For each due row (oldest first):

- NEW      → chat.postMessage, the development's parent message, with metadata
             {"event_type": "development_alert", "event_payload": {development_id, alert_id, part}};
             its permalink is kept in the row's delivery record (digests link to it); when it
             cannot list every source, the full list follows as a thread reply.
- UPDATE   → chat.update of the parent (counts, impact, "updated") and one thread reply per
             new independent source; the first reply is broadcast only when the payload says
             `material` (impact crossed the on-call threshold) and the topic has an on-call
             channel; otherwise a material change is said in the thread only.
- MERGE    → chat.update of the absorbed development's parent, pointing to the surviving thread.
- DIGEST, HEALTH, RECOVERY → the payload's message (text/blocks, plus `thread` replies).

Messages are rendered at delivery time from the store's current view of the development, so
a row that waited (quiet hours, retries) still shows the latest counts.

Failure handling, and why nothing is lost or doubled:

- The attempt is counted and committed *before* Slack is called, and the row stays pending
  until Slack's ts is recorded. A crash anywhere leaves a pending row with attempts > 0.
- Each post is recorded in the row's `Delivery` record (stored beside the payload, which the
  relay never changes) before it is sent (`in_flight`: the part) and after (`parts`: part →
  ts), so a retry continues where the last attempt stopped.
  A post that Slack refused or that never left (429, refused connection, an `ok: false`
  answer) clears the in-flight mark: nothing to look for.
- A part still marked in flight may be in Slack (a timeout after sending, a 5xx — Slack
  sometimes posts and then fails — or a killed process), so before posting it again the
  relay looks for its own message by metadata (`alert_id` + `part`) in recent channel history
  (or the thread) and adopts its ts. A 5xx on a post is retried twice within the pass, each
  time after that look; slack-sdk never repeats a post by itself.
- When that look-up is not permitted (no `channels:history`, not a member, unknown channel
  id) the alert is never failed for it: after a 5xx answer the part is posted again (noted:
  it may show twice); after no answer it is not posted a second time and the row is sent but
  unconfirmed. Both are noted in the row (`Delivery.warnings`), the missing scope once in the
  log and in the store (`slack:lookup`); `monitor status` shows them.
- Transient errors (429 beyond slack-sdk's own retries, 5xx, timeouts) → `mark_retry` with
  exponential backoff; permanent errors (invalid_auth, channel_not_found, invalid_blocks, …)
  → `mark_failed`, logged once, never retried.

One relay per store at a time: each pass takes a lease in the store (`meta` row
`lease:relay`, renewed per row, given up on a clean stop), so another process relaying from
the same database — `monitor digest --post` beside the service, or a replica started by
mistake (polling from two processes is not supported) — leaves delivery to the holder instead
of posting twice. A lease whose holder ran
on this host and no longer exists is taken over at once (a restart); one from another host
expires after LEASE_TTL.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection

from alerts import render
from alerts.render import Message
from alerts.routing import routes_for
from alerts.slack import (
    CannotLook,
    DeliveryError,
    Posted,
    ScopeCheck,
    Sink,
    SlackWebSink,
    alert_metadata,
    make_sink,
)
from monitor.clock import utc_now
from monitor.config.settings import Settings
from monitor.models import (
    Alert,
    AlertState,
    Article,
    Delivery,
    DevelopmentView,
    DigestPayload,
    HealthPayload,
    InFlight,
    MergePayload,
    NewPayload,
    PostedPart,
    SlackMessage,
    UpdatePayload,
)
from monitor.ops import metrics
from monitor.store import meta, outbox

log = logging.getLogger(__name__)

# Our message can only be newer than its row; the margin covers clock skew with Slack.
LOOKUP_MARGIN = timedelta(minutes=10)
WAIT_FOR_PARENT = timedelta(seconds=30)


# Store notes for `monitor status`: the token's scopes at start, and a look-up Slack refused.
SCOPES_META = "slack:scopes"
LOOKUP_META = "slack:lookup"

LEASE = "relay"
LEASE_TTL = timedelta(minutes=2)
HELD_LOG_EVERY = timedelta(minutes=5)


def process_owner() -> str:
    """'host:pid:token': who holds the relay lease (the token tells restarts apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def stale_owner(owner: str) -> bool:
    """Whether a lease holder is known to be gone: a process of this host that no longer
    runs, or an earlier process with our own pid (a container restarted with pid 1)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


def load_view(conn: Connection, development_id: int, settings: Settings | None = None) -> DevelopmentView | None:
    """The development as it stands now (articles, corroboration, timeline), from the store."""
    from monitor.store.views import (
        load_view as build,  # imported late: it pulls in the analysis stages
    )

    return build(conn, development_id, settings)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): base · 2^(n-1), capped; Retry-After wins if longer."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempt: int, retry_after: float | None = None) -> timedelta:
        seconds = min(self.base.total_seconds() * 2 ** max(attempt - 1, 0), self.cap.total_seconds())
        if retry_after:
            seconds = max(seconds, retry_after)
        return timedelta(seconds=seconds)


@dataclass(slots=True)
class RelayReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0  # e.g. an update whose parent is not delivered yet
    skipped: int = 0  # recorded without delivery (parent silenced)
    adopted: int = 0  # found already in Slack after an ambiguous failure
    errors: list[str] = field(default_factory=list)
    held_by: str = ""  # another relay holds the store's lease: it delivers, this one did not


@dataclass(slots=True)
class _Attempt:
    """One delivery attempt of a row: the row, its delivery record as this attempt updates it,
    and whether attempts before it left no record of what they had in flight (older versions)."""

    alert: Alert
    delivery: Delivery
    unrecorded_before: bool = False


@dataclass(slots=True)
class _Done:
    channel_id: str
    ts: str
    thread_ts: str
    delivery: Delivery


@dataclass(slots=True)
class _Wait:
    reason: str
    until: datetime


@dataclass(slots=True)
class _Skip:
    state: AlertState
    reason: str


class Relay:
    """Delivers due outbox rows through a Sink (Slack Web API, webhook or console)."""

    MAX_ATTEMPTS = 15  # a row failing this often (temporary errors) is marked failed
    BATCH = 100  # rows read per pass
    QUICK_RETRIES = 2  # re-posts after a 5xx within the pass (each after a look)

    def __init__(
        self,
        store: Any,
        client_or_sink: Sink | AsyncWebClient,
        *,
        clock: Callable[[], datetime] = utc_now,
        settings: Settings | None = None,
        backoff: Backoff = Backoff(),
        quick_pause: float = 0.5,
    ) -> None:
        self.store = store
        self.sink: Sink = SlackWebSink(client_or_sink) if isinstance(client_or_sink, AsyncWebClient) else client_or_sink
        self.clock = clock
        self.settings = settings
        self.backoff = backoff
        self.owner = process_owner()
        # Pause before re-posting after a 5xx within the pass (tests shorten it).
        self.quick_pause = quick_pause
        self._held_logged: datetime | None = None
        self._cannot_look_logged: set[str] = set()

    @classmethod
    def from_settings(cls, store: Any, settings: Settings, **kwargs: Any) -> Relay:
        """Token → Web API, webhook → webhook, neither → console."""
        return cls(store, make_sink(settings.slack), settings=settings, **kwargs)

    # --- the loop --------------------------------------------------------------------------

    async def deliver_due(self, now: datetime | None = None) -> RelayReport:
        """Deliver every row due at `now` (default: the clock); one row's failure never stops the rest."""
        now = now or self.clock()
        report = RelayReport()
        if not self._lease(now, report):
            return report
        with self.store.transaction() as conn:
            rows = outbox.due(conn, now, self.BATCH)
        for alert in rows:
            if not self._lease(now, report):  # renewed per row: a slow pass keeps it
                break
            await self._deliver_one(alert, now, report)
        with self.store.transaction() as conn:
            counts = outbox.counts_by_state(conn)
        metrics.set_outbox_depth(counts.get(AlertState.PENDING.value, 0))
        return report

    def release(self) -> None:
        """Give the lease up on a clean stop, so a restarted monitor delivers at once."""
        with self.store.transaction() as conn:
            meta.release_lease(conn, LEASE, self.owner)

    def _lease(self, now: datetime, report: RelayReport) -> bool:
        with self.store.transaction() as conn:
            taken, previous = meta.take_lease(conn, LEASE, self.owner, max(now, self.clock()), LEASE_TTL, stale=stale_owner)
        if taken:
            return True
        report.held_by = str(previous.get("owner", ""))
        if self._held_logged is None or now - self._held_logged >= HELD_LOG_EVERY:
            self._held_logged = now
            log.warning(
                "another monitor delivers this store's alerts; this one queues them and leaves delivery to it",
                extra={"holder": report.held_by, "until": previous.get("expires")},
            )
        return False

    async def _deliver_one(self, alert: Alert, now: datetime, report: RelayReport) -> None:
        try:
            outcome = await self._attempt(alert, now)
        except DeliveryError as error:
            self._record_failure(alert, error, now, report)
            return
        except Exception as exc:  # a bug or bad payload in one row must not stop the others
            log.exception("alert %s (%s): unexpected error", alert.id, alert.dedup_key)
            self._record_failure(alert, DeliveryError(f"internal error: {type(exc).__name__}: {exc}"), now, report)
            return
        assert alert.id is not None
        with self.store.transaction() as conn:
            if isinstance(outcome, _Done):
                outbox.mark_sent(conn, alert.id, outcome.channel_id, outcome.ts, outcome.thread_ts, self.clock(), outcome.delivery)
                report.sent += 1
                state = "sent"
            elif isinstance(outcome, _Wait):
                outbox.mark_retry(conn, alert.id, outcome.reason, outcome.until, now)
                report.waiting += 1
                state = "retry"
            elif outcome.state is AlertState.SILENCED:
                outbox.mark_silenced(conn, alert.id, outcome.reason, now)
                report.skipped += 1
                state = "silenced"
            else:
                outbox.mark_failed(conn, alert.id, outcome.reason, now)
                log.error("alert %s (%s) not delivered: %s", alert.id, alert.dedup_key, outcome.reason)
                report.failed += 1
                state = "failed"
        metrics.observe_alert(state, alert.channel)

    def _record_failure(self, alert: Alert, error: DeliveryError, now: datetime, report: RelayReport) -> None:
        assert alert.id is not None
        attempts = self._attempts(alert.id)
        report.errors.append(f"{alert.dedup_key}: {error.code}")
        with self.store.transaction() as conn:
            if error.permanent or attempts >= self.MAX_ATTEMPTS:
                reason = error.code if error.permanent else f"gave up after {attempts} attempts: {error.code}"
                outbox.mark_failed(conn, alert.id, reason, now)
                # Logged once: the row is never picked up again.
                log.error("alert %s (%s to %s) failed permanently: %s", alert.id, alert.kind.value, alert.channel, reason)
                report.failed += 1
                metrics.observe_alert("failed", alert.channel)
                return
            until = now + self.backoff.delay(max(attempts, 1), error.retry_after)
            note = f"{error.code} (may have reached Slack; will look before re-posting)" if error.ambiguous else error.code
            outbox.mark_retry(conn, alert.id, note, until, now)
        log.warning("alert %s (%s): %s; retry at %s", alert.id, alert.dedup_key, note, until.isoformat())
        report.retried += 1
        metrics.observe_alert("retry", alert.channel)

    def _attempts(self, alert_id: int) -> int:
        with self.store.transaction() as conn:
            current = outbox.get_alert(conn, alert_id)
        return current.attempts if current else 0

    async def _attempt(self, alert: Alert, now: datetime) -> _Done | _Wait | _Skip:
        payload = alert.payload  # of the class the row's kind carries (the outbox reads it by kind)
        if isinstance(payload, NewPayload):
            return await self._new(alert, payload, now)
        if isinstance(payload, UpdatePayload):
            return await self._update(alert, payload, now)
        if isinstance(payload, MergePayload):
            return await self._merge(alert, payload, now)
        if isinstance(payload, DigestPayload):
            main = payload_message(payload.text, payload.blocks, payload.reason)
            return await self._standalone(alert, main, payload.thread, now)
        if isinstance(payload, HealthPayload):
            return await self._standalone(alert, payload_message(payload.text, (), payload.reason), (), now)
        raise TypeError(f"no delivery for a {type(payload).__name__}")

    # --- kinds -----------------------------------------------------------------------------

    async def _new(self, alert: Alert, payload: NewPayload, now: datetime) -> _Done | _Skip:
        view = self._view(alert.development_id)
        if view is None:
            return _Skip(AlertState.FAILED, f"development {alert.development_id} not found")
        message = render.render_development(
            view, topic_name=self._topic_name(view), now=now, mention=payload.mention or None
        )
        attempt = self._begin(alert, now)
        posted = await self._post_once(attempt, alert.channel, message, part="parent")
        listing = render.render_all_sources(view)
        if listing is not None and posted.ts and self.sink.supports_updates:  # more sources than the message holds
            await self._post_once(attempt, posted.channel_id or alert.channel, listing, part="sources", thread_ts=posted.ts)
        link = await self.sink.permalink(posted.channel_id, posted.ts) if posted.ts else None
        if link:
            attempt.delivery.permalink = link
        return _Done(posted.channel_id, posted.ts, "", attempt.delivery)

    async def _update(self, alert: Alert, payload: UpdatePayload, now: datetime) -> _Done | _Wait | _Skip:
        assert alert.development_id is not None
        with self.store.transaction() as conn:
            parent = outbox.parent_for(conn, alert.development_id, alert.channel)
        not_ready = self._parent_not_ready(parent, now)
        if not_ready is not None:
            return not_ready
        assert parent is not None
        view = self._view(alert.development_id)
        if view is None:
            return _Skip(AlertState.FAILED, f"development {alert.development_id} not found")
        material = payload.material
        if not self.sink.supports_updates or not parent.slack_ts:  # webhook, or a parent we could not confirm
            return await self._update_without_threads(alert, view, material, now)
        attempt = self._begin(alert, now)
        parent_message = render.render_development(
            view, topic_name=self._topic_name(view), now=now, mention=_mention(parent), updated=True
        )
        await self.sink.update(
            parent.slack_channel_id, parent.slack_ts, parent_message,
            metadata=alert_metadata(parent.id, alert.development_id, "parent"),
        )
        # Broadcast to the channel only where on-call is configured: without an on-call channel
        # a higher score is news for the thread, not a reason to interrupt everyone.
        broadcast = material and self._oncall_configured(view.development.topic)
        announced = material and not broadcast
        last = parent.slack_ts
        for article, label in new_sources(view, list(payload.new_article_ids)):
            reply = render.render_source_reply(article, label, now)
            posted = await self._post_once(
                attempt, parent.slack_channel_id, reply,
                part=f"reply:{article.id}", thread_ts=parent.slack_ts, broadcast=broadcast,
            )
            broadcast, announced, last = False, False, posted.ts or last
        if broadcast or announced:  # material without a new source: say what changed, in the thread
            reply = render.render_material_change(view, previous_impact=payload.previous_impact, now=now)
            posted = await self._post_once(
                attempt, parent.slack_channel_id, reply, part="material", thread_ts=parent.slack_ts, broadcast=broadcast
            )
            last = posted.ts or last
        return _Done(parent.slack_channel_id, last, parent.slack_ts, attempt.delivery)

    async def _update_without_threads(self, alert: Alert, view: DevelopmentView, material: bool, now: datetime) -> _Done:
        """No thread to reply in (webhook mode, or a parent whose ts is unknown): a message cannot
        be edited, so only material changes are posted anew."""
        why = "webhook mode cannot update messages or reply in threads" if not self.sink.supports_updates else (
            "the parent message's ts is unknown (its delivery could not be confirmed)"
        )
        if not material:
            alert.delivery.note = f"not announced: {why}"
            return _Done("", "", "", alert.delivery)
        attempt = self._begin(alert, now)
        message = render.render_development(view, topic_name=self._topic_name(view), now=now, updated=True)
        posted = await self._post_once(attempt, alert.channel, message, part="parent")
        return _Done(posted.channel_id, posted.ts, "", attempt.delivery)

    async def _merge(self, alert: Alert, payload: MergePayload, now: datetime) -> _Done | _Wait | _Skip:
        from monitor.store.developments import get_development

        from_id = payload.from_id
        into_id = payload.into_id or alert.development_id
        if from_id is None or into_id is None:
            return _Skip(AlertState.FAILED, "merge payload needs 'from' and 'into'")
        with self.store.transaction() as conn:
            absorbed = outbox.parent_for(conn, from_id, alert.channel)
            survivor = outbox.parent_for(conn, into_id, alert.channel)
            absorbed_dev = get_development(conn, from_id)
            survivor_dev = get_development(conn, into_id)
        for parent in (absorbed, survivor):
            if parent is not None and parent.state is AlertState.PENDING:
                return _Wait(f"waiting for parent message {parent.id}", now + WAIT_FOR_PARENT)
        if absorbed is None or absorbed.state is not AlertState.SENT or not absorbed.slack_ts or not self.sink.supports_updates:
            alert.delivery.note = "nothing to reconcile: the absorbed development has no message here"
            return _Done("", "", "", alert.delivery)
        link = None
        if survivor is not None and survivor.state is AlertState.SENT and survivor.slack_ts:
            link = survivor.delivery.permalink or await self.sink.permalink(survivor.slack_channel_id, survivor.slack_ts)
        attempt = self._begin(alert, now)
        message = render.render_merge_pointer(
            absorbed_dev.headline if absorbed_dev else "Merged development",
            surviving_headline=survivor_dev.headline if survivor_dev else "the surviving story",
            thread_link=link,
            now=now,
        )
        posted = await self.sink.update(
            absorbed.slack_channel_id, absorbed.slack_ts, message, metadata=alert_metadata(absorbed.id, from_id, "parent")
        )
        return _Done(posted.channel_id, posted.ts, "", attempt.delivery)

    async def _standalone(self, alert: Alert, main: Message, thread: Sequence[SlackMessage], now: datetime) -> _Done:
        """Digest, health and recovery rows: post the payload's message and its thread replies."""
        attempt = self._begin(alert, now)
        posted = await self._post_once(attempt, alert.channel, main, part="main")
        for index, item in enumerate(thread):
            # A webhook has no threads (nor has a main message whose ts is unknown): the
            # overflow follows as separate messages.
            thread_ts = posted.ts if self.sink.supports_updates and posted.ts else None
            reply = payload_message(item.text, item.blocks)
            await self._post_once(attempt, alert.channel, reply, part=f"thread:{index}", thread_ts=thread_ts)
        return _Done(posted.channel_id, posted.ts, "", attempt.delivery)

    # --- helpers ---------------------------------------------------------------------------

    def _begin(self, alert: Alert, now: datetime) -> _Attempt:
        """Count the attempt (committed before any Slack call) and start its record.

        The delivery record is saved with the count, marked as one whose attempts record what
        they had in flight; a row from an older version has no such record, so all its parts
        may be in Slack.
        """
        assert alert.id is not None
        delivery = alert.delivery
        unrecorded = not delivery.recorded
        delivery.recorded = True
        with self.store.transaction() as conn:
            prior = outbox.begin_attempt(conn, alert.id, now)
            outbox.save_progress(conn, alert.id, delivery, now)
            known = outbox.channel_id_for(conn, alert.channel)
        remember = getattr(self.sink, "remember_channel", None)
        if known and remember is not None:
            remember(alert.channel, known)
        return _Attempt(alert, delivery, unrecorded_before=prior > 0 and unrecorded)

    async def _post_once(
        self,
        attempt: _Attempt,
        channel: str,
        message: Message,
        *,
        part: str,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> Posted:
        """Post one part of a row unless an earlier attempt already did (recorded or found).

        Looks in Slack first only when an earlier attempt may have posted this part: it had
        it in flight and got no clear "no" (a timeout, a 5xx, a killed process). A 429 or a
        refused connection cannot have posted, so the next attempt posts without looking —
        which also means an app without channels:history loses nothing to a rate-limit storm.
        """
        alert, delivery = attempt.alert, attempt.delivery
        done = delivery.parts.get(part)
        if done is not None:
            return Posted(done.channel, done.ts)
        for retry in itertools.count():
            earlier = self._earlier_try(attempt, part)
            if earlier is not None and self.sink.supports_updates:
                found = await self._look(attempt, channel, part, thread_ts, earlier)
                if found is not None:
                    self._record_part(attempt, part, found)
                    return found
            delivery.in_flight = InFlight(part)
            self._save(attempt)  # committed before the call: a crash from here on leaves the mark
            try:
                posted = await self.sink.post(
                    channel, message, metadata=alert_metadata(alert.id, alert.development_id, part),
                    thread_ts=thread_ts, reply_broadcast=broadcast,
                )
            except DeliveryError as error:
                if error.ambiguous:
                    delivery.in_flight = InFlight(part, error.code, error.answered)
                else:  # Slack said no, or the request never left: nothing to look for next time
                    delivery.in_flight = None
                self._save(attempt)
                if error.answered and retry < self.QUICK_RETRIES:
                    # A 5xx is usually brief: try again soon, in this pass, looking first.
                    await asyncio.sleep(self.quick_pause * 2**retry)
                    continue
                raise
            self._record_part(attempt, part, posted)
            return posted
        raise AssertionError("unreachable")  # pragma: no cover

    def _earlier_try(self, attempt: _Attempt, part: str) -> InFlight | None:
        """What an earlier attempt left about `part` when it may already be in Slack, else None."""
        record = attempt.delivery.in_flight
        if record is not None and record.part == part:
            return record
        if attempt.unrecorded_before:
            return InFlight(part, "an attempt by an earlier version")
        return None

    async def _look(
        self, attempt: _Attempt, channel: str, part: str, thread_ts: str | None, earlier: InFlight
    ) -> Posted | None:
        """Our message for `part` if Slack has it; None when it should be posted (again)."""
        alert = attempt.alert
        since = (alert.created or self.clock()) - LOOKUP_MARGIN
        try:
            found = await self.sink.find_own_message(channel, {"alert_id": alert.id, "part": part}, since=since, thread_ts=thread_ts)
        except CannotLook as why:
            return self._cannot_look(attempt, channel, part, earlier, why)
        if found is not None:
            log.info("alert %s: %s already in Slack (ts %s) from an earlier attempt; adopted", alert.id, part, found.ts)
        return found

    def _cannot_look(self, attempt: _Attempt, channel: str, part: str, earlier: InFlight, why: CannotLook) -> Posted | None:
        """The look-up is needed but not permitted: decide from our own record, and say so.

        Slack answered the earlier try with a 5xx → it most likely did not post: post again
        (a duplicate is possible and noted). No answer at all (a timeout after sending, a
        killed process) → the request had left and Slack most likely has it: do not post a
        second copy; the row is sent but *unconfirmed*, with a warning `monitor status` shows.
        """
        alert = attempt.alert
        where = alert.channel  # the name from routes:, which people know (`channel` may be an id)
        self._note_cannot_look(why, where)
        warnings = attempt.delivery.warnings
        cause = earlier.error or "the monitor stopped while posting it"
        if earlier.answered:
            warnings.append(
                f"{part}: posted again after Slack answered {cause} to an earlier try; it may show twice "
                f"(the app cannot read {where} to check: {why.reason})"
            )
            return None
        warnings.append(
            f"{part}: not confirmed — an earlier try ({cause}) may already have posted it and the app cannot read "
            f"{where} to check ({why.reason}); not posted again, to avoid a duplicate. Look in {where}: if it is "
            f"missing, `monitor developments` shows the development. Granting {why.needed or 'channels:history'} "
            f"lets the monitor check next time"
        )
        log.warning("alert %s: %s", alert.id, warnings[-1])
        with self.store.transaction() as conn:
            channel_id = outbox.channel_id_for(conn, channel) or ""
        return Posted(channel_id, "")

    def _note_cannot_look(self, why: CannotLook, channel: str) -> None:
        """Record once (store, for `monitor status`) and log once per process that look-ups fail."""
        note = {"reason": why.reason, "needed": why.needed, "channel": channel}
        with self.store.transaction() as conn:
            current = meta.get_meta(conn, LOOKUP_META)
            if not isinstance(current, Mapping) or current.get("reason") != why.reason:
                meta.set_meta(conn, LOOKUP_META, {**note, "since": self.clock().isoformat()})
        if why.reason not in self._cannot_look_logged:
            self._cannot_look_logged.add(why.reason)
            log.warning(
                "cannot look in Slack for messages an interrupted attempt may have posted: %s. Alerts are still "
                "delivered; after a timeout or crash mid-post they are marked unconfirmed (see `monitor status`). "
                "Grant %s to the Slack app and reinstall it.", why.reason, why.needed or "channels:history",
            )

    def _record_part(self, attempt: _Attempt, part: str, posted: Posted) -> None:
        """A part is in Slack: remember it at once, so no later attempt posts it again."""
        attempt.delivery.parts[part] = PostedPart(posted.channel_id, posted.ts)
        attempt.delivery.in_flight = None
        self._save(attempt)

    def _save(self, attempt: _Attempt) -> None:
        assert attempt.alert.id is not None
        with self.store.transaction() as conn:
            outbox.save_progress(conn, attempt.alert.id, attempt.delivery, self.clock())

    async def check_slack(self) -> ScopeCheck | None:
        """At start: ask Slack which scopes the token has; log and record what is missing.

        None for the console and webhook sinks (nothing to check).
        """
        check = getattr(self.sink, "check_scopes", None)
        if check is None:
            return None
        result: ScopeCheck = await check()
        value = {"checked": self.clock().isoformat(), "granted": list(result.granted), "missing": list(result.missing),
                 "error": result.error, "known": result.known}
        with self.store.transaction() as conn:
            meta.set_meta(conn, SCOPES_META, value)
            if result.known and not result.error and not result.missing:
                meta.set_meta(conn, LOOKUP_META, None)  # the scopes were granted since: the old note is void
        for problem in result.problems():
            (log.error if result.error or "chat:write" in result.missing else log.warning)(
                "%s. See README, 'Slack app': chat:write, channels:read, channels:history (groups:history for "
                "private channels).", problem,
            )
        return result

    def _oncall_configured(self, topic: str) -> bool:
        if self.settings is None:
            return False
        return any(route.oncall_channel for route in routes_for(topic, self.settings.routes))

    def _parent_not_ready(self, parent: Alert | None, now: datetime) -> _Wait | _Skip | None:
        if parent is None:
            return _Skip(AlertState.FAILED, "no parent message for this development in this channel")
        if parent.state is AlertState.PENDING:
            until = max(parent.not_before or now, now + WAIT_FOR_PARENT)
            return _Wait(f"waiting for parent message {parent.id}", until)
        if parent.state is AlertState.SILENCED:
            return _Skip(AlertState.SILENCED, f"parent message {parent.id} was silenced")
        if parent.state is not AlertState.SENT or (not parent.slack_ts and not parent.delivery.warnings):
            return _Skip(AlertState.FAILED, f"parent message {parent.id} was not delivered ({parent.state.value}: {parent.last_error})")
        return None

    def _view(self, development_id: int | None) -> DevelopmentView | None:
        if development_id is None:
            return None
        with self.store.transaction() as conn:
            return load_view(conn, development_id, self.settings)

    def _topic_name(self, view: DevelopmentView) -> str:
        topic_id = view.development.topic
        if self.settings is not None:
            for topic in self.settings.topics:
                if topic.id == topic_id:
                    return topic.name
        return topic_id


def new_sources(view: DevelopmentView, new_article_ids: list[int]) -> list[tuple[Article, str]]:
    """(first article, origin label) for each origin made only of the newly arrived articles.

    A reprint of an origin we already had is not a new source, so it gets no reply.
    """
    new = set(new_article_ids)
    by_id = {a.id: a for a in view.articles if a.id is not None}
    found = []
    for origin in render.origins_of(view):
        ids = [i for i in origin.article_ids if i in by_id]
        if ids and all(i in new for i in ids):
            members = [by_id[i] for i in ids]
            first = render.origin_article(origin, members) or members[0]
            found.append((first, render.origin_name(origin, members)))
    return found


def payload_message(text: str, blocks: Sequence[dict[str, Any]], fallback: str = "") -> Message:
    """The message a digest/health payload carries; plain `text` (or, without it, the
    `fallback`: the row's reason) is escaped and wrapped."""
    if blocks:
        return Message(text or "Monitor", list(blocks))
    return render.render_plain(text or fallback or "(empty)")


def _mention(parent: Alert) -> str | None:
    """The on-call mention a parent message was posted with (kept when it is edited)."""
    payload = parent.payload
    if not isinstance(payload, NewPayload):
        return None
    return payload.mention or None
