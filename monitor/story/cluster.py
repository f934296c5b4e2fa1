"""Incremental clustering of articles into developments (one real-world event each).

Each article is turned into a small feature set (TF-IDF vector over title and text,
capitalised names, numbers) and compared with the *open* developments that share one of
its key terms. The best match above a threshold wins; otherwise the article starts a new
development. Why this shape:

- Candidates come from an inverted index term → recent developments, and every posting
  list is capped (LRU), so the work per article is bounded by
  ``query_terms × postings_cap`` whatever the size of the store.
- Document frequencies are counted incrementally in a fixed-size hashed table, so memory
  does not grow with the vocabulary of a year of news.
- Developments leave the index when they fall out of the time window; a development's
  centroid keeps at most ``max_terms`` terms.
- Full texts are judged against a development's member texts (average link over a
  bounded set of members: the first ones and the most recent), for the few best
  centroid matches only. A centroid that once took an article of another event of the
  same kind (a second earthquake, another rehab check-in) drifts towards that event and
  then takes all of it; the average over the members does not drift. Names, shared
  numbers, years and explicit dates count in each pair, because they are what tells two
  events of one subject apart.
- A new article that matches two open developments strongly is a bridge: the two are
  merged (full texts: when their members match on average) and a :class:`Merge` is
  returned so alerts can be reconciled.

Nothing here knows about the store or the clock: ``now`` and the articles are passed in;
``features()``/``restore()`` give the store what it needs to rebuild after a restart.
"""

from __future__ import annotations

import heapq
import logging
import math
import zlib
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from monitor.models import Article
from monitor.story import textfeatures as tf

log = logging.getLogger(__name__)

UNDATED = "no publication date"  # an Article warning: its time says nothing, ignore time

