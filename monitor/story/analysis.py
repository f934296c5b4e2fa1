"""The story engine: dedup → cluster → corroborate for one article at a time.

The monitor (``pipeline``) and the evaluation (``evaluate``) run this same class, so what
is measured is what runs. It holds the in-memory indexes (near-duplicate LSH, the cluster
index, the members of each open development) and allocates article and development ids
itself, because the store inserts explicit ids. After a restart, :meth:`Analyzer.restore`
rebuilds the indexes from what the store holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.config.settings import DEFAULT_MIN_SOURCES
from monitor.models import Article, Decision, Development, DevelopmentState, TopicMatch
from monitor.story import dedup
from monitor.story import textfeatures as tf
from monitor.story.cluster import ClusterConfig, ClusterIndex, Merge
from monitor.story.corroborate import corroborate

if TYPE_CHECKING:
    from monitor.config.settings import Settings

log = logging.getLogger(__name__)

Corroborate = Callable[[Sequence[Article], int], Decision]
# Where ids come from when not from the counters: the distributed mode's analysis owner takes
# them from PostgreSQL sequences ("article" or "development" → a fresh id).
IdSource = Callable[[str], int]


@dataclass(frozen=True)
class AnalysisConfig:
    """Every threshold of the story engine, set once for all data."""

    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    # Estimated Jaccard of word 5-shingles for "a copy of": a wire story with its dateline
    # cut and its ending trimmed scores about 0.7; independent reports of one event share
    # almost no 5-word runs (well under 0.1).
    reprint_threshold: float = 0.5
    reprint_window: timedelta = timedelta(days=3)  # how long an original stays findable
    required: Mapping[str, int] = field(default_factory=dict)  # independent sources per topic
    default_required: int = DEFAULT_MIN_SOURCES
    wires: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dedup.WIRES)
    outlets_by_host: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # host → (outlet, owner)
    members_per_origin: int = 5  # articles kept per origin of a development (for reasons)
    # Corroborate reads at most this many origins of one development (the count stays exact),
    # and above it a development is re-decided only when a new origin joins: 10,000 reprints
    # or 500 outlets on one story must cost the same per article as three.
    redecide_origins: int = 32
    # How long a first alert waits when a similar development is forming in the same minutes
    # (`ClusterIndex.forming_sibling`): a bridging article usually merges the two within
    # seconds, and then people get one message instead of two. 0 sends at once.
    alert_hold: timedelta = timedelta(seconds=60)
    # An article the topic rules miss joins a development only on clearer evidence than
    # clustering needs: this many times the bar, and a name they share.
    join_margin: float = 1.5

    @classmethod
    def from_settings(cls, settings: Settings) -> AnalysisConfig:
        """The configuration feeds.yaml describes (window, min_sources, outlets and owners)."""
        outlets: dict[str, tuple[str, str]] = {}
        for source in settings.sources:
            h = dedup.host(source.url)
            if h:
                outlets[h] = (source.outlet or source.name, source.owner or "")
        return cls(
            cluster=replace(
                ClusterConfig(),
                window=settings.cluster.window,
                half_life=settings.cluster.half_life,
                grace=settings.cluster.grace,
            ),
            alert_hold=settings.cluster.alert_hold,
            required={t.id: settings.min_sources(t.id) for t in settings.topics},
            outlets_by_host=outlets,
        )

    def required_for(self, topic: str) -> int:
        return self.required.get(topic, self.default_required)


JOINED = "joined development"  # how a relevance explanation by development begins


@dataclass(slots=True)
class _Waiting:
    article: Article
    topics: tuple[str, ...]
    since: datetime


def _terms(article: Article) -> frozenset[str]:
    return frozenset(tf.terms(f"{article.title}\n{article.summary[:1000]}"))


class NearMisses:
    """Articles the topic rules missed but partly matched, kept a while in case a
    development they report forms after them (the second outlet is often first).

    Bounded by count and age; the oldest go first. Kept in memory only: after a restart the
    items are still in their feeds and are read again when a feed changes.
    """

    def __init__(self, limit: int = 2000, keep: timedelta = timedelta(days=3)) -> None:
        self.limit, self.keep = limit, keep
        self._items: dict[str, _Waiting] = {}
        self._by_term: dict[str, set[str]] = {}  # term → keys: which items a development may want

    def __len__(self) -> int:
        return len(self._items)

    def add(self, article: Article, topics: Sequence[str], now: datetime) -> None:
        key = article.canonical_url or article.content_hash
        self.take(key)
        self._items[key] = _Waiting(article, tuple(topics), now)
        for term in _terms(article):
            self._by_term.setdefault(term, set()).add(key)
        while len(self._items) > self.limit:
            self.take(next(iter(self._items)))

    def take(self, key: str) -> _Waiting | None:
        waiting = self._items.pop(key, None)
        if waiting is not None:
            for term in _terms(waiting.article):
                keys = self._by_term.get(term)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._by_term[term]
        return waiting

    def sharing(self, terms: Iterable[str], now: datetime) -> list[tuple[str, _Waiting]]:
        """The items still waiting that share one of these terms (expired ones dropped)."""
        keys: set[str] = set()
        for term in terms:
            keys |= self._by_term.get(term, set())
        found = []
        for key in keys:
            waiting = self._items[key]
            if now - waiting.since > self.keep:
                self.take(key)
            else:
                found.append((key, waiting))
        return found

    def text_for(self, url: str) -> str | None:
        """The full text fetched for a waiting item, so a near miss is fetched once."""
        for waiting in self._items.values():
            if waiting.article.canonical_url == url and waiting.article.text:
                return waiting.article.text
        return None


@dataclass(frozen=True)
class Outcome:
    """What happened to one article, as a value for the store, alerts, logs and tests."""

    article: Article  # with id, origin, reprint_of, signature, development_id set
    development: Development  # new or updated, state/independent from the decision
    decision: Decision
    created: bool  # the article started a new development
    merges: tuple[Merge, ...] = ()
    merged: tuple[Development, ...] = ()  # developments absorbed (state MERGED, merged_into set)
    features: dict[str, Any] = field(default_factory=dict)  # cluster features to store
    why: str = ""
    # Set when this article made the development corroborated while a similar development
    # is still forming: (that development's id, similarity). Its first alert is held.
    forming: tuple[int, float] | None = None

    @property
    def merged_from(self) -> tuple[int, ...]:
        return tuple(m.absorbed for m in self.merges)

    @property
    def new_articles(self) -> tuple[Article, ...]:
        return (self.article,)


class Analyzer:
    """Runs dedup → cluster → corroborate for articles that are relevant and not exact dups."""

    def __init__(
        self,
        config: AnalysisConfig | None = None,
        *,
        next_article_id: int = 1,
        next_development_id: int = 1,
        corroborate_fn: Corroborate = corroborate,
    ) -> None:
        self._config = config or AnalysisConfig()
        self.next_article_id = next_article_id
        self.next_development_id = next_development_id
        self._corroborate = corroborate_fn
        self.cluster = ClusterIndex(self._config.cluster)
        self.reprints = dedup.ReprintIndex(threshold=self._config.reprint_threshold)
        self._developments: dict[int, Development] = {}
        self._members: dict[int, dict[str, list[Article]]] = {}  # dev → origin → slim articles
        self._decisions: dict[int, Decision] = {}
        # Why each development is relevant: the topic rules' explanation of its first
        # rule-matched article, quoted when another article joins it by similarity alone.
        self._because: dict[int, str] = {}
        self.near_misses = NearMisses()
        self.ids: IdSource | None = None
        self._reserved_development: int | None = None

    @property
    def config(self) -> AnalysisConfig:
        return self._config

    @config.setter
    def config(self, config: AnalysisConfig) -> None:
        """A reloaded configuration applies to the next article; the indexes stay."""
        self._config = config
        self.cluster.config = config.cluster
        self.reprints.threshold = config.reprint_threshold

    # -- one article ----------------------------------------------------------------

    def add(self, article: Article, now: datetime) -> Outcome:
        """Give the article an id and origin, put it into a development, decide on it."""
        cfg = self._config
        # Stored from now on: a copy waiting as a near miss must not be added twice.
        self.near_misses.take(article.canonical_url or article.content_hash)
        if article.id is None:
            article.id = self._take_article_id()
        else:
            self.next_article_id = max(self.next_article_id, article.id + 1)
        self.reprints.expire(now - cfg.reprint_window)
        fp = dedup.fingerprint(dedup.copy_text(article))
        match = self.reprints.query(fp)
        article.origin, origin_why = dedup.assign_origin(
            article, match, cfg.wires, cfg.outlets_by_host
        )
        article.reprint_of = match.article_id if match else None
        article.signature = dedup.signature_bytes(fp.minhash) if fp.minhash is not None else None
        if match is None:
            self.reprints.add(article.id, article.origin, article.published, fp)

        topic = article.topics[0].topic_id if article.topics else ""
        assignment = self.cluster.assign(article, now, self._development_candidate(), topic)
        if assignment.created:
            self._used_development_id()
        dev_id = assignment.development_id
        article.development_id = dev_id
        if article.topics and not article.topics[0].explanation.startswith(JOINED):
            self._because.setdefault(dev_id, article.topics[0].explanation)
        merged = tuple(self._merge(m) for m in assignment.merges)
        development = self._development(dev_id, article, topic)
        new_origin = self._remember(dev_id, article)
        was_corroborated = development.state is DevelopmentState.CORROBORATED
        decision = self._decide(dev_id, topic, new_origin or bool(merged))
        self._refresh(development, decision)
        forming = None
        if decision.state is DevelopmentState.CORROBORATED and not was_corroborated and cfg.alert_hold:
            forming = self.cluster.forming_sibling(dev_id, now)
        self._forget_closed()
        why = f"origin {article.origin} ({origin_why}); {assignment.reason}"
        if merged:
            why += "; merged " + ", ".join(str(d.id) for d in merged)
        return Outcome(
            article=article,
            development=development,
            decision=decision,
            created=assignment.created,
            merges=assignment.merges,
            merged=merged,
            features=self.cluster.features(dev_id),
            why=why,
            forming=forming,
        )

    # -- relevance by development ----------------------------------------------------

    def join(self, article: Article, topics: Sequence[str], now: datetime) -> TopicMatch | None:
        """A topic match for an article the rules missed, when it reports an open
        development of one of ``topics`` (it then counts as a source), with the reason."""
        found = self._join(article, topics, now)
        return found[1] if found else None

    def _join(self, article: Article, topics: Sequence[str], now: datetime) -> tuple[int, TopicMatch] | None:
        best: tuple[float, int, str] | None = None
        for topic in topics:
            found = self.cluster.probe(article, now, topic, margin=self._config.join_margin)
            if found is not None and (best is None or found[1] > best[0]):
                best = (found[1], found[0], topic)
        if best is None:
            return None
        score, dev_id, topic = best
        # Words alone are thin evidence for an article no rule vouches for: it must name
        # someone or something the development is about (not just a country).
        if not self.cluster.shared_names(article, dev_id):
            return None
        headline = self.cluster.headline(dev_id) if dev_id in self.cluster else ""
        why = f"{JOINED} {dev_id}" + (f" ({headline!r})" if headline else "")
        because = self._because.get(dev_id)
        why += f", which matched {because}" if because else ""
        return dev_id, TopicMatch(topic, 0.0, f"{why}; similarity {score:.2f}")

    def adopt(self, touched: Iterable[int], now: datetime) -> list[Article]:
        """Waiting near misses that report a development just touched: they join it now,
        with their topic set (the caller adds them). Only items sharing one of the
        development's key terms are tried; each against the whole index, so it lands where
        it fits best."""
        adopted = []
        for dev_id in set(touched):
            if dev_id not in self.cluster or not len(self.near_misses):
                continue
            for key, waiting in self.near_misses.sharing(self.cluster.key_terms(dev_id, 12), now):
                found = self._join(waiting.article, waiting.topics, now)
                if found is not None and found[0] == dev_id:
                    self.near_misses.take(key)
                    waiting.article.topics = (found[1],)
                    adopted.append(waiting.article)
        return adopted

    def _take_article_id(self) -> int:
        if self.ids is not None:
            return self.ids("article")
        self.next_article_id += 1
        return self.next_article_id - 1

    def _development_candidate(self) -> int:
        """The id a new development would get (taken only when one is created)."""
        if self.ids is None:
            return self.next_development_id
        if self._reserved_development is None:
            self._reserved_development = self.ids("development")
        return self._reserved_development

    def _used_development_id(self) -> None:
        if self.ids is None:
            self.next_development_id += 1
        else:
            self._reserved_development = None

    def _development(self, dev_id: int, article: Article, topic: str) -> Development:
        dev = self._developments.get(dev_id)
        if dev is None:
            seen = article.published
            dev = Development(topic=topic, headline=article.title, first_seen=seen, last_seen=seen, id=dev_id)
            dev.lead = (article.summary or article.text)[:500]
            self._developments[dev_id] = dev
        return dev

    def _remember(self, dev_id: int, article: Article) -> bool:
        """Keep a slim copy (no text) per origin, capped; True when the origin is new here."""
        by_origin = self._members.setdefault(dev_id, {})
        new = article.origin not in by_origin
        kept = by_origin.setdefault(article.origin, [])
        if len(kept) < self._config.members_per_origin:
            # Corroborate reads ids, origin, reprint_of, outlet, source, owner, tier and time;
            # everything else would only hold memory (a 1M-article store keeps ~12 MB less).
            kept.append(
                replace(
                    article, text="", summary="", signature=None, url="", canonical_url="", guid="",
                    content_hash="", title="", topics=(), credit="", canonical_link="", warnings=(),
                )
            )
        return new

    def _decide(self, dev_id: int, topic: str, changed: bool) -> Decision:
        by_origin = self._members.get(dev_id, {})
        cached = self._decisions.get(dev_id)
        limit = self._config.redecide_origins
        if cached is not None and not changed and len(by_origin) > limit:
            return cached
        required = self._config.required_for(topic)
        origins = list(by_origin.values())
        members = [a for kept in origins[:limit] for a in kept]
        decision = self._corroborate(members, required)
        if len(origins) > limit:
            decision = _with_total(decision, len(origins), required)
        self._decisions[dev_id] = decision
        return decision

    def _refresh(self, dev: Development, decision: Decision) -> None:
        assert dev.id is not None
        dev.state = decision.state
        dev.independent = decision.independent
        dev.decision_reason = decision.reason
        dev.headline = self.cluster.headline(dev.id) or dev.headline
        dev.key_terms = self.cluster.key_terms(dev.id)
        dev.first_seen, dev.last_seen = self.cluster.seen(dev.id)

    def _merge(self, merge: Merge) -> Development:
        """Move the absorbed development's members into the kept one; mark it merged."""
        absorbed = self._developments.pop(merge.absorbed, None)
        moved = self._members.pop(merge.absorbed, {})
        self._decisions.pop(merge.absorbed, None)
        target = self._members.setdefault(merge.kept, {})
        for origin, kept in moved.items():
            room = self._config.members_per_origin - len(target.get(origin, []))
            target.setdefault(origin, []).extend(a for a in kept[: max(0, room)])
        for members in target.values():
            for a in members:
                a.development_id = merge.kept
        if absorbed is None:  # closed or unknown: describe it from the merge alone
            absorbed = Development(topic="", headline="", first_seen=datetime.min, last_seen=datetime.min, id=merge.absorbed)
        absorbed.state = DevelopmentState.MERGED
        absorbed.merged_into = merge.kept
        log.info("developments merged", extra={"kept": merge.kept, "absorbed": merge.absorbed, "reason": merge.reason})
        return absorbed

    def _forget_closed(self) -> None:
        """Developments the cluster index closed (out of the window) leave memory too."""
        if len(self._developments) <= len(self.cluster) + 1000:
            return
        for dev_id in [d for d in self._developments if d not in self.cluster]:
            self._developments.pop(dev_id, None)
            self._members.pop(dev_id, None)
            self._decisions.pop(dev_id, None)
            self._because.pop(dev_id, None)

    # -- restart --------------------------------------------------------------------

    def restore(
        self,
        articles: Iterable[Article],
        developments: Iterable[tuple[Development, Mapping[str, Any] | None]],
    ) -> None:
        """Rebuild the indexes from stored recent articles (id order) and open developments."""
        by_dev: dict[int, list[Article]] = {}
        for article in articles:
            self.cluster.learn(article)
            if article.id is not None:
                self.next_article_id = max(self.next_article_id, article.id + 1)
            if article.reprint_of is None and article.id is not None:
                fp = dedup.article_fingerprint(article)
                self.reprints.add(article.id, article.origin, article.published, fp)
            if article.development_id is not None:
                by_dev.setdefault(article.development_id, []).append(article)
                if article.topics and not article.topics[0].explanation.startswith(JOINED):
                    self._because.setdefault(article.development_id, article.topics[0].explanation)
        for dev, features in developments:
            if dev.id is None:
                continue
            self.next_development_id = max(self.next_development_id, dev.id + 1)
            members = by_dev.get(dev.id, [])
            if features:
                self.cluster.restore(dev.id, features)
            elif members:
                self.cluster.rebuild(dev.id, dev.topic, members)
            else:
                continue
            self._developments[dev.id] = dev
            for article in members:
                self._remember(dev.id, article)


def _with_total(decision: Decision, total: int, required: int) -> Decision:
    """A decision over the first origins of a very large development, with the full count.

    Corroborate reads only the first ``redecide_origins`` origins (its reason names eight
    anyway), so a story carried by hundreds of outlets costs the same per article.
    """
    shown = decision.independent
    reason = decision.reason.replace(f"{shown} independent", f"{total} independent", 1)
    if reason == decision.reason:
        reason = f"{total} independent; {decision.reason}"
    state = DevelopmentState.CORROBORATED if total >= required else decision.state
    return replace(decision, state=state, independent=total, reason=reason)
