"""The schema of feeds.yaml: every key, its type, default and help text.

The help text (``description=``) is what the README's configuration reference is generated
from, so a key without help is a documentation bug. `monitor.config.load` loads a file into these
models and turns validation errors into ``file:line: key.path: message`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any schedule, retention or timeout means anything; the clock arithmetic the
# monitor does with durations (now + interval, backoff doubling) stays far from datetime's end.
MAX_DURATION = timedelta(days=36_500)


def parse_duration(value: object) -> timedelta:
    """'10m', '1h30m', '45s', '2d' (or a number of seconds) → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 10m or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded_duration(float(value), value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 10m or 1h30m")
    text = value.strip().replace(" ", "")
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {value!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 10m or 1h30m")
    return _bounded_duration(seconds, value)


def _bounded_duration(seconds: float, value: object) -> timedelta:
    if not seconds <= MAX_DURATION.total_seconds():  # also catches inf and nan
        raise ValueError(f"duration {value!r} is too long: at most {MAX_DURATION.days}d (100 years)")
    return timedelta(seconds=seconds)


def at_least(minimum: timedelta, why: str) -> Callable[[timedelta | None], timedelta | None]:
    """A validator: the duration (when set) is at least `minimum`; `why` ends the message."""

    def check(value: timedelta | None) -> timedelta | None:
        if value is not None and value < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}{why}, got {format_duration(value)}")
        return value

    return check


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if 0 < value.total_seconds() < 1:
        return f"{round(value.total_seconds() * 1000)}ms"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


MAX_SIZE = 1000**4  # 1 TB: no setting means more, and a C size argument must hold it


def parse_size(value: object) -> int:
    """'10MB', '512KiB' or a number of bytes → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"invalid size {value!r}: use e.g. 10MB or 512KiB")
        number = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
        if not number <= MAX_SIZE:  # also inf, from a number with hundreds of digits
            raise ValueError("size is too large: at most 1TB")
        size = int(number)
    if size < 0:
        raise ValueError(f"a size cannot be negative, got {value!r}")
    if size > MAX_SIZE:
        raise ValueError("size is too large: at most 1TB")
    return size


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


def _check_http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"only http and https URLs are allowed, got {parts.scheme or 'no'} scheme in {value!r}")
    if not parts.hostname:
        raise ValueError(f"URL {value!r} has no host")
    return value


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(value)
    except Exception as exc:  # ZoneInfoNotFoundError or a malformed key
        raise ValueError(f"unknown timezone {value!r}: use an IANA name such as UTC or Europe/Berlin") from exc
    return value


def _check_cron(value: str) -> str:
    from datetime import UTC, datetime

    from croniter import CroniterError, croniter

    # Five fields only: croniter also accepts a sixth (seconds) field, which would surprise.
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"invalid cron expression {value!r}: use five fields (minute hour day month weekday), e.g. '0 8 * * 1-5'")
    try:  # valid syntax can still name a date that never comes ('0 0 31 2 *': 31 February)
        croniter(value, datetime.now(UTC)).get_next(datetime)
    except (CroniterError, ValueError, OverflowError) as exc:
        raise ValueError(f"cron expression {value!r} never fires (no such date in the next years)") from exc
    return value


def _check_clock_time(value: str) -> str:
    """'HH:MM' with a real hour and minute ('25:00' and '07:60' are refused)."""
    hours, _, minutes = value.partition(":")
    if not (0 <= int(hours) <= 23 and 0 <= int(minutes) <= 59):
        raise ValueError(f"invalid time {value!r}: hours are 00-23 and minutes 00-59, e.g. 07:30")
    return value


MIN_INTERVAL = timedelta(seconds=1)
MIN_TIMEOUT = timedelta(milliseconds=100)

HttpUrl = Annotated[str, BeforeValidator(lambda v: v if not isinstance(v, str) else v.strip())]

_ID = r"^[a-z0-9][a-z0-9_.-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Selectors(Strict):
    """CSS selectors that turn a listing page into items (beautifulsoup4 `select`)."""

    item: str = Field(description="Selector of one item on the page, e.g. `article.press-release`.")
    title: str = Field("a", description="Selector of the title inside an item.")
    link: str = Field("a", description="Selector of the element whose `href` is the item link.")
    date: str | None = Field(None, description="Selector of the publication date inside an item (text or `datetime` attribute).")
    summary: str | None = Field(None, description="Selector of the summary inside an item.")


class Defaults(Strict):
    """Values every source inherits unless it sets its own."""

    interval: Duration = Field(timedelta(minutes=15), description="How often a source is polled (at least 1s).")
    jitter: Duration = Field(timedelta(seconds=30), description="Random delay added to each poll so sources do not all fire at once.")
    tier: Literal["primary", "wire", "outlet", "aggregator", "blog"] = Field("outlet", description="Default source tier.")
    enabled: bool = Field(True, description="Whether sources are polled unless they say otherwise.")
    max_items: int = Field(500, ge=1, le=100_000, description="Most items read from one poll of a source: the newest (a warning names the source when a feed lists more). Bounds memory and time on a feed of 100,000 items.")

    _interval = field_validator("interval")(at_least(MIN_INTERVAL, " (the scheduler polls whole seconds)"))


class Source(Strict):
    id: str = Field(pattern=_ID, description="Stable identifier, used in logs, the store and `monitor sources test ID`.")
    name: str = Field(description="Human name of the feed or page.")
    url: str = Field(description="http(s) URL of the feed or listing page.")
    kind: Literal["feed", "page"] = Field("feed", description="`feed` (RSS, Atom, RDF, JSON Feed) or `page` (HTML listing read with `selectors`).")
    outlet: str | None = Field(None, description="Outlet that publishes it (defaults to `name`). Aggregator items keep the outlet they name.")
    owner: str | None = Field(None, description="Owner group: outlets sharing an owner count as one independent source.")
    tier: Literal["primary", "wire", "outlet", "aggregator", "blog"] | None = Field(None, description="primary (government, the company itself), wire, outlet, aggregator or blog.")
    interval: Duration | None = Field(None, description="Poll interval (at least 1s); defaults to `defaults.interval`.")
    selectors: Selectors | None = Field(None, description="CSS selectors; required for `kind: page`.")
    topics: tuple[str, ...] | None = Field(None, description="Restrict this source to these topic ids (default: all topics).")
    enabled: bool | None = Field(None, description="Set to false to stop polling without deleting the entry.")
    max_items: int | None = Field(None, ge=1, le=100_000, description="Most items read from one poll of this source; defaults to `defaults.max_items`.")
    allow_private: bool = Field(False, description="Let this source's requests (the feed or page, its redirects, robots.txt and its items' article pages) reach loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7) and shared (100.64/10) addresses, e.g. a feed on the intranet. Link-local addresses (169.254/16, where cloud metadata answers) need `allow_networks`. A redirect never widens this.")
    allow_networks: tuple[str, ...] = Field((), description="Networks this source's requests may reach although they are not public, e.g. `[10.20.0.0/16]`; narrower than `allow_private`.")

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"invalid network {network!r}: use an address or CIDR such as 10.20.0.0/16") from exc
        return value

    _interval = field_validator("interval")(at_least(MIN_INTERVAL, " (the scheduler polls whole seconds)"))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)

    @model_validator(mode="after")
    def _page_needs_selectors(self) -> Source:
        if self.kind == "page" and self.selectors is None:
            raise ValueError("a source of kind 'page' needs 'selectors' (at least 'item')")
        return self


def _check_terms(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse terms the matcher cannot use ('*', emoji only, a*b*c*d) with the reason."""
    from monitor.config.terms import RejectedTerm, normalise_term

    for term in terms:
        result = normalise_term(term)
        if isinstance(result, RejectedTerm):
            raise ValueError(f"term {term!r}: {result.reason}")
    return terms


DEFAULT_MIN_SOURCES = 2  # independent sources before a development is alerted, unless a topic says


class TopicRules(Strict):
    """Term lists; a term may be a phrase ("export controls") or use * as a wildcard (chip*)."""

    any: tuple[str, ...] = Field((), description="At least one of these terms must appear.")
    all: tuple[str, ...] = Field((), description="Every one of these terms must appear.")
    groups: tuple[tuple[str, ...], ...] = Field(
        (),
        description="Another way to match, beside `any`/`all`: lists of terms (OR-groups); an article with a term from every list matches, e.g. a control word (`ban*`, `export*`) and a thing the beat controls (`chip*`, `gallium`). Lets one topic say \"a control on one of these things\" without an AND that loses differently worded reports.",
    )
    none: tuple[str, ...] = Field((), description="None of these terms may appear.")
    fields: tuple[Literal["title", "summary", "text"], ...] = Field(("title", "summary", "text"), description="Fields the terms are looked for in.")
    title_weight: float = Field(2.0, description="Score of a term found in the title (summary and text count 1).")
    min_score: float = Field(1.0, description="Minimum score for an article to match the topic.")

    @field_validator("any", "all", "none")
    @classmethod
    def _terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_terms(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for number, group in enumerate(value):
            if not group:
                raise ValueError(f"group {number} is empty: give it at least one term, or remove it")
            _check_terms(group)
        return value


class ImpactSignal(Strict):
    name: str = Field(description="Reason shown in alerts, e.g. 'regulatory action'.")
    terms: tuple[str, ...] = Field(description="Terms (phrases, * wildcards) that trigger the signal.")
    weight: float = Field(description="Points added to the impact score when the signal is present. Signals sharing a name form tiers: only the strongest present counts. A term found only in the body (not a headline or lead) counts half. A negative weight (e.g. commentary) counts only when most headlines carry the term.")

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_terms(value)


class Impact(Strict):
    signals: tuple[ImpactSignal, ...] | None = Field(None, description="Your own impact signals, summed into a score (for a topic other than export controls). Without them the analyst's rubric for export controls rates each development: a broad binding rule 9, Entity List additions, licence requirements on named products, large penalties, allies' and China's controls 7–8, clarifications, proposals and smaller actions 5–6, inquiries 4, commentary 2.")
    primary_source_weight: float = Field(1.5, description="With `signals`: points when a primary source (government, the company itself) reports it.")
    coverage_weight: float = Field(0.5, description="With `signals`: points per extra independent source beyond the second (small on purpose).")
    coverage_cap: float = Field(1.0, description="With `signals`: maximum points from coverage volume.")
    money_weight: float = Field(1.0, ge=0, description="With `signals`: multiplier for money amounts: 0.5 point from $1M, 1 from $10M, 1.5 from $100M, 2 from $1B (other currencies converted roughly); 0 turns money off.")


class Topic(Strict):
    id: str = Field(pattern=_ID, description="Stable identifier used by routes and sources.")
    name: str = Field(description="Human name shown in alerts.")
    rules: TopicRules = Field(default_factory=TopicRules.model_construct, description="Relevance rules.")
    min_sources: int = Field(DEFAULT_MIN_SOURCES, ge=1, description="Independent sources needed before a development is alerted.")
    impact: Impact = Field(default_factory=Impact.model_construct, description="Impact scoring signals and weights.")


class QuietHours(Strict):
    start: str = Field(pattern=r"^\d{2}:\d{2}$", description="Start, HH:MM local time.")
    end: str = Field(pattern=r"^\d{2}:\d{2}$", description="End, HH:MM local time.")
    timezone: str = Field("UTC", description="IANA timezone, e.g. Europe/Berlin.")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        return _check_clock_time(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)


class Route(Strict):
    topic: str = Field(description="Topic id whose developments go to `channel`.")
    channel: str = Field(description="Slack channel name or id.")
    oncall_channel: str | None = Field(None, description="Also post developments with impact ≥ `oncall_threshold` here.")
    oncall_threshold: int = Field(8, ge=1, le=10, description="Impact that also goes to the on-call channel.")
    mention: str | None = Field(None, description="Mention added to on-call posts, e.g. `<!subteam^S0123>`; configured here, never taken from feeds.")
    quiet_hours: QuietHours | None = Field(None, description="Non-urgent alerts wait until the end of quiet hours.")


class Slack(Strict):
    token: str | None = Field(None, description="Bot token, from the environment: `${SLACK_BOT_TOKEN}`. Without token or webhook, alerts go to the console.")
    webhook_url: str | None = Field(None, description="Incoming-webhook URL (no updates or threads in this mode), from the environment.")
    base_url: str = Field("https://slack.com/api/", description="Web API base URL; point it at a local server for tests and staging.")
    ops_channel: str | None = Field(None, description="Channel for source-health alerts.")
    timeout: Duration = Field(timedelta(seconds=15), description="Timeout of one Slack API call.")

    _timeout = field_validator("timeout")(at_least(MIN_TIMEOUT, ""))

    @field_validator("webhook_url", "base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return value if value is None else _check_http_url(value)


class Http(Strict):
    user_agent: str = Field(
        "exportwatch-monitor/0.1 (+https://github.com/exportwatch/monitor)",
        description="User-Agent sent with every request; include a contact URL.",
    )
    connect_timeout: Duration = Field(timedelta(seconds=10), description="Time to establish a connection.")
    read_timeout: Duration = Field(timedelta(seconds=20), description="Longest wait for the next bytes.")
    deadline: Duration = Field(timedelta(seconds=60), description="Total time one request may take, whatever the server does.")
    max_body: Size = Field(10_000_000, ge=1_000, le=1_000_000_000, description="Largest body accepted, after decompression (e.g. 10MB; 1KB to 1GB).")
    max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed before giving up.")
    concurrency: int = Field(50, ge=1, description="Requests in flight at once, over all hosts.")
    per_host: int = Field(4, ge=1, description="Requests in flight at once to one host.")
    allow_private_addresses: bool = Field(False, description="Switch the address guard off for every source: any request may reach loopback, private and link-local addresses. For tests, demos and a monitor that only reads an intranet; to trust one source, use `sources[].allow_private`.")
    backoff_max: Duration = Field(timedelta(hours=6), description="Longest backoff for a failing source.")
    article_min_interval: Duration = Field(timedelta(seconds=2), description="Shortest time between two article-page requests to one host (politeness).")
    article_pages_per_poll: int = Field(20, ge=0, le=1000, description="Most article pages one poll fetches for items whose feed gives only a headline or teaser (0: none); the rest are stored from the feed alone and the poll report says how many were skipped.")
    article_time_per_poll: Duration = Field(timedelta(seconds=30), description="Longest time one poll spends fetching article pages (pages of different hosts are fetched in parallel, one host's in turn); what is left is skipped and reported.")

    _timeouts = field_validator("connect_timeout", "read_timeout", "deadline")(at_least(MIN_TIMEOUT, ""))


class Store(Strict):
    url: str = Field("sqlite:///monitor.db", description="SQLAlchemy URL: `sqlite:///path.db` (relative to the config file) or `postgresql+psycopg://...`.")
    retention: Duration = Field(timedelta(days=90), description="Articles older than this are pruned; developments and alerts keep their summaries.")
    forget_after: Duration = Field(timedelta(days=365), description="Pruned articles older than this are deleted with their dedup keys, which bounds the database; keep it well beyond how long any feed lists an item (at least `retention`).")

    @model_validator(mode="after")
    def _forget_after_retention(self) -> Store:
        if self.forget_after < self.retention:
            raise ValueError("store.forget_after must not be shorter than store.retention")
        return self


class Digest(Strict):
    id: str = Field(pattern=_ID, description="Identifier, used to avoid posting one period twice.")
    cron: str = Field(description="Cron expression (five fields), e.g. `0 8 * * 1-5`.")
    timezone: str = Field("UTC", description="IANA timezone of the cron expression.")
    channel: str = Field(description="Channel the digest is posted to.")
    include: tuple[Literal["corroborated", "single_source", "failing_sources"], ...] = Field(
        ("corroborated", "single_source", "failing_sources"), description="Sections of the digest."
    )
    topics: tuple[str, ...] | None = Field(None, description="Only these topics (default: all).")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)


class Health(Strict):
    failures_before_alert: int = Field(3, ge=1, description="Consecutive failed cycles before a source-health alert.")
    silent_factor: float = Field(10.0, gt=1, description="A source silent for this many times its usual cadence is reported.")


class Server(Strict):
    enabled: bool = Field(False, description="Serve /metrics, /healthz and /readyz.")
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(9108, ge=1, le=65535, description="Port to bind.")


class Cluster(Strict):
    window: Duration = Field(timedelta(days=3), description="How long a development stays open to new articles.")
    half_life: Duration = Field(
        timedelta(hours=6),
        description="How fast the evidence of time fades: a report published this long after a development's latest report (or before its first) needs twice the textual similarity to join it. Breaking news wants hours; a regulatory beat, where the agency, the wires, the trade press and law-firm alerts follow over a week or more, wants days.",
    )
    grace: Duration = Field(
        timedelta(0),
        description="How long after a development's reports time does not count against a new report at all (the news cycle of the beat); `half_life` applies after it. A regulatory beat, whose reports come over a week, wants about 7d.",
    )
    storyline_window: Duration = Field(timedelta(days=60), description="How far back related developments are linked into a storyline.")
    alert_max_age: Duration = Field(
        timedelta(days=2),
        description="A development whose newest article is older than this is stored and shown in digests but not alerted, so a first start or a feed's backlog does not flood the channel.",
    )
    alert_hold: Duration = Field(
        timedelta(seconds=60),
        description="How long the first alert of a development waits when a similar development is taking articles in the same minutes (two halves of one story that a bridging article usually merges within seconds): people then get one message, not two. Alerts without such a neighbour go at once; `run --once` sends held alerts at the end of its run; 0 never waits.",
    )


class Distributed(Strict):
    broker_url: str | None = Field(
        None,
        description="Celery broker of the distributed mode (`amqp://…` for RabbitMQ, `redis://…`), from the environment: `${MONITOR_BROKER_URL}`. Unset: one process does everything (`monitor run`).",
    )
    batch_size: int = Field(50, ge=1, le=50, description="Most sources in one `poll_batch` task. A host's due sources go in one batch (at most one batch per host is in flight); hosts with few sources share a batch, so a worker has work for its whole `http.concurrency`.")
    queue: str = Field("monitor.poll", pattern=r"^[A-Za-z0-9_.:-]{1,100}$", description="Broker queue of the `poll_batch` tasks (several monitors can share one broker with a queue each).")
    claim_timeout: Duration = Field(timedelta(minutes=5), description="How long a dispatched batch may take before the leader's sweeper dispatches its sources again (the old claim can then commit nothing).")


class Settings(Strict):
    """The whole of feeds.yaml."""

    defaults: Defaults = Field(default_factory=Defaults.model_construct, description="Values sources inherit.")
    http: Http = Field(default_factory=Http.model_construct, description="Fetching limits and identity.")
    store: Store = Field(default_factory=Store.model_construct, description="Where articles and alerts are kept.")
    slack: Slack = Field(default_factory=Slack.model_construct, description="Slack delivery.")
    sources: tuple[Source, ...] = Field((), description="Feeds and pages to poll.")
    topics: tuple[Topic, ...] = Field((), description="Subjects to watch.")
    routes: tuple[Route, ...] = Field((), description="Topic → channel.")
    digests: tuple[Digest, ...] = Field((), description="Scheduled digests for on-call staff.")
    health: Health = Field(default_factory=Health.model_construct, description="Source-health alerting.")
    server: Server = Field(default_factory=Server.model_construct, description="Metrics and health HTTP server.")
    cluster: Cluster = Field(default_factory=Cluster.model_construct, description="Grouping articles into developments.")
    distributed: Distributed = Field(default_factory=Distributed.model_construct, description="Running on several machines (Celery and PostgreSQL); unused by `monitor run` on one machine.")

    def topic(self, topic_id: str) -> Topic | None:
        """The topic with this id (None for one no longer configured)."""
        return next((t for t in self.topics if t.id == topic_id), None)

    def min_sources(self, topic_id: str) -> int:
        """Independent sources a development of this topic needs before it is alerted."""
        topic = self.topic(topic_id)
        return topic.min_sources if topic is not None else DEFAULT_MIN_SOURCES