_DF_SLOTS = 1 << 21  # hashed document-frequency table: 8 MB, collisions negligible


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Thresholds and bounds of the clusterer. One configuration for all data."""

    threshold: float = 0.5  # minimum match score to join an open development (full text)
    headline_threshold: float = 0.15  # the same for an article that has only a headline
    headline_body_threshold: float = 0.3  # a headline against a development of full texts
    min_body_terms: int = 25  # fewer body terms than this: judged as headline-only ...
    # ... or, from this many, as a teaser: a headline with a sentence or two of lead, as most
    # feeds give. A teaser is judged by average link against the development's texts (its
    # teasers and full texts) at a bar of its own, so its lead counts, not only its headline.
    min_teaser_terms: int = 8
    teaser_link_threshold: float = 0.3
    pair_shared_terms: int = 2  # a headline joins a lone headline only on this many shared terms
    merge_ratio: float = 1.6  # a second development scoring this × the threshold (and similar) → merge
    # Centroid cosine two developments need to be merged. Full texts: only near-identical
    # developments (on ECB+ any lower bar merged different events of one subject);
    # headline-only developments are sparse, so their centroids meet at much lower values.
    merge_similarity: float = 0.9
    headline_merge_similarity: float = 0.1
    window: timedelta = timedelta(days=7)  # developments idle longer are closed to new articles
    half_life: timedelta = timedelta(hours=6)  # score decays by half per idle half-life ...
    grace: timedelta = timedelta(0)  # ... after this long, which is still the same news cycle
    burst_boost: float = 2.0  # headline-only: extra score share for a development updated moments ago
    burst_scale: timedelta = timedelta(minutes=10)  # how fast that boost fades (e-folding)
    title_weight: float = 2.0  # a headline term counts this many body occurrences
    name_weight: float = 0.5  # weight of the cosine over capitalised names
    number_weight: float = 0.2  # weight of shared numbers and amounts
    year_weight: float = 0.1  # same year mentioned: +w; only different years: -w
    # Explicit dates in the text ("July 28, 2004"): an article dated months away from every
    # dated member of a development reports another event of the same kind.
    date_weight: float = 0.1
    date_slack: int = 1  # months apart that still count as the same time
    # Full texts are matched against a development's member texts (average link), not only
    # its centroid: a centroid that took one article of another event of the same kind
    # drifts towards that event; the average over members does not. Pair score =
    # term cosine + weights × (name cosine, shared-number Jaccard, year and date agreement).
    link_threshold: float = 0.68  # minimum average pair score for a full text to join
    link_members: int = 16  # member texts kept per development (first half + most recent)
    link_candidates: int = 4  # best centroid matches re-scored by average link
    link_name_weight: float = 1.0
    link_number_weight: float = 1.0
    link_year_weight: float = 0.2
    link_date_weight: float = 0.1
    # Two headlines that each name a country and share none ("Netherlands releases chip
    # controls", "China issues export controls") are two actors, so two events.
    link_country_weight: float = 0.5
    merge_link: float = 0.8  # average link two full-text developments need to be merged
    fragment_size: int = 1  # ... or this few member texts on one side
    fragment_link: float = 0.68  # ... then this average link suffices
    fragment_ratio: float = 1.0  # ... for a development scoring this × threshold with the article
    max_terms: int = 150  # centroid size cap per development
    max_names: int = 60  # name/number counter cap per development
    max_article_terms: int = 2000  # tokens read from one article's text
    max_article_chars: int = 50_000  # characters of one article's text read at all
    vector_terms: int = 60  # strongest terms kept in an article's vector (full texts: 25 lost detail)
    query_terms: int = 12  # article terms used to look up candidates ...
    # ... and for a teaser, all of its terms: its strongest dozen are mostly rare words
    # (a chiplet, a parameter) that the development's earlier reports never used.
    teaser_query_terms: int = 40
    postings_cap: int = 48  # developments kept per term (most recently active)
    max_candidates: int = 32  # candidates scored in full per article (most shared key terms first)
    # A development that has just corroborated while a similar one is taking articles in the
    # same minutes may be half of one story that a bridging article is about to merge (news
    # arrives in bursts, and the first reports of a burst often land in two developments).
    # "Similar" is measured against what a merge needs. Headline centroids are thin evidence,
    # so half the bar (UCI replay: 27 alerts held, 12 merged before sending). Member texts are
    # reliable, so the full bar: on ECB+ the held pairs below it were two events of one subject
    # that never merged (13 of 14), and holding them only delays their alerts.
    forming_share: float = 0.5  # headline-only developments: share of headline_merge_similarity
    forming_share_full: float = 1.0  # developments with member texts: share of merge_link
    forming_within: timedelta = timedelta(minutes=10)  # "the same minutes": touched this recently


@dataclass(frozen=True, slots=True)
class ArticleFeatures:
    vector: dict[str, float]  # unit-length TF-IDF of title and text
    title_vector: dict[str, float]  # unit-length TF-IDF of the headline alone
    body_terms: int  # distinct body terms: decides full-text or headline-only matching
    name_vector: dict[str, float]  # unit-length TF-IDF over capitalised names
    numbers: frozenset[str]  # amounts and counts (years excluded)
    years: frozenset[str]
    title_terms: tuple[str, ...]
    dated: bool = True  # False: the article's time is unknown, so time features stay neutral
    months: frozenset[int] = frozenset()  # months of explicit dates in the text (year*12+month-1)
    # Days (ordinals) of the explicit dates the text names around its publication: the
    # report is about what happened then ("the rule issued October 7, 2022").
    days: frozenset[int] = frozenset()
    countries: frozenset[str] = frozenset()  # countries (and blocs) its headline names


class _Read(NamedTuple):
    """What one article says, read once for the document frequencies and its features."""

    title: list[str]
    body: list[str]
    names: Counter[str]
    head: str  # the top of the text, where names and numbers are read


@dataclass(frozen=True, slots=True)
class Merge:
    """Development ``absorbed`` was found to be the same event as ``kept``."""

    kept: int
    absorbed: int
    reason: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one article went, and why."""

    development_id: int
    created: bool
    score: float
    reason: str
    merges: tuple[Merge, ...] = ()


@dataclass(slots=True)
class _Dev:
    id: int
    topic: str
    headline: str
    first_seen: datetime  # publication times of its earliest and latest article
    last_seen: datetime
    centroid: dict[str, float] = field(default_factory=dict)  # sum of member unit vectors
    norm: float = 0.0
    title_centroid: dict[str, float] = field(default_factory=dict)  # sum of headline vectors
    title_norm: float = 0.0
    size: int = 0
    with_body: int = 0  # members that had a body text (not just a headline)
    name_centroid: dict[str, float] = field(default_factory=dict)
    name_norm: float = 0.0
    numbers: Counter[str] = field(default_factory=Counter)
    years: Counter[str] = field(default_factory=Counter)
    months: Counter[int] = field(default_factory=Counter)
    members: list[ArticleFeatures] = field(default_factory=list)  # full texts, for average link
    teasers: list[ArticleFeatures] = field(default_factory=list)  # headline + lead, for average link
    days: Counter[int] = field(default_factory=Counter)  # event days its texts name
    headline_score: float = -1.0
    touched: datetime | None = None  # when it last took an article (processing time)


class DocumentFrequencies:
    """Incremental document frequencies in a fixed-size hashed table (stable crc32 hash)."""

    def __init__(self) -> None:
        self.docs = 0
        self._counts = array("i", bytes(4 * _DF_SLOTS))

    def add(self, terms: Iterable[str]) -> None:
        self.docs += 1
        for term in set(terms):
            self._counts[zlib.crc32(term.encode()) & (_DF_SLOTS - 1)] += 1

    def idf(self, term: str) -> float:
        df = self._counts[zlib.crc32(term.encode()) & (_DF_SLOTS - 1)]
        return math.log((self.docs + 1) / (df + 1)) + 1.0


