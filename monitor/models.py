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


@dataclass(slots=True)
class Alert:
    """A row of the outbox and notification log in one."""

    kind: AlertKind
    channel: str
    dedup_key: str  # unique: one parent per development per channel, one digest per period
    development_id: int | None = None
    payload: Mapping[str, object] = field(default_factory=dict)
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
