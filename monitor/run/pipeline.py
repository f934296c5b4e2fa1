"""The one place where the stages meet. Read `poll_source` top to bottom to learn the system.

fetch → parse → normalize → relevance → (full text) → dedup → cluster → corroborate →
score → timeline → decide → outbox. Everything between fetch and the outbox is a plain
function over plain data; this module passes the clock, the configuration and the store's
answers in, and writes each source's results in one transaction, so a crash or a SIGTERM
never leaves half a batch behind.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from alerts import decide as decide_stage
from alerts import health_alerts
from monitor.clock import utc_now
from monitor.config.addresses import AddressPolicy
from monitor.config.settings import Settings
from monitor.config.sources import EffectiveSource, effective_sources
from monitor.ingest import fulltext, health, normalize, relevance
from monitor.ingest.fetch import Fetcher
from monitor.ingest.parse import parse
from monitor.models import (
    ActiveSilence,
    Alert,
    Article,
    Development,
    DevelopmentState,
    FetchResult,
    ParseResult,
    SourceHealth,
    TopicMatch,
)
from monitor.ops import metrics
from monitor.store import Store, articles, cache, developments, outbox, silences, sources
from monitor.story import corroborate, score, timeline
from monitor.story.analysis import AnalysisConfig, Analyzer, IdSource, Outcome

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Called first in an analysis transaction: the distributed owner checks its fence (raising
# when another owner holds its shard) and marks the intake done, so both commit with the
# articles or not at all.
InTransaction = Callable[[Connection], None]


@dataclass
class Runtime:
    """What every poll needs, built once at start and after each config reload."""

    settings: Settings
    store: Store
    fetcher: Fetcher
    analyzer: Analyzer
    topics: relevance.CompiledTopics
    sources: dict[str, EffectiveSource]
    clock: Clock = utc_now
    rng: random.Random = field(default_factory=random.Random)
    # Source health as last committed. This process is the store's only writer of source
    # state, so the copy saves a read per poll (most polls find nothing new).
    health: dict[str, SourceHealth] = field(default_factory=dict)
    stored: cache.StoredCopies = field(default_factory=cache.StoredCopies)
    # Parsing, analysis and writing run in worker threads, so a long parse never stalls the
    # event loop (scheduler, relay, /healthz); one poll at a time analyses and writes, as
    # when they ran on the loop.
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The distributed owner's ids from PostgreSQL sequences; None: the analyzer's counters.
    ids: IdSource | None = None

    def apply_settings(self, settings: Settings) -> None:
        """Swap in a reloaded configuration; the store and the in-memory indexes stay.
        Everything is built before anything is swapped, so a failure changes nothing."""
        topics = relevance.compile_topics(settings.topics)
        sources_in_force = {s.id: s for s in effective_sources(settings)}
        config = analysis_config(settings)
        self.settings, self.topics, self.sources = settings, topics, sources_in_force
        self.analyzer.config = config


@dataclass(frozen=True)
class PollReport:
    """What one poll of one source did, for logs, `monitor run --once` and tests."""

    source_id: str
    outcome: str  # "new", "seen" (nothing new), "unchanged" (not modified), "failed", "skipped"
    items: int = 0
    relevant: int = 0
    new_articles: int = 0
    alerts: int = 0
    error: str = ""
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the poll chose not to do, e.g. article pages skipped


def analysis_config(settings: Settings) -> AnalysisConfig:
    return AnalysisConfig.from_settings(settings)


def build_runtime(settings: Settings, store: Store, fetcher: Fetcher, *, clock: Clock = utc_now) -> Runtime:
    """Wire a runtime and rebuild the in-memory indexes from what the store already holds."""
    analyzer = restore_analyzer(settings, store, clock())
    with store.connect() as conn:
        known_health = sources.load_all_health(conn)
    return Runtime(
        health=known_health,
        settings=settings,
        store=store,
        fetcher=fetcher,
        analyzer=analyzer,
        topics=relevance.compile_topics(settings.topics),
        sources={s.id: s for s in effective_sources(settings)},
        clock=clock,
    )


def restore_analyzer(settings: Settings, store: Store, now: datetime, *, ids: IdSource | None = None) -> Analyzer:
    config = analysis_config(settings)
    since = now - settings.cluster.window
    with store.connect() as conn:
        max_article, max_development = store.max_ids(conn)
        analyzer = Analyzer(config, next_article_id=max_article + 1, next_development_id=max_development + 1)
        analyzer.restore(
            articles.iter_recent_articles(conn, since),
            developments.iter_open_developments(conn, since),
        )
    analyzer.ids = ids
    return analyzer


async def poll_source(source: EffectiveSource, rt: Runtime) -> PollReport:
    """Fetch one source and carry what is new all the way to the outbox."""
    polled = await fetch_and_gather(source, rt)
    if isinstance(polled, PollReport):
        return polled
    return await analyse(source, polled, rt)


async def fetch_and_gather(source: EffectiveSource, rt: Runtime) -> Gathered | PollReport:
    """The fetch side of one poll: fetch, then `gather`; a source backing off is skipped."""
    previous = rt.health.get(source.id)
    if previous is None:
        with rt.store.connect() as conn:
            previous = sources.get_health(conn, source.id)
    if previous.next_due and previous.next_due > rt.clock() and previous.consecutive_failures:
        return PollReport(source.id, "skipped", error="backing off after failures")
    result = await fetch(source, previous, rt)
    gathered = await gather(source, result, previous, rt)
    metrics.observe_fetch(source.id, fetch_outcome(result), result.elapsed)
    return gathered


async def fetch(source: EffectiveSource, previous: SourceHealth, rt: Runtime) -> FetchResult:
    return await rt.fetcher.fetch(
        source.id,
        source.url,
        etag=previous.etag,
        last_modified=previous.last_modified,
        body_hash=previous.body_hash,
        kind=source.kind,
        allow=source.addresses,
    )


async def process(source: EffectiveSource, result: FetchResult, previous: SourceHealth, rt: Runtime) -> PollReport:
    """Everything after a fetch (`analyse` counts the poll in the metrics)."""
    report = await _process(source, result, previous, rt)
    metrics.observe_fetch(source.id, fetch_outcome(result), result.elapsed)
    return report


def fetch_outcome(result: FetchResult) -> str:
    """The `outcome` label of monitor_fetches_total: ok, not_modified or the error kind."""
    if result.error_kind is not None:
        return result.error_kind.value
    return "not_modified" if result.not_modified else "ok"


async def _process(source: EffectiveSource, result: FetchResult, previous: SourceHealth, rt: Runtime) -> PollReport:
    """One poll's stages after the fetch, in order. The fetch side (`gather`: parse →
    normalize → relevance → exact-dedup pre-filter → full text) needs no memory of earlier
    polls and writes nothing; the analysis side (`analyse`: final exact dedup → dedup →
    cluster → corroborate → score → timeline → decide → outbox, one transaction) owns the
    in-memory indexes. In one process they run back to back; in the distributed mode fetch
    workers run the first, the `intake` table carries `Gathered`, an analysis owner runs the
    second."""
    gathered = await gather(source, result, previous, rt)
    return await analyse(source, gathered, rt)


@dataclass
class Gathered:
    """What the fetch side found in one poll of one source, for the analysis side."""

    source_id: str
    health: SourceHealth  # after this poll (validators, failures, next due time)
    outcome: str  # "unchanged" (not modified), "failed" (fetch or parse), "read"
    fresh: list[Article] = field(default_factory=list)  # matched a topic, not stored, oldest first
    # Near misses (no rule matched, some partly did), with the topics they partly matched.
    missed: list[tuple[Article, tuple[str, ...]]] = field(default_factory=list)
    items: int = 0
    relevant: int = 0  # matched by the rules, with the near misses their full text rescued
    error: str = ""
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the poll chose not to do (article pages skipped)


async def gather(source: EffectiveSource, result: FetchResult, previous: SourceHealth, rt: Runtime) -> Gathered:
    """The fetch side: parse → normalize → relevance → exact-dedup pre-filter → full text."""
    now = rt.clock()
    backoff_max = rt.settings.http.backoff_max
    source_health = health.record_fetch(previous, result, source.interval, now, backoff_max=backoff_max, rng=rt.rng)
    if not result.ok or result.not_modified:
        if not result.ok:
            log.warning(
                "fetch failed",
                extra={"source": source.id, "error_kind": result.error_kind.value if result.error_kind else "", "error": result.error},
            )
        return Gathered(source.id, source_health, "unchanged" if result.ok else "failed", error=result.error or "")

    # CPU work off the event loop: a hostile feed must not stall the scheduler or /healthz.
    parsed, found = await asyncio.to_thread(read_articles, source, result, now)
    # A feed that needed repair and gave nothing usable is broken, whatever the parser salvaged.
    broken = parsed.failed or (bool(parsed.warnings) and not found)
    if broken:
        # `previous`, not `source_health`: the successful fetch has already reset the count.
        source_health = health.record_parse_failure(
            previous, "; ".join(parsed.warnings), source.interval, now, backoff_max=backoff_max, rng=rt.rng
        )
        log.warning("parse failed", extra={"source": source.id, "warnings": list(parsed.warnings)})
    elif parsed.warnings:  # items capped, dates not understood: said, with the source
        log.warning("feed read with warnings", extra={"source": source.id, "warnings": list(parsed.warnings)})
    near_topics = await asyncio.to_thread(lambda: {id(a): read_relevance(a, source, rt) for a in found})
    relevant = [a for a in found if a.topics]
    near = [a for a in found if not a.topics and near_topics[id(a)]]
    # Oldest first, so "first seen", storylines and timelines follow the order events happened.
    # What the store already holds needs no page: a pre-filter (the final check is `analyse`'s).
    candidates = sorted(await asyncio.to_thread(unseen, relevant + near, rt), key=lambda a: a.published)
    pages = fulltext.PageBudget.from_settings(rt.settings.http)
    fresh = await with_full_text([a for a in candidates if a.topics], rt, source.addresses, pages)
    # A near miss gets its full text (what is left of the budget) before a final no.
    missed = await near_misses_read_in_full([a for a in candidates if not a.topics], rt, source, pages)
    rescued = [a for a in missed if a.topics]
    return Gathered(
        source.id,
        source_health,
        "failed" if broken else "read",
        fresh=fresh + rescued,
        missed=[(a, near_topics[id(a)]) for a in missed if not a.topics],
        items=len(parsed.items),
        relevant=len(relevant) + len(rescued),
        error="; ".join(parsed.warnings) if broken else "",
        warnings=parsed.warnings,
        notes=tuple(note for note in (pages.summary(),) if note),
    )


async def analyse(
    source: EffectiveSource,
    gathered: Gathered,
    rt: Runtime,
    *,
    in_transaction: InTransaction | None = None,
    write_health: bool = True,
) -> PollReport:
    """The analysis side of one poll: final exact dedup → dedup → cluster → corroborate →
    score → timeline → decide → outbox, and the source's health, in one transaction.

    `in_transaction` runs first in the transaction (see `InTransaction`); `write_health=False`
    leaves the health to the fetch worker, which wrote it."""
    return (await analyse_together([(source, gathered)], rt, in_transaction=in_transaction, write_health=write_health))[0]


async def analyse_together(
    polls: Sequence[tuple[EffectiveSource, Gathered]],
    rt: Runtime,
    *,
    in_transaction: InTransaction | None = None,
    write_health: bool = True,
) -> list[PollReport]:
    """`analyse` for several polls, in their order, in one transaction: all commit or none.

    The analysis owner gives it runs of polls that found nothing new (95 % of a steady cycle),
    which then cost one transaction together instead of one each."""
    joined: list[list[Article]] = [[] for _ in polls]
    stored: list[list[Article]] = [[] for _ in polls]

    def analyse_and_save() -> list[int]:
        now = rt.clock()
        try:
            with rt.store.transaction() as conn:
                if in_transaction is not None:
                    in_transaction(conn)
                queued = [
                    _analyse_in(conn, source, gathered, rt, now, stored[i], joined[i], write_health)
                    for i, (source, gathered) in enumerate(polls)
                ]
        except Exception:
            rt.stored.clear()  # rolled back: what it holds may not be what the store has
            for source, _ in polls:
                rt.health.pop(source.id, None)
            if any(gathered.fresh or gathered.missed for _, gathered in polls):
                # The analyzer's memory already holds these articles but the store rolled back:
                # rebuild it from the store, or the next poll would see them as copies of themselves.
                rt.analyzer = restore_analyzer(rt.settings, rt.store, now, ids=rt.ids)
            raise
        for source, gathered in polls:
            rt.health[source.id] = gathered.health  # committed
        return queued

    written = await _write(rt, [source.id for source, _ in polls], analyse_and_save)
    if isinstance(written, str):
        reports = [PollReport(source.id, "failed", error=written) for source, _ in polls]
        for report in reports:
            rt.health.pop(report.source_id, None)
            metrics.observe_poll(report)
        return reports
    reports = [
        _analysed_report(gathered, alerts, stored[i], joined[i]) for i, ((_, gathered), alerts) in enumerate(zip(polls, written, strict=True))
    ]
    for report in reports:
        metrics.observe_poll(report)
    return reports


def _analyse_in(
    conn: Connection,
    source: EffectiveSource,
    gathered: Gathered,
    rt: Runtime,
    now: datetime,
    stored: list[Article],
    joined: list[Article],
    write_health: bool,
) -> int:
    """One poll's analysis inside the caller's transaction; how many alerts it queued."""
    # The final exact-dedup check, inside the write: nothing stored since the fetch side
    # looked (another source's poll, another worker) is stored twice.
    keep = {id(a) for a in unseen([*gathered.fresh, *(a for a, _ in gathered.missed)], rt, conn)}
    fresh = [a for a in gathered.fresh if id(a) in keep]
    missed = [(a, topics) for a, topics in gathered.missed if id(a) in keep]
    outcomes = [rt.analyzer.add(article, now) for article in fresh]
    outcomes += join_developments(missed, outcomes, rt, now, joined)
    stored.extend(fresh)
    return save_outcomes(conn, rt, source, gathered.health, now, outcomes, write_health=write_health)


def _analysed_report(gathered: Gathered, alerts: int, stored: list[Article], joined: list[Article]) -> PollReport:
    outcome = gathered.outcome
    if outcome == "read":
        outcome = "new" if stored or joined else "seen"
    return PollReport(
        gathered.source_id,
        outcome,
        items=gathered.items,
        relevant=gathered.relevant + len(joined),
        new_articles=len(stored) + len(joined),
        alerts=alerts,
        error=gathered.error,
        warnings=gathered.warnings,
        notes=tuple(note for note in (*gathered.notes, _joined_note(joined)) if note),
    )


async def _write(rt: Runtime, source_ids: Sequence[str], write: Callable[[], list[int]]) -> list[int] | str:
    """Run polls' analysis and write in a worker thread, one write at a time.

    A store that refuses the write (disk full, locked, another monitor's rows in the way)
    rolls the polls back whole and loses nothing stored: that is one line for the operator —
    in the log and the poll reports — not a traceback, and the next poll fetches it again.
    Returns the alerts each poll queued, or why the store refused.
    """
    async with rt.write_lock:
        try:
            return await asyncio.to_thread(write)
        except (SQLAlchemyError, OSError) as exc:
            reason = store_failure(exc)
            extra: dict[str, object] = {"source": source_ids[0], "error": reason}
            if len(source_ids) > 1:
                extra["polls"] = len(source_ids)
            log.error("could not write to the store", extra=extra)
            return reason


def store_failure(exc: BaseException) -> str:
    """One sentence for a failed write."""
    detail = getattr(exc, "orig", None) or exc
    first = (str(detail).strip().splitlines() or [type(detail).__name__])[0][:200]
    if isinstance(exc, IntegrityError):
        return (
            f"the store already holds rows this poll meant to add ({first}): is another monitor "
            "writing to this store? Run one monitor per store. Nothing from this poll was stored"
        )
    return f"could not write to the store: {first}. Nothing from this poll was stored; the next poll fetches it again"


def read_articles(source: EffectiveSource, result: FetchResult, now: datetime) -> tuple[ParseResult, list[Article]]:
    """parse → normalize: the fetched body as articles attributed to their outlet."""
    parsed = parse(result, kind=source.kind, selectors=source.selectors, max_items=source.max_items)
    found = normalize.normalize_items(
        parsed.items,
        source_id=source.id,
        outlet=source.outlet,
        owner=source.owner,
        tier=source.tier,
        fetched_at=result.fetched_at,
        now=now,
    )
    return parsed, found


def with_topics(article: Article, source: EffectiveSource, rt: Runtime) -> Article:
    article.topics = relevance.match_topics(article, rt.topics, allowed_topics=source.topics)
    return article


def read_relevance(article: Article, source: EffectiveSource, rt: Runtime) -> tuple[str, ...]:
    """Set the topics the rules match; return the topics the article only partly matched
    (a near miss, which may still report a development of them), or ()."""
    verdicts = relevance.evaluate_topics(article, rt.topics, allowed_topics=source.topics)
    article.topics = tuple(TopicMatch(v.topic_id, v.score, v.explanation) for v in verdicts if v.matched)
    return () if article.topics else tuple(v.topic_id for v in verdicts if v.partial)


async def near_misses_read_in_full(
    missed: Sequence[Article], rt: Runtime, source: EffectiveSource, budget: fulltext.PageBudget
) -> list[Article]:
    """Near misses with a thin text get their page (from the poll's budget, after the
    relevant items; a page already read for a waiting item is not fetched again), then the
    topic rules read them once more."""
    thin = []
    for article in missed:
        known = rt.analyzer.near_misses.text_for(article.canonical_url)
        if known:
            article.text = known
        elif fulltext.needs_full_text(article):
            thin.append(article)
    if thin:
        await with_full_text(thin, rt, source.addresses, budget)
        for article in thin:
            if article.text:
                with_topics(article, source, rt)
    return list(missed)


def join_developments(
    missed: Sequence[tuple[Article, tuple[str, ...]]],
    outcomes: Sequence[Outcome],
    rt: Runtime,
    now: datetime,
    joined: list[Article],
) -> list[Outcome]:
    """Relevance by development: a near miss that reports an open development of a topic
    it partly matched joins it (and counts as a source); the others wait a while for one.
    Near misses that were waiting join the developments this poll touched."""
    added = []
    for article, topics in missed:
        match = rt.analyzer.join(article, topics, now)
        if match is None:
            rt.analyzer.near_misses.add(article, topics, now)
            continue
        article.topics = (match,)
        added.append(rt.analyzer.add(article, now))
        joined.append(article)
    touched = {o.development.id for o in (*outcomes, *added) if o.development.id is not None}
    for article in rt.analyzer.adopt(touched, now):
        added.append(rt.analyzer.add(article, now))
        joined.append(article)
    for article in joined:
        log.info("joined by development", extra={"article": article.title[:120], "why": article.topics[0].explanation})
    return added


def _joined_note(joined: Sequence[Article]) -> str:
    if not joined:
        return ""
    n = len(joined)
    return f"{n} report{'s' if n != 1 else ''} the topic rules missed joined the development{'s' if n != 1 else ''} {'they report' if n != 1 else 'it reports'}"


async def with_full_text(
    found: Sequence[Article], rt: Runtime, allow: AddressPolicy | None = None, budget: fulltext.PageBudget | None = None
) -> list[Article]:
    """Fetch the article page for relevant items whose feed gives only a headline or teaser,
    within the poll's page budget (what is skipped is recorded in it)."""
    budget = budget or fulltext.PageBudget.from_settings(rt.settings.http)

    def fetch_page(article: Article) -> Awaitable[FetchResult]:
        return rt.fetcher.fetch(article.source_id, article.url, kind="article", allow=allow)

    wanted = [a for a in found if fulltext.needs_full_text(a)]
    await fulltext.fetch_full_texts(wanted, fetch_page, budget, fulltext.extract_in_thread)
    return list(found)


def unseen(found: Sequence[Article], rt: Runtime, conn: Connection | None = None) -> list[Article]:
    """Drop exact duplicates: already stored, or repeated within this batch.

    Within one source an item is known by its identity (`normalize.identity_key`: GUID →
    GUID+URL → URL → title+content), so items that share a page URL but not a GUID (a feed
    whose items all link to its home page, or differ only by #fragment) are different
    items. The same title and text is the same article from any source; so is a page URL
    another source already brought (an aggregator relaying it)."""
    if not found:
        return []
    if conn is None:
        with rt.store.connect() as reader:
            return unseen(found, rt, reader)
    known = articles.find_known(
        conn,
        canonical_urls=[a.canonical_url for a in found],
        guids=[(a.source_id, a.guid) for a in found if a.guid],
        content_hashes=[a.content_hash for a in found],
    )
    sources_of_url: dict[str, set[str]] = {}
    for url, source_id in known.url_sources:
        sources_of_url.setdefault(url, set()).add(source_id)
    fresh: list[Article] = []
    for article in found:
        guid = (article.source_id, article.guid)
        elsewhere = sources_of_url.get(article.canonical_url, set()) - {article.source_id}
        if (
            (article.canonical_url and elsewhere)
            or (article.guid and guid in known.guids)
            or article.content_hash in known.content_hashes
        ):
            continue
        # Later copies within this same batch are duplicates too.
        known.content_hashes.add(article.content_hash)
        if article.guid:
            known.guids.add(guid)
        fresh.append(article)
    return fresh


def save_results(
    rt: Runtime,
    source: EffectiveSource,
    source_health: SourceHealth,
    now: datetime,
    outcomes: Sequence[Outcome],
) -> int:
    """One transaction: developments, articles, the alerts they cause, and source health.

    Returns how many alert rows were queued (a row whose dedup key exists is not queued twice).
    """
    try:
        with rt.store.transaction() as conn:
            queued = save_outcomes(conn, rt, source, source_health, now, outcomes)
    except BaseException:
        rt.stored.clear()  # rolled back: what it holds may not be what the store has
        raise
    rt.health[source.id] = source_health  # committed
    return queued


def save_outcomes(
    conn: Connection,
    rt: Runtime,
    source: EffectiveSource,
    source_health: SourceHealth,
    now: datetime,
    outcomes: Sequence[Outcome],
    *,
    write_health: bool = True,
) -> int:
    """`save_results` within the caller's transaction (which clears `rt.stored` on a rollback)."""
    touched = touched_developments(outcomes)
    absorbed = {d.id: d for change in touched.values() for d in change.merged if d.id is not None}
    stored = rt.stored
    previous = {dev_id: stored.stored_development(conn, dev_id) for dev_id in touched}
    # Foreign keys are checked at commit, so articles can go in before their developments,
    # and each development is written once, after it is scored. An absorbed development is
    # stored as MERGED even when this same batch created it.
    new_articles = [o.article for o in outcomes]
    articles.insert_articles(conn, new_articles)
    stored.wrote_articles(new_articles, {*absorbed, *(d for d, c in touched.items() if c.merged)})
    for dev in absorbed.values():
        developments.upsert_development(conn, dev)
        stored.wrote_development(dev)
    for dev_id, change in touched.items():
        for gone in change.merged:
            assert gone.id is not None
            articles.reassign_development(conn, gone.id, dev_id)
            for line in outbox.fold_merged(conn, gone.id, dev_id, now):
                log.info("alerts of a merged development", extra={"kept": dev_id, "absorbed": gone.id, "outcome": line})
    active = _ActiveSilences(conn, now)
    alerts: list[Alert] = []
    for dev_id, change in touched.items():
        if dev_id not in absorbed:
            alerts.extend(refresh_development(conn, change, previous[dev_id], rt, active, source, now))
    alerts.extend(health_alert(conn, source, source_health, rt, now))
    if write_health:
        sources.save_health(conn, source_health)
    return sum(1 for alert in alerts if outbox.enqueue(conn, alert) is not None)


class _ActiveSilences:
    """The silences in force, read once per transaction and only when a decision needs them
    (most developments touched are single-source, and decide() reads none for those)."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn, self._now = conn, now
        self._found: list[ActiveSilence] | None = None

    def __call__(self) -> list[ActiveSilence]:
        if self._found is None:
            self._found = silences.active_silences(self._conn, self._now)
        return self._found


@dataclass
class DevelopmentChange:
    """Everything one batch did to one development (a batch may add several articles)."""

    development: Development
    features: dict
    new_article_ids: list[int] = field(default_factory=list)
    merged: list[Development] = field(default_factory=list)
    forming: tuple[int, float] | None = None  # a similar development forming: hold the first alert


def touched_developments(outcomes: Sequence[Outcome]) -> dict[int, DevelopmentChange]:
    """The last outcome per development carries its newest state; article ids accumulate."""
    changes: dict[int, DevelopmentChange] = {}
    for outcome in outcomes:
        dev_id = outcome.development.id
        assert dev_id is not None and outcome.article.id is not None
        change = changes.get(dev_id)
        if change is None:
            change = changes[dev_id] = DevelopmentChange(outcome.development, outcome.features)
        # The decision is not kept: refresh_development recomputes it from every stored member.
        change.development, change.features = outcome.development, outcome.features
        change.new_article_ids.append(outcome.article.id)
        change.merged.extend(outcome.merged)
        change.forming = change.forming or outcome.forming
    return changes


def refresh_development(
    conn: Connection,
    change: DevelopmentChange,
    previous: Development | None,
    rt: Runtime,
    active: Callable[[], Sequence[ActiveSilence]],
    source: EffectiveSource,
    now: datetime,
) -> list[Alert]:
    """Score, place in a storyline, store, and decide what to tell people."""
    development = change.development
    assert development.id is not None
    topic = rt.settings.topic(development.topic)
    members = rt.stored.stored_members(conn, development.id, now - rt.settings.store.retention)
    decision = corroborate.corroborate(members, rt.settings.min_sources(development.topic))
    if topic is not None:
        rating = score.rate(members, decision, topic)
        development.impact, development.kind = rating.impact, rating.kind
    development.sentiment = score.sentiment(development.headline, development.lead)
    development.state, development.independent = decision.state, decision.independent
    development.decision_reason, development.decision = decision.reason, decision
    # A development that joined no storyline yet tries again as it grows, and one whose
    # kind changed looks again: its kind (and its words) settle with its reports.
    kind_changed = previous is not None and previous.kind != development.kind
    if development.storyline_id in (None, development.id) or kind_changed:
        development.storyline_id = place_in_storyline(conn, development, topic, rt, now)
    developments.upsert_development(conn, development, change.features)
    rt.stored.wrote_development(development)
    if now - development.last_seen > rt.settings.cluster.alert_max_age:
        log.info(
            "not alerting a stale development",
            extra={"development": development.id, "last_seen": development.last_seen.isoformat(), "reason": "older than cluster.alert_max_age"},
        )
        return []
    if decision.state is not DevelopmentState.CORROBORATED:
        return []  # decide() alerts nothing before corroboration: skip its store reads
    posted = outbox.parent_channels(conn, development.id)
    silenced = active()
    try:
        return decide_stage.decide(
            development,
            decision,
            decide_stage.PreviousState.from_development(previous),
            rt.settings.routes,
            silenced,
            now=now,
            new_article_ids=change.new_article_ids,
            merged_from=[d.id for d in change.merged if d.id is not None],
            source_ids=sorted({a.source_id for a in members}),
            posted=posted,
            hold=decide_stage.hold_for(change.forming, rt.settings.cluster.alert_hold, now),
        )
    except Exception as exc:  # routing is configuration: it must never cost the stored articles
        log.error(
            "could not route the alert of a development; its articles are stored",
            extra={"development": development.id, "error": f"{type(exc).__name__}: {str(exc)[:200]}"},
        )
        return []


def place_in_storyline(conn: Connection, development: Development, topic, rt: Runtime, now: datetime) -> int:
    """The storyline id for a development: an earlier (or later) one's, else its own."""
    assert development.id is not None
    window = rt.settings.cluster.storyline_window
    # Bounded: the most recent candidates, so the cost per article stays flat as the store
    # grows (storyline_for examines no more than these anyway) ...
    candidates = {
        d.id: d
        for d in rt.stored.storyline_candidates(conn, now - window, development.topic, timeline.MAX_CANDIDATES)
        if d.id != development.id
    }
    # ... and the newest of its own kind, which may be years and thousands of developments back.
    if development.kind in timeline.SERIES_KINDS:
        for d in developments.latest_of_kind(conn, now - window, topic=development.topic, kind=development.kind, limit=timeline.KIND_CANDIDATES):
            if d.id != development.id:
                candidates.setdefault(d.id, d)
    # The topic's own words are shared by every development of the topic: they link nothing.
    common = (*topic.rules.any, *topic.rules.all, *(t for g in topic.rules.groups for t in g)) if topic else ()
    return (
        timeline.storyline_for(development, list(candidates.values()), window=window, now=now, common_terms=common)
        or development.id
    )


def health_alert(conn, source: EffectiveSource, source_health: SourceHealth, rt: Runtime, now: datetime) -> list[Alert]:
    channel = rt.settings.slack.ops_channel
    if not channel:
        return []
    event = health_alerts.health_transitions(
        source_health,
        alerted=sources.is_health_alerted(conn, source.id),
        expected_interval=source.interval,
        now=now,
        settings=rt.settings.health,
    )
    if event is None:
        return []
    sources.set_health_alerted(conn, source.id, event.failing)
    return [health_alerts.health_alert(event, channel=channel, now=now)]


__all__ = ["Gathered", "PollReport", "Runtime", "analyse", "analyse_together", "build_runtime", "fetch_and_gather", "gather", "poll_source", "process", "utc_now"]