class ClusterIndex:
    """Open developments, their features, and the inverted index used to find candidates."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self.df = DocumentFrequencies()
        self._devs: dict[int, _Dev] = {}
        self._postings: dict[str, OrderedDict[int, None]] = {}
        self._by_activity: OrderedDict[int, None] = OrderedDict()  # least recently active first

    # -- features -------------------------------------------------------------------

    def learn(self, article: Article) -> _Read:
        """Count the article's terms and names in the document frequencies; returns what was
        read, so `featurize` does not read the article again."""
        read = self._read(article)
        # Names are weighed with the same table; "US" (U.S.) is a name but never a term
        # (a stopword), so without this it would count as the rarest name of all.
        self.df.add([*read.title, *read.body, *read.names])
        return read

    def _read(self, article: Article) -> _Read:
        cfg = self.config
        body_text = (article.text or article.summary)[: cfg.max_article_chars]
        head = body_text[:20_000]  # names and numbers: the top of the story is enough
        return _Read(
            tf.terms(article.title, months=False),
            tf.terms(body_text)[: cfg.max_article_terms],
            Counter(tf.names(article.title, headline=True)) + tf.name_counts(head),
            head,
        )

    def featurize(self, article: Article, read: _Read | None = None) -> ArticleFeatures:
        """TF-IDF vector (headline terms weighted up), names and numbers of one article."""
        cfg = self.config
        title, body, names, head = read or self._read(article)
        counts: dict[str, float] = dict(Counter(body))
        for t in title:
            counts[t] = counts.get(t, 0.0) + cfg.title_weight
        nums = tf.numbers(article.title) | tf.numbers(head)
        years = frozenset(n for n in nums if tf.is_year(n))
        months = frozenset(tf.months(article.title + "\n" + head)) if cfg.date_weight else frozenset()
        dated = UNDATED not in article.warnings
        days = frozenset(tf.event_days(article.title + "\n" + head[:5000], article.published.date())) if dated else frozenset()
        countries = frozenset(tf.countries(article.title))
        return ArticleFeatures(
            self._weigh(counts, cfg.vector_terms),
            self._weigh(Counter(title)),
            len(set(body)),
            self._weigh(names),
            frozenset(nums - years),
            years,
            tuple(title),
            dated,
            months,
            days,
            countries,
        )

    def _weigh(self, counts: Mapping[str, float], keep: int = 0) -> dict[str, float]:
        """Sublinear TF × IDF of the ``keep`` strongest terms (all when 0), scaled to unit length."""
        vec = {t: (1.0 + math.log(c)) * self.df.idf(t) for t, c in counts.items() if c > 0}
        if keep and len(vec) > keep:
            vec = dict(heapq.nlargest(keep, vec.items(), key=lambda kv: kv[1]))
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {t: w / norm for t, w in vec.items()}

    # -- assignment -----------------------------------------------------------------

    def assign(self, article: Article, now: datetime, new_id: int, topic: str = "") -> Assignment:
        """Put the article into the best open development or a new one with id ``new_id``.

        The article's terms are counted in the document frequencies first, so its own
        vector uses up-to-date IDF.
        """
        feats = self.featurize(article, self.learn(article))
        self.expire(now - self.config.window)
        # Time features use publication times, so a backlog polled today still lands in
        # the developments of its own days (and an 18-day-old item does not join today's).
        when = min(article.published, now) if article.published else now
        scored = self._score_candidates(feats, when, topic)
        threshold = self.threshold(feats)
        if not scored or scored[0][0] < threshold:
            dev = self._new_dev(new_id, topic, when)
            self._add_member(dev, feats, article, when, now, score=0.0)
            best = f"best candidate {scored[0][0]:.2f}" if scored else "no candidate"
            return Assignment(dev.id, True, 0.0, f"new development ({best} < {threshold})")
        score, dev_id = scored[0]
        dev = self._devs[dev_id]
        dev, merges = self._bridge(dev, scored[1:], threshold)
        self._add_member(dev, feats, article, when, now, score=score)
        return Assignment(dev.id, False, score, f"joined (score {score:.2f})", tuple(merges))

    def probe(self, article: Article, now: datetime, topic: str, *, margin: float = 1.0) -> tuple[int, float] | None:
        """The open development of ``topic`` this article would join (scoring ``margin``
        times the bar), and its score; None when it would start a development of its own.
        Changes nothing (the document frequencies do not count the article), so relevance
        can ask before deciding."""
        feats = self.featurize(article)
        when = min(article.published, now) if article.published else now
        scored = self._score_candidates(feats, when, topic)
        if not scored or scored[0][0] < margin * self.threshold(feats):
            return None
        score, dev_id = scored[0]
        return dev_id, score

    def shared_names(self, article: Article, dev_id: int) -> set[str]:
        """Names (not countries) the article shares with a development: who or what it is about."""
        dev = self._devs.get(dev_id)
        if dev is None:
            return set()
        names = tf.names(article.title, headline=True) | tf.names((article.summary or article.text)[:5000])
        return {n for n in names if n in dev.name_centroid and n not in tf.COUNTRIES.values()}

    def _score_candidates(
        self, feats: ArticleFeatures, when: datetime, topic: str
    ) -> list[tuple[float, int]]:
        hits: Counter[int] = Counter()
        vector = feats.vector
        for term in heapq.nlargest(self._query_terms(feats), vector, key=lambda t: vector[t]):
            for dev_id in self._postings.get(term, ()):
                hits[dev_id] += 1
        scored: list[tuple[float, int]] = []
        full = self._is_full(feats)
        for dev_id, _ in hits.most_common(self.config.max_candidates):
            dev = self._devs.get(dev_id)
            if dev is None or dev.topic != topic:
                continue
            score = self._centroid_score(feats, dev, when) if full else self.score(feats, dev, when)
            scored.append((score, dev_id))
        scored.sort(reverse=True)
        if full:
            # Average link costs members × pairs: only the best centroid matches get it.
            short = scored[: self.config.link_candidates]
            scored = sorted(((self.score(feats, self._devs[d], when), d) for _, d in short), reverse=True)
        return scored

    def threshold(self, feats: ArticleFeatures) -> float:
        """A headline carries less evidence than a full text, so its scores run lower."""
        if self._is_full(feats):
            return self.config.threshold
        return self.config.headline_threshold

    def _query_terms(self, feats: ArticleFeatures) -> int:
        return self.config.teaser_query_terms if self._is_teaser(feats) else self.config.query_terms

    def _is_full(self, feats: ArticleFeatures) -> bool:
        return feats.body_terms >= self.config.min_body_terms

    def _is_teaser(self, feats: ArticleFeatures) -> bool:
        return self.config.min_teaser_terms <= feats.body_terms < self.config.min_body_terms

    def score(self, feats: ArticleFeatures, dev: _Dev, when: datetime) -> float:
        """Match score of an article published at ``when`` against a development.

        Full texts: average link over the development's member texts (scaled so that
        ``threshold`` is the bar), or its centroid when it has only headlines. Headlines:
        the headline centroid, or the whole centroid of a development of full texts. Decays with the time between the article and the
        development's articles, and is zero beyond the window (closed to it).
        """
        cfg = self.config
        if self._is_full(feats):
            if dev.members:
                raw = self.link(feats, dev.members) * cfg.threshold / cfg.link_threshold
            else:
                raw = self._centroid_raw(feats, dev)
        elif self._is_teaser(feats) and (dev.teasers or dev.members):
            texts = dev.teasers + dev.members
            raw = self.link(feats, texts) * cfg.headline_threshold / cfg.teaser_link_threshold
        elif not _headline_only(dev):
            # A headline against full texts: their own headlines are few (some are only
            # datelines), while a headline's words show up in the bodies of reports of the
            # same event. Compared with the whole centroid, at a bar of its own.
            cosine = _dot(feats.vector, dev.centroid) / (dev.norm or 1.0)
            raw = cosine * cfg.headline_threshold / cfg.headline_body_threshold
        else:
            if dev.size == 1 and _shared(feats.title_vector, dev.title_centroid) < min(
                cfg.pair_shared_terms, len(feats.title_vector)
            ):
                return 0.0  # two headlines sharing one word ("market", "TV") is chance
            raw = _dot(feats.title_vector, dev.title_centroid) / (dev.title_norm or 1.0)
        return self._timed(raw, feats, dev, when)

    def _centroid_score(self, feats: ArticleFeatures, dev: _Dev, when: datetime) -> float:
        """The cheap full-text score used to shortlist candidates for the average link."""
        return self._timed(self._centroid_raw(feats, dev), feats, dev, when)

    def _centroid_raw(self, feats: ArticleFeatures, dev: _Dev) -> float:
        cfg = self.config
        score = _dot(feats.vector, dev.centroid) / (dev.norm or 1.0)
        names = _dot(feats.name_vector, dev.name_centroid) / (dev.name_norm or 1.0)
        score += cfg.name_weight * names
        score += cfg.number_weight * _known_share(feats.numbers, dev.numbers, dev.size)
        score += cfg.year_weight * _agreement(feats.years, dev.years, dev.size)
        score += cfg.date_weight * _date_fit(feats.months, dev.months, cfg.date_slack)
        return score

    def _timed(self, score: float, feats: ArticleFeatures, dev: _Dev, when: datetime) -> float:
        cfg = self.config
        if not feats.dated:
            return score
        idle = _distance(when, dev.first_seen, dev.last_seen)
        # A later report that names the day of the development's event (or a development
        # whose later reports name this one's day) is as near as the event itself.
        since_event = min(idle, _days_distance(feats.days, when, dev))
        if since_event > cfg.window.total_seconds():
            return 0.0
        score *= 0.5 ** (max(0.0, since_event - cfg.grace.total_seconds()) / cfg.half_life.total_seconds())
        if cfg.burst_boost and feats.body_terms < cfg.min_body_terms:
            # A headline is thin evidence; a development being reported this very minute
            # is extra evidence for it (news comes in bursts). Full texts need no such help.
            score *= 1.0 + cfg.burst_boost * math.exp(-idle / cfg.burst_scale.total_seconds())
        return score

    def pair_score(self, a: ArticleFeatures, b: ArticleFeatures) -> float:
        """How likely two full texts report the same event (terms, names, numbers, dates)."""
        cfg = self.config
        score = _dot(a.vector, b.vector) + cfg.link_name_weight * _dot(a.name_vector, b.name_vector)
        if a.numbers and b.numbers:
            score += cfg.link_number_weight * len(a.numbers & b.numbers) / len(a.numbers | b.numbers)
        if a.years and b.years:
            score += cfg.link_year_weight * (1.0 if a.years & b.years else -1.0)
        if a.months and b.months:
            near = any(abs(m - n) <= cfg.date_slack for m in a.months for n in b.months)
            score += cfg.link_date_weight * (1.0 if near else -1.0)
        if a.countries and b.countries and not a.countries & b.countries:
            score -= cfg.link_country_weight
        return score

    def link(self, feats: ArticleFeatures, members: list[ArticleFeatures]) -> float:
        """Average pair score of a full text against a development's kept member texts."""
        return sum(self.pair_score(feats, m) for m in members) / len(members)

    def _dev_link(self, a: _Dev, b: _Dev) -> float:
        """Average pair score between the member texts of two developments."""
        pairs = [self.pair_score(x, y) for x in a.members for y in b.members]
        return sum(pairs) / len(pairs)

    def _bridge(
        self, dev: _Dev, others: list[tuple[float, int]], threshold: float
    ) -> tuple[_Dev, list[Merge]]:
        """Merge strong second matches into one development; the oldest one is kept."""
        merges: list[Merge] = []
        cfg = self.config
        for score, other_id in others:
            if score < threshold * cfg.fragment_ratio:
                break
            other = self._devs.get(other_id)
            if other is None:
                continue
            if dev.members and other.members:
                # Two full-text developments: merged when their member texts match on
                # average (pairs of one event, not of one subject), not on a single
                # bridging article. A fragment of one or two articles that started before
                # this development had grown is taken in at the bar a joining text meets.
                small = min(len(dev.members), len(other.members)) <= cfg.fragment_size
                if score < threshold and not small:
                    continue
                link = self._dev_link(dev, other)
                if link < (cfg.fragment_link if small else cfg.merge_link):
                    continue
                why = f"bridged by an article (score {score:.2f}, average link {link:.2f})"
            else:
                if score < threshold * cfg.merge_ratio:
                    continue
                similarity = _cosine(dev.centroid, dev.norm, other.centroid, other.norm)
                sparse = _headline_only(dev) and _headline_only(other)
                if similarity < (cfg.headline_merge_similarity if sparse else cfg.merge_similarity):
                    continue
                why = f"bridged by an article (score {score:.2f}, centroid cosine {similarity:.2f})"
            kept, absorbed = (dev, other) if dev.id < other.id else (other, dev)
            self._absorb(kept, absorbed)
            merges.append(Merge(kept.id, absorbed.id, why))
            dev = kept
        return dev, merges

    def forming_sibling(self, dev_id: int, now: datetime) -> tuple[int, float] | None:
        """Another open development of the same topic, taking articles right now, that is
        similar enough to ``dev_id`` to be the same story still forming: (its id, similarity).

        Candidates come from the inverted index (the development's key terms), like an
        article's: the cost does not grow with the store.
        """
        dev = self._devs.get(dev_id)
        if dev is None:
            return None
        cfg = self.config
        hits: Counter[int] = Counter()
        centroid = dev.centroid
        for term in heapq.nlargest(cfg.query_terms, centroid, key=lambda t: centroid[t]):
            for other_id in self._postings.get(term, ()):
                if other_id != dev_id:
                    hits[other_id] += 1
        best: tuple[int, float] | None = None
        for other_id, _ in hits.most_common(cfg.max_candidates):
            other = self._devs.get(other_id)
            if other is None or other.topic != dev.topic or other.touched is None:
                continue
            # Forming now, and reported in the same minutes as this one: a backlog of old
            # articles processed today is not a story breaking alongside it.
            if now - other.touched > cfg.forming_within or abs(dev.last_seen - other.last_seen) > cfg.forming_within:
                continue
            similarity, bar = self._similarity(dev, other)
            if similarity >= bar and (best is None or similarity > best[1]):
                best = (other_id, similarity)
        return best

    def _similarity(self, a: _Dev, b: _Dev) -> tuple[float, float]:
        """How alike two developments are, and how alike they must be to count as forming
        one story (see ``forming_share``)."""
        cfg = self.config
        if a.members and b.members:
            return self._dev_link(a, b), cfg.forming_share_full * cfg.merge_link
        sparse = _headline_only(a) and _headline_only(b)
        bar = cfg.headline_merge_similarity if sparse else cfg.merge_similarity
        return _cosine(a.centroid, a.norm, b.centroid, b.norm), cfg.forming_share * bar

    # -- development state ----------------------------------------------------------

    def _new_dev(self, dev_id: int, topic: str, when: datetime) -> _Dev:
        dev = _Dev(dev_id, topic, "", when, when)
        self._devs[dev_id] = dev
        return dev

    def _add_member(
        self,
        dev: _Dev,
        feats: ArticleFeatures,
        article: Article,
        when: datetime,
        now: datetime,
        score: float,
    ) -> None:
        for t, w in feats.vector.items():
            dev.centroid[t] = dev.centroid.get(t, 0.0) + w
        for t, w in feats.title_vector.items():
            dev.title_centroid[t] = dev.title_centroid.get(t, 0.0) + w
        for t, w in feats.name_vector.items():
            dev.name_centroid[t] = dev.name_centroid.get(t, 0.0) + w
        if self._is_full(feats):
            _keep_member(dev.members, feats, self.config.link_members)
        elif self._is_teaser(feats):
            _keep_member(dev.teasers, feats, self.config.link_members)
        dev.days.update(feats.days)
        dev.numbers.update(feats.numbers)
        dev.years.update(feats.years)
        dev.months.update(feats.months)
        dev.size += 1
        dev.with_body += feats.body_terms >= self.config.min_body_terms
        dev.first_seen = min(dev.first_seen, when)
        dev.last_seen = max(dev.last_seen, when)
        dev.touched = max(dev.touched or now, now)
        if score > dev.headline_score and article.title.strip():
            dev.headline, dev.headline_score = article.title, score
        self._trim(dev)
        self._touch(dev, feats.vector, self._query_terms(feats))

    def _absorb(self, kept: _Dev, absorbed: _Dev) -> None:
        for t, w in absorbed.centroid.items():
            kept.centroid[t] = kept.centroid.get(t, 0.0) + w
        for t, w in absorbed.title_centroid.items():
            kept.title_centroid[t] = kept.title_centroid.get(t, 0.0) + w
        for t, w in absorbed.name_centroid.items():
            kept.name_centroid[t] = kept.name_centroid.get(t, 0.0) + w
        kept.numbers.update(absorbed.numbers)
        kept.years.update(absorbed.years)
        kept.months.update(absorbed.months)
        for member in absorbed.members:
            _keep_member(kept.members, member, self.config.link_members)
        for teaser in absorbed.teasers:
            _keep_member(kept.teasers, teaser, self.config.link_members)
        kept.days.update(absorbed.days)
        kept.size += absorbed.size
        kept.with_body += absorbed.with_body
        kept.first_seen = min(kept.first_seen, absorbed.first_seen)
        kept.last_seen = max(kept.last_seen, absorbed.last_seen)
        kept.touched = max(kept.touched or kept.last_seen, absorbed.touched or absorbed.last_seen)
        self._drop(absorbed.id)
        self._trim(kept)
        self._touch(kept, kept.centroid)

    def _trim(self, dev: _Dev) -> None:
        cfg = self.config
        dev.centroid, dev.norm = _capped(dev.centroid, cfg.max_terms)
        dev.title_centroid, dev.title_norm = _capped(dev.title_centroid, cfg.max_terms)
        dev.name_centroid, dev.name_norm = _capped(dev.name_centroid, cfg.max_names)
        for counter in (dev.numbers, dev.years):
            _cap_counter(counter, cfg.max_names)
        _cap_counter(dev.months, cfg.max_names)
        _cap_counter(dev.days, cfg.max_names)

    def _touch(self, dev: _Dev, vector: Mapping[str, float], terms: int = 0) -> None:
        """Index the development under its strongest terms; keep posting lists capped."""
        cap = self.config.postings_cap
        for term in heapq.nlargest(terms or self.config.query_terms, vector, key=lambda t: vector[t]):
            posting = self._postings.get(term)
            if posting is None:
                posting = self._postings[term] = OrderedDict()
            posting[dev.id] = None
            posting.move_to_end(dev.id)
            if len(posting) > cap:
                posting.popitem(last=False)
        self._by_activity[dev.id] = None
        self._by_activity.move_to_end(dev.id)

    def _drop(self, dev_id: int) -> None:
        self._devs.pop(dev_id, None)
        self._by_activity.pop(dev_id, None)
        # Postings are cleaned lazily: a missing id is skipped and falls off the LRU end.

    def expire(self, before: datetime) -> int:
        """Drop developments that took no article since ``before`` (processing time)."""
        dropped = 0
        while self._by_activity:
            dev_id = next(iter(self._by_activity))
            dev = self._devs.get(dev_id)
            if dev is not None and (dev.touched or dev.last_seen) >= before:
                break
            self._by_activity.popitem(last=False)
            self._devs.pop(dev_id, None)
            dropped += 1
        if dropped and len(self._postings) > 50 * max(1, len(self._devs)) + 100_000:
            self._prune_postings()
        return dropped

    def _prune_postings(self) -> None:
        for term in list(self._postings):
            posting = self._postings[term]
            for dev_id in [d for d in posting if d not in self._devs]:
                del posting[dev_id]
            if not posting:
                del self._postings[term]

    # -- introspection and restart --------------------------------------------------

    def __contains__(self, dev_id: int) -> bool:
        return dev_id in self._devs

    def __len__(self) -> int:
        return len(self._devs)

    def headline(self, dev_id: int) -> str:
        return self._devs[dev_id].headline

    def key_terms(self, dev_id: int, n: int = 8) -> tuple[str, ...]:
        dev = self._devs[dev_id]
        return tuple(t for t, _ in heapq.nlargest(n, dev.centroid.items(), key=lambda kv: kv[1]))

    def seen(self, dev_id: int) -> tuple[datetime, datetime]:
        dev = self._devs[dev_id]
        return dev.first_seen, dev.last_seen

    def features(self, dev_id: int) -> dict[str, Any]:
        """Everything needed to rebuild this development's index entry (JSON-serialisable)."""
        dev = self._devs[dev_id]
        return {
            "topic": dev.topic,
            "headline": dev.headline,
            "headline_score": dev.headline_score,
            "first_seen": dev.first_seen.isoformat(),
            "last_seen": dev.last_seen.isoformat(),
            "touched": (dev.touched or dev.last_seen).isoformat(),
            "size": dev.size,
            "with_body": dev.with_body,
            "centroid": dict(dev.centroid),
            "title_centroid": dict(dev.title_centroid),
            "name_centroid": dict(dev.name_centroid),
            "numbers": dict(dev.numbers),
            "years": dict(dev.years),
            "months": {str(k): v for k, v in dev.months.items()},
            "members": [_member_json(m) for m in dev.members],
            "teasers": [_member_json(m) for m in dev.teasers],
            "days": {str(k): v for k, v in dev.days.items()},
        }

    def restore(self, dev_id: int, features: Mapping[str, Any]) -> None:
        """Put a stored development back into the index (after :meth:`learn` on its articles)."""
        dev = _Dev(
            id=dev_id,
            topic=str(features.get("topic", "")),
            headline=str(features.get("headline", "")),
            first_seen=datetime.fromisoformat(str(features["first_seen"])),
            last_seen=datetime.fromisoformat(str(features["last_seen"])),
            size=int(features.get("size", 1)),
            with_body=int(features.get("with_body", 0)),
            headline_score=float(features.get("headline_score", 0.0)),
        )
        touched = features.get("touched")
        dev.touched = datetime.fromisoformat(str(touched)) if touched else dev.last_seen
        dev.centroid = _floats(features.get("centroid"))
        dev.title_centroid = _floats(features.get("title_centroid"))
        dev.name_centroid = _floats(features.get("name_centroid"))
        dev.numbers = Counter({str(k): int(v) for k, v in dict(features.get("numbers") or {}).items()})
        dev.years = Counter({str(k): int(v) for k, v in dict(features.get("years") or {}).items()})
        dev.months = Counter({int(k): int(v) for k, v in dict(features.get("months") or {}).items()})
        body = self.config.min_body_terms
        dev.members = [_member(m, body) for m in list(features.get("members") or [])[: self.config.link_members]]
        teaser = self.config.min_teaser_terms
        dev.teasers = [_member(m, teaser) for m in list(features.get("teasers") or [])[: self.config.link_members]]
        dev.days = Counter({int(k): int(v) for k, v in dict(features.get("days") or {}).items()})
        self._devs[dev_id] = dev
        self._trim(dev)
        self._touch(dev, dev.centroid)

    def rebuild(self, dev_id: int, topic: str, articles: Iterable[Article]) -> None:
        """Rebuild a development from its articles when no stored features exist."""
        for article in articles:
            feats = self.featurize(article)
            dev = self._devs.get(dev_id) or self._new_dev(dev_id, topic, article.published)
            self._add_member(dev, feats, article, article.published, article.published, score=0.0)


