"""The one place where the stages meet. Read `poll_source` top to bottom to learn the system.

fetch → parse → normalize → relevance → (full text) → dedup → cluster → corroborate →
score → timeline → decide → outbox. Everything between fetch and the outbox is a plain
function over plain data; this module passes the clock, the configuration and the store's
answers in, and writes each source's results in one transaction, so a crash or a SIGTERM
never leaves half a batch behind.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from alerts import health_alerts
from monitor import decide as decide_stage
from monitor import extract, health, normalize, relevance, score, timeline
from monitor.analysis import AnalysisConfig, Analyzer, Outcome
from monitor.config import EffectiveSource, effective_sources
from monitor.fetch import Fetcher
from monitor.models import (
    Alert,
    Article,
    Development,
    DevelopmentState,
    ErrorKind,
    FetchResult,
    SourceHealth,
)
from monitor.parse import parse
from monitor.settings import Settings
from monitor.store import Store, articles, developments, outbox, silences, sources

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """What every poll needs, built once at start and after each config reload."""

    settings: Settings
    store: Store
    fetcher: Fetcher
    analyzer: Analyzer
    topics: relevance.CompiledTopics
    sources: dict[str, EffectiveSource]
    clock: Clock = utcnow
    rng: random.Random = field(default_factory=random.Random)

    def apply_settings(self, settings: Settings) -> None:
        """Swap in a reloaded configuration; the store and the in-memory indexes stay."""
        self.settings = settings
        self.topics = relevance.compile_topics(settings.topics)
        self.sources = {s.id: s for s in effective_sources(settings)}
        self.analyzer.config = analysis_config(settings)


@dataclass(frozen=True)
class PollReport:
    """What one poll of one source did, for logs, `monitor run --once` and tests."""

    source_id: str
    outcome: str  # "new", "unchanged", "failed", "skipped"
    items: int = 0
    relevant: int = 0
    new_articles: int = 0
    alerts: int = 0
    error: str = ""
    warnings: tuple[str, ...] = ()


def analysis_config(settings: Settings) -> AnalysisConfig:
    return AnalysisConfig.from_settings(settings)


def build_runtime(settings: Settings, store: Store, fetcher: Fetcher, *, clock: Clock = utcnow) -> Runtime:
    """Wire a runtime and rebuild the in-memory indexes from what the store already holds."""
    analyzer = restore_analyzer(settings, store, clock())
    return Runtime(
        settings=settings,
        store=store,
        fetcher=fetcher,
        analyzer=analyzer,
        topics=relevance.compile_topics(settings.topics),
        sources={s.id: s for s in effective_sources(settings)},
        clock=clock,
    )


def restore_analyzer(settings: Settings, store: Store, now: datetime) -> Analyzer:
    config = analysis_config(settings)
    since = now - settings.cluster.window
    with store.connect() as conn:
        max_article, max_development = store.max_ids(conn)
        analyzer = Analyzer(config, next_article_id=max_article + 1, next_development_id=max_development + 1)
        analyzer.restore(
            articles.iter_recent_articles(conn, since),
            developments.open_developments(conn, since),
        )
    return analyzer


async def poll_source(source: EffectiveSource, rt: Runtime) -> PollReport:
    """Fetch one source and carry what is new all the way to the outbox."""
    with rt.store.connect() as conn:
        previous = sources.get_health(conn, source.id)
    if previous.next_due and previous.next_due > rt.clock() and previous.consecutive_failures:
        return PollReport(source.id, "skipped", error="backing off after failures")
    result = await rt.fetcher.fetch(
        source.id,
        source.url,
        etag=previous.etag,
        last_modified=previous.last_modified,
        body_hash=previous.body_hash,
        kind=source.kind,
    )
    return await process(source, result, previous, rt)


async def process(source: EffectiveSource, result: FetchResult, previous: SourceHealth, rt: Runtime) -> PollReport:
    now = rt.clock()
    source_health = health.record_fetch(
        previous, result, source.interval, now, backoff_max=rt.settings.http.backoff_max, rng=rt.rng
    )
    if not result.ok or result.not_modified:
        outcome = "unchanged" if result.ok else "failed"
        save_source_state(rt, source, source_health, now, [], [])
        if not result.ok:
            log.warning("fetch failed", extra={"source": source.id, "kind": str(result.error_kind), "error": result.error})
        return PollReport(source.id, outcome, error=result.error or "")

    parsed = parse(result, kind=source.kind, selectors=source.selectors)
    if parsed.failed:
        source_health = health.record_parse_failure(
            source_health, "; ".join(parsed.warnings), source.interval, now,
            backoff_max=rt.settings.http.backoff_max, rng=rt.rng,
        )
    found = normalize.normalize_items(
        parsed.items,
        source_id=source.id,
        outlet=source.outlet,
        owner=source.owner,
        tier=source.tier,
        fetched_at=result.fetched_at,
        now=now,
    )
    relevant = [a for a in (with_topics(a, source, rt) for a in found) if a.topics]
    relevant = await with_full_text(relevant, rt)
    fresh = unseen(relevant, rt)
    outcomes = [rt.analyzer.add(article, now) for article in fresh]
    new_alerts = save_source_state(rt, source, source_health, now, fresh, outcomes)
    return PollReport(
        source.id,
        "new" if fresh else "unchanged",
        items=len(parsed.items),
        relevant=len(relevant),
        new_articles=len(fresh),
        alerts=new_alerts,
        warnings=parsed.warnings,
    )


def with_topics(article: Article, source: EffectiveSource, rt: Runtime) -> Article:
    article.topics = relevance.match_topics(article, rt.topics, allowed_topics=source.topics)
    return article


async def with_full_text(found: Sequence[Article], rt: Runtime) -> list[Article]:
    """Fetch the article page for relevant items whose feed gives only a headline or teaser."""
    enriched = []
    for article in found:
        if extract.needs_full_text(article.summary, article.text) and article.url:
            page = await rt.fetcher.fetch(article.source_id, article.url, kind="article")
            if page.ok and page.body:
                text = extract.extract_article_text(page.body, page.final_url)
                if text:
                    article.text = normalize.clean_text(text)
        enriched.append(article)
    return enriched


def unseen(found: Sequence[Article], rt: Runtime) -> list[Article]:
    """Drop exact duplicates: already stored, or repeated within this batch."""
    with rt.store.connect() as conn:
        known = articles.find_known(
            conn,
            canonical_urls=[a.canonical_url for a in found],
            guids=[(a.source_id, a.guid) for a in found if a.guid],
            content_hashes=[a.content_hash for a in found],
        )
    fresh: list[Article] = []
    for article in found:
        keys = (article.canonical_url, (article.source_id, article.guid), article.content_hash)
        if article.canonical_url in known.canonical_urls or (
            article.guid and (article.source_id, article.guid) in known.guids
        ) or article.content_hash in known.content_hashes:
            continue
        known.canonical_urls.add(keys[0])
        if article.guid:
            known.guids.add(keys[1])
        known.content_hashes.add(keys[2])
        fresh.append(article)
    return fresh


def save_source_state(
    rt: Runtime,
    source: EffectiveSource,
    source_health: SourceHealth,
    now: datetime,
    fresh: Sequence[Article],
    outcomes: Sequence[Outcome],
) -> int:
    """One transaction: articles, developments, the alerts they cause, and source health."""
    alerts: list[Alert] = []
    with rt.store.transaction() as conn:
        articles.insert_articles(conn, [o.article for o in outcomes])
        active = silences.active_silences(conn, now)
        for development, outcome in touched_developments(outcomes):
            alerts.extend(refresh_development(conn, development, outcome, rt, active, now))
        alerts.extend(health_alert(conn, source, source_health, rt, now))
        sources.save_health(conn, source_health)
        return sum(1 for a in alerts if outbox.enqueue(conn, a) is not None)


def touched_developments(outcomes: Sequence[Outcome]) -> list[tuple[Development, Outcome]]:
    """The last outcome per development carries its newest state."""
    latest: dict[int, tuple[Development, Outcome]] = {}
    for outcome in outcomes:
        assert outcome.development.id is not None
        latest[outcome.development.id] = (outcome.development, outcome)
    return list(latest.values())


def refresh_development(conn, development: Development, outcome: Outcome, rt: Runtime, active, now: datetime) -> list[Alert]:
    topic = topic_by_id(rt.settings, development.topic)
    members = articles.articles_for_development(conn, development.id) if development.id else []
    decision = outcome.decision
    previous = developments.get_development(conn, development.id) if development.id else None
    if topic is not None:
        development.impact = score.impact(members, decision, topic)
    development.sentiment = score.sentiment(development.headline, development.lead)
    if development.storyline_id is None:
        candidates = developments.developments_seen_since(conn, now - rt.settings.cluster.storyline_window, topics=[development.topic])
        development.storyline_id = timeline.storyline_for(
            development, candidates, window=rt.settings.cluster.storyline_window, now=now
        )
    developments.upsert_development(conn, development, outcome.features)
    for merged in outcome.merged_from:
        articles.reassign_development(conn, merged, development.id)
        developments.mark_merged(conn, merged, development.id)
    return decide_stage.decide(
        development,
        decision,
        decide_stage.PreviousState.from_development(previous),
        rt.settings.routes,
        active,
        now=now,
        new_article_ids=[a.id for a in outcome.new_articles if a.id is not None],
        merged_from=outcome.merged_from,
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
    return [event.alert(channel)]


def topic_by_id(settings: Settings, topic_id: str):
    return next((t for t in settings.topics if t.id == topic_id), None)


__all__ = [
    "PollReport",
    "Runtime",
    "build_runtime",
    "poll_source",
    "process",
    "utcnow",
    "DevelopmentState",
    "ErrorKind",
    "replace",
]
