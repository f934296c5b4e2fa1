"""Plain data that flows between the stages.

The flow is fetch → parse → normalize → relevance → dedup → cluster → corroborate →
decide → outbox. Every stage in the middle takes and returns these values; none of them
reaches for the clock, the network or the database.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ErrorKind(str, enum.Enum):
    """Why a fetch (or the parse right after it) failed; kept in source health."""

    DNS = "dns"
    TLS = "tls"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    ROBOTS = "robots"
    BLOCKED_ADDRESS = "blocked_address"
    BAD_URL = "bad_url"
    PARSE = "parse"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one conditional GET. Exactly one of: body, not_modified, error_kind."""

    source_id: str
    url: str  # the URL asked for
    final_url: str  # after redirects
    fetched_at: datetime
    status: int | None = None
    body: bytes | None = None  # decompressed; None when not modified or failed
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # sha256 hex of body
    not_modified: bool = False  # 304, or the body hash equals the stored one
    error_kind: ErrorKind | None = None
    error: str | None = None  # human sentence, e.g. "body exceeds 10 MB after decompression"
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_kind is None


@dataclass(frozen=True, slots=True)
class Item:
    """One entry as the feed or page gave it, before cleaning."""

    title: str = ""
    link: str = ""
    guid: str = ""
    summary: str = ""  # may contain HTML
    content: str = ""  # full content if the feed has it; may contain HTML
    published: datetime | None = None  # timezone-aware UTC when known
    author: str = ""
    outlet: str = ""  # outlet named inside the item (<source>, dc:publisher), for aggregators
    outlet_url: str = ""
    credit: str = ""  # dc:source / wire credit named by the feed
    canonical: str = ""  # rel=canonical, when known


@dataclass(frozen=True, slots=True)
class ParseResult:
    items: tuple[Item, ...]
    format: str  # "rss20", "atom10", "json1.1", "page", "unknown", ...
    title: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return not self.items and bool(self.warnings)


@dataclass(frozen=True, slots=True)
class TopicMatch:
    topic_id: str
    score: float
    explanation: str  # "'export controls' in title; 'BIS' in summary"


@dataclass(slots=True)
class Article:
    """A cleaned item, attributed to an outlet. `id` is set by the store."""

    source_id: str
    outlet: str  # display name of the outlet that published it
    url: str
    canonical_url: str
    title: str
    summary: str  # clean text
    text: str  # clean text; may be empty
    published: datetime  # UTC
    fetched: datetime  # UTC
    guid: str = ""
    owner: str = ""  # owner group from feeds.yaml (same owner → same origin)
    tier: str = "outlet"  # primary | wire | outlet | aggregator | blog
    credit: str = ""  # wire credit found in the item or text ("Reuters")
    canonical_link: str = ""  # rel=canonical given by the page/feed, if it points elsewhere
    content_hash: str = ""
    signature: bytes | None = None  # near-duplicate signature (MinHash), set by dedup
    origin: str = ""  # origin key after collapsing reprints/wires/owners, set by dedup
    reprint_of: int | None = None  # id of the article this one copies
    topics: tuple[TopicMatch, ...] = ()
    development_id: int | None = None
    id: int | None = None
    warnings: tuple[str, ...] = ()


class DevelopmentState(str, enum.Enum):
    SINGLE_SOURCE = "single_source"
    CORROBORATED = "corroborated"
    CLOSED = "closed"
    MERGED = "merged"


@dataclass(frozen=True, slots=True)
class Origin:
    """One independent source behind a development and the copies that collapse into it."""

    key: str  # e.g. "wire:reuters", "owner:nyt", "outlet:politico.com"
    label: str  # "Reuters"
    article_ids: tuple[int, ...] = ()
    outlets: tuple[str, ...] = ()  # the outlets that carried it (origin first)
    reprints: int = 0  # copies beyond the first
    primary: bool = False  # a primary source (government, the company itself) is among them


@dataclass(frozen=True, slots=True)
class Decision:
    """What corroborate concluded, with its reason, for logs, alerts and tests."""

    state: DevelopmentState
    independent: int
    reason: str  # "3 independent: Reuters (+4 reprints), Politico, BIS press release"
    origins: tuple[Origin, ...] = ()
    required: int = 2