def _distance(when: datetime, first: datetime, last: datetime) -> float:
    """Seconds between a time and a development's span (0 inside it)."""
    if when < first:
        return (first - when).total_seconds()
    return max(0.0, (when - last).total_seconds())


def _days_distance(days: frozenset[int], when: datetime, dev: _Dev) -> float:
    """Seconds between the event days an article names and the development's span, or
    between the article's own day and the event days the development's reports name
    (whole days: the same day is no distance). Infinite when neither names a day."""
    best = math.inf
    if days:
        first, last = dev.first_seen.date().toordinal(), dev.last_seen.date().toordinal()
        best = min(max(0, first - d, d - last) for d in days)
    if dev.days:
        own = when.date().toordinal()
        best = min(best, min(abs(own - e) for e in dev.days))
    return best * 86400.0


def _shared(a: Mapping[str, float], b: Mapping[str, float]) -> int:
    return sum(1 for t in a if t in b)


def _headline_only(dev: _Dev) -> bool:
    return 2 * dev.with_body < dev.size


def _floats(value: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(value or {}).items()}


def _known_share(found: frozenset[str], counts: Counter[str], size: int) -> float:
    """Share of the article's numbers that recur in the development (fully if in half its members)."""
    if not found or not counts:
        return 0.0
    return sum(min(1.0, 2 * counts.get(x, 0) / size) for x in found) / len(found)