@dataclass(frozen=True, slots=True)
class Impact:
    score: int  # 1..10
    reasons: tuple[str, ...] = ()


class Sentiment(str, enum.Enum):
    VERY_NEGATIVE = "very negative"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"
    VERY_POSITIVE = "very positive"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    development_id: int
    headline: str
    first_seen: datetime
    independent: int = 0


@dataclass(slots=True)
class Development:
    """One real-world event, reported by one or more articles."""

    topic: str
    headline: str
    first_seen: datetime
    last_seen: datetime
    state: DevelopmentState = DevelopmentState.SINGLE_SOURCE
    independent: int = 1
    key_terms: tuple[str, ...] = ()
    impact: Impact | None = None
    sentiment: Sentiment | None = None
    lead: str = ""
    storyline_id: int | None = None
    # The kind of action it reports and who took it ("us:rule", "ally:control"), from the
    # impact rubric; storylines link developments of one kind. Empty when not rated.
    kind: str = ""
    merged_into: int | None = None
    # What corroboration concluded, with the origins behind it; decided once per change
    # (None for rows stored before the decision was kept, and for unsaved developments).
    decision: Decision | None = None
    decision_reason: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DevelopmentView:
    """Everything an alert or digest needs to show one development (built from the store)."""

    development: Development
    decision: Decision
    articles: tuple[Article, ...]
    timeline: tuple[TimelineEntry, ...] = ()


class AlertKind(str, enum.Enum):
    NEW = "new"  # parent message
    UPDATE = "update"  # chat.update of the parent + thread reply for a new source
    MERGE = "merge"  # reconcile two developments' messages
    DIGEST = "digest"
    HEALTH = "health"
    RECOVERY = "recovery"


class AlertState(str, enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # permanent error, not retried
    SILENCED = "silenced"
    DEFERRED = "deferred"  # quiet hours
    SUPERSEDED = "superseded"  # never sent: merged into a development whose message carries it


# --- alert payloads -------------------------------------------------------------------------
# What an outbox row carries besides its routing: one frozen class per kind, so that what
# decide, the digests and source health promise is what the relay and `monitor status` read.
# The outbox stores them in the row's JSON column (monitor.store.outbox); fields are keyword-only.


@dataclass(frozen=True, slots=True)
class SilenceNote:
    """The silence that kept an alert out of Slack, as recorded with the alert."""

    id: int
    matcher: str  # one of SILENCE_MATCHERS
    value: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPayload:
    """Common to every kind: why the row exists (and why it waits, or was silenced)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DevelopmentPayload(AlertPayload):
    """What decide adds to the rows of a development (NEW, UPDATE, MERGE)."""

    urgent: bool = False  # on-call, or impact ≥ the route's threshold: quiet hours do not apply
    silence: SilenceNote | None = None  # set on SILENCED rows (urgency is then not decided)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPayload(DevelopmentPayload):
    """NEW: the development's parent message in a channel."""

    independent: int
    impact: int
    oncall: bool  # the route's on-call channel
    article_ids: tuple[int, ...]  # the articles that arrived in the cycle that decided it
    mention: str = ""  # operator-configured on-call mention ("<!subteam^S0123>"), never from a feed
    held_until: datetime | None = None  # decide's Hold: waits for a similar development to merge


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatePayload(DevelopmentPayload):
    """UPDATE: refresh the parent and reply in its thread (a new source, or impact crossed on-call)."""

    new_article_ids: tuple[int, ...]
    independent: int
    previous_independent: int
    impact: int
    previous_impact: int | None
    material: bool  # impact crossed an on-call threshold: the reply may be broadcast
    oncall: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MergePayload(DevelopmentPayload):
    """MERGE: point the absorbed development's message to the surviving thread.

    None only in a stored row that lacks the id (the relay fails such a row, saying so)."""

    from_id: int | None  # the absorbed development
    into_id: int | None  # the surviving development


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message rendered when queued: notification text and Block Kit blocks."""

    text: str
    blocks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestPayload(AlertPayload):
    """DIGEST: the rendered digest of one period, posted as it was queued."""

    digest_id: str
    period_start: datetime | None  # None only in a stored row that lacks it
    period_end: datetime | None
    text: str
    blocks: tuple[dict[str, Any], ...]
    thread: tuple[SlackMessage, ...] = ()  # what did not fit, as replies in the main message's thread


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPayload(AlertPayload):
    """HEALTH and RECOVERY: a source started failing, or works again (for the ops channel)."""

    source_id: str
    change: str  # "failing" | "recovered"
    text: str  # plain text: escaped when posted


# Which payload class each kind carries; the outbox reads a stored row by its kind.
PAYLOAD_TYPES: Mapping[AlertKind, type[AlertPayload]] = {
    AlertKind.NEW: NewPayload,
    AlertKind.UPDATE: UpdatePayload,
    AlertKind.MERGE: MergePayload,
    AlertKind.DIGEST: DigestPayload,
    AlertKind.HEALTH: HealthPayload,
    AlertKind.RECOVERY: HealthPayload,
}


@dataclass(frozen=True, slots=True)
class PostedPart:
    """Where one part of a row (parent, a thread reply) landed in Slack."""

    channel: str
    ts: str  # empty when posted but not confirmed (see the relay's unconfirmed warnings)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A post that may have reached Slack: the relay looks for it before posting it again."""

    part: str
    error: str = ""  # the ambiguous error it ended with; empty while the post is under way
    answered: bool = False  # Slack answered (a 5xx) rather than not at all (a timeout)


@dataclass(slots=True)
class Delivery:
    """The relay's own record of its progress on a row, beside the payload (which it never
    changes), so that a retry continues where the last attempt stopped."""

    parts: dict[str, PostedPart] = field(default_factory=dict)  # every part already in Slack
    in_flight: InFlight | None = None
    recorded: bool = False  # this row's attempts record what they have in flight
    warnings: list[str] = field(default_factory=list)  # what `monitor status` should show
    permalink: str = ""  # of a NEW row's message (digests link to it)
    note: str = ""  # why a row was sent without posting anything


@dataclass(slots=True)
class Alert:
    """A row of the outbox and notification log in one."""

    kind: AlertKind
    channel: str
    dedup_key: str  # unique: one parent per development per channel, one digest per period
    development_id: int | None = None
    payload: AlertPayload = field(kw_only=True)  # of PAYLOAD_TYPES[kind]
    delivery: Delivery = field(default_factory=Delivery, kw_only=True)
    state: AlertState = AlertState.PENDING
    attempts: int = 0
    last_error: str = ""
    not_before: datetime | None = None
    slack_channel_id: str = ""
    slack_ts: str = ""
    created: datetime | None = None
    sent: datetime | None = None
    id: int | None = None
    thread_ts: str = ""  # the parent's ts when this row was delivered as a thread reply
    updated: datetime | None = None

    def __post_init__(self) -> None:
        expected = PAYLOAD_TYPES[self.kind]
        if not isinstance(self.payload, expected):
            raise TypeError(f"a {self.kind.value} alert carries a {expected.__name__}, not a {type(self.payload).__name__}")


@dataclass(slots=True)
class SourceHealth:
    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_status: int | None = None
    last_ok: datetime | None = None
    last_attempt: datetime | None = None
    consecutive_failures: int = 0
    last_error_kind: ErrorKind | None = None
    last_error: str = ""
    next_due: datetime | None = None
    items_seen: int = 0


SILENCE_MATCHERS = ("topic", "development", "source", "match")


@dataclass(frozen=True, slots=True)
class ActiveSilence:
    """A silence in force: alerts it matches are recorded as SILENCED, not posted."""

    id: int
    matcher: str  # one of SILENCE_MATCHERS
    value: str
    reason: str
    expires: datetime
    created: datetime | None = None

    def describe(self) -> str:
        """One line for payloads and logs: `silence #3 (topic=export-controls): reason`."""
        return f"silence #{self.id} ({self.matcher}={self.value}): {self.reason}"