def _agreement(years: frozenset[str], counts: Counter[str], size: int) -> float:
    """+1 when the article names a year the development is about, -1 when only other years."""
    if not years or not counts:
        return 0.0
    if any(2 * counts.get(y, 0) >= size for y in years):
        return 1.0
    return 0.0 if any(y in counts for y in years) else -1.0


def _member_json(m: ArticleFeatures) -> dict[str, Any]:
    return {
        "vector": dict(m.vector),
        "names": dict(m.name_vector),
        "numbers": sorted(m.numbers),
        "years": sorted(m.years),
        "months": sorted(m.months),
        "countries": sorted(m.countries),
    }


def _member(data: Mapping[str, Any], body_terms: int) -> ArticleFeatures:
    """A stored member text back as features (only what the average link reads)."""
    return ArticleFeatures(
        vector=_floats(data.get("vector")),
        title_vector={},
        body_terms=body_terms,
        name_vector=_floats(data.get("names")),
        numbers=frozenset(str(x) for x in data.get("numbers") or ()),
        years=frozenset(str(x) for x in data.get("years") or ()),
        title_terms=(),
        months=frozenset(int(x) for x in data.get("months") or ()),
        countries=frozenset(str(x) for x in data.get("countries") or ()),
    )


def _keep_member(members: list[ArticleFeatures], feats: ArticleFeatures, cap: int) -> None:
    """Keep the first half of the cap (what the development is about) and the most recent."""
    members.append(feats)
    if len(members) > cap:
        del members[cap // 2]


def _cap_counter(counter: Counter[Any], cap: int) -> None:
    if len(counter) > cap:
        keep = counter.most_common(cap)
        counter.clear()
        counter.update(dict(keep))


def _date_fit(months: frozenset[int], counts: Counter[int], slack: int) -> float:
    """+1 when an explicit date of the article is near one of the development's, -1 when
    both carry dates and none are near, 0 when either has none (no evidence either way)."""
    if not months or not counts:
        return 0.0
    if any(abs(m - d) <= slack for m in months for d in counts):
        return 1.0
    return -1.0


def _cosine(a: Mapping[str, float], na: float, b: Mapping[str, float], nb: float) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    return dot / ((na or 1.0) * (nb or 1.0))


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _capped(vector: dict[str, float], cap: int) -> tuple[dict[str, float], float]:
    """Keep the ``cap`` strongest terms; returns the vector and its norm."""
    if len(vector) > cap:
        vector = dict(heapq.nlargest(cap, vector.items(), key=lambda kv: kv[1]))
    return vector, math.sqrt(sum(w * w for w in vector.values()))
