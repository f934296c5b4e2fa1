"""Impact 1–10 with reasons, and a five-tier sentiment.

A topic's impact is rated by the analyst's rubric for export controls
(:mod:`monitor.story.rubric`: what kind of action, who took it, how big) unless the topic
configures its own ``impact.signals``. Those are summed, rounded and clamped to 1..10:

    1 (base)
    + each signal group present: the strongest tier of the group; half weight when the
      term is only in an article body, not in a headline or lead
    + money: by the largest amount named (0.5 point from $1M … 2 from $1B) × money_weight
    + primary source (government, the company itself): primary_source_weight
    + coverage: coverage_weight per independent source beyond the second, at most
      coverage_cap — small on purpose, so volume alone never makes a story important
    + a negative signal (commentary) counts when most headlines carry it

and above 7 each further point counts half, so signals that pile up reach 9, while 10
needs more on top.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

from monitor.config.settings import Impact as ImpactSettings
from monitor.config.settings import ImpactSignal, Topic
from monitor.config.terms import TermHit, TermMatcher, compile_terms
from monitor.models import Article, Decision, Impact, Sentiment
from monitor.story import rubric
from monitor.story.money import Money, largest, money_points
from monitor.story.rubric import Rating

BASE = 1.0
KNEE, TOP_SLOPE = 7.0, 0.5  # above 7 points, each further point counts half (10 stays rare)
BODY_FACTOR = 0.5  # a signal only in the body, not in what the headline and lead say
MAX_ARTICLES = rubric.MAX_ARTICLES  # articles of one development read (10,000 reprints add nothing)
MAX_BODY = 20_000  # characters of one article body read for signals
LEAD_CHARS = 400  # when a feed gives no summary, this much of the text is the lead
MAX_READS = 20_000  # articles whose reading is kept between calls

# -- impact -----------------------------------------------------------------------------


TITLE, LEAD, BODY = 0, 1, 2  # where in an article a signal term was found


@dataclass(frozen=True, slots=True)
class _Read:
    """What one article says, read once: each signal's hits by field, its largest amounts."""

    signals: tuple[tuple[tuple[int, TermHit], ...], ...]  # per signal: (TITLE|LEAD|BODY, hit)
    money_lead: Money | None  # in the title or lead
    money_body: Money | None


@dataclass(frozen=True, slots=True)
class _Signals:
    signals: tuple[ImpactSignal, ...]
    matcher: TermMatcher
    # A development is re-scored each time an article joins it; each article is read once.
    reads: OrderedDict[tuple[str, int, int], _Read] = field(default_factory=OrderedDict)


@lru_cache(maxsize=32)
def _compiled(settings: ImpactSettings) -> _Signals:
    signals = settings.signals or ()
    terms = dict.fromkeys(t for s in signals for t in s.terms)
    return _Signals(tuple(signals), compile_terms(terms))


def _read(compiled: _Signals, article: Article) -> _Read:
    title = article.title or ""
    lead = article.summary or (article.text or "")[:LEAD_CHARS]
    body = (article.text or "")[:MAX_BODY]
    key = (title, hash(lead), hash(body))
    cached = compiled.reads.get(key)
    if cached is not None:
        compiled.reads.move_to_end(key)
        return cached
    found = [compiled.matcher.found(text) for text in (title, lead, body)]
    lead_money = [m for m in (largest(title), largest(lead)) if m is not None]
    read = _Read(
        signals=tuple(
            tuple(
                (where, seen[t]) for where, seen in enumerate(found) for t in s.terms if t in seen
            )
            for s in compiled.signals
        ),
        money_lead=max(lead_money, key=lambda m: m.usd, default=None),
        money_body=largest(body),
    )
    compiled.reads[key] = read
    if len(compiled.reads) > MAX_READS:
        compiled.reads.popitem(last=False)
    return read


def impact(view_articles: Sequence[Article], decision: Decision, topic: Topic) -> Impact:
    """Score a development 1..10 from its articles, with the reasons (see :func:`rate`)."""
    return rate(view_articles, decision, topic).impact


def rate(view_articles: Sequence[Article], decision: Decision, topic: Topic) -> Rating:
    """The impact of a development and the kind of action it reports.

    The analyst's rubric for export controls (:mod:`monitor.story.rubric`) unless the topic
    configures its own signals, which are then summed as described above (no kind).
    """
    settings = topic.impact
    if settings.signals is None:
        return rubric.rate(view_articles)
    return Rating(_summed(view_articles, decision, settings), "")


def _summed(view_articles: Sequence[Article], decision: Decision, settings: ImpactSettings) -> Impact:
    compiled = _compiled(settings)
    chosen = sorted(view_articles, key=lambda a: a.published)[:MAX_ARTICLES]
    reads = [_read(compiled, a) for a in chosen]
    parts: list[tuple[float, str]] = []
    parts += _signal_points(compiled.signals, reads)
    parts += _money(reads, settings.money_weight)
    parts += _primary(view_articles, decision, settings.primary_source_weight)
    parts += _coverage(decision.independent, settings)
    raw = BASE + sum(points for points, _ in parts)
    if raw > KNEE:  # less room at the top: past the knee each point counts half
        raw = KNEE + (raw - KNEE) * TOP_SLOPE
    score = min(10, max(1, math.floor(raw + 0.5)))  # round half up: 7.5 → 8
    return Impact(score, tuple(reason for _, reason in parts))


# A hit with its place: (TITLE|LEAD|BODY, article index, offset) orders the quotes.
_Placed = tuple[tuple[int, int, int], TermHit]


def _signal_points(
    signals: Sequence[ImpactSignal], reads: Sequence[_Read]
) -> list[tuple[float, str]]:
    best: dict[str, tuple[float, str]] = {}  # signal name → strongest tier present
    for k, signal in enumerate(signals):
        hits = [((w, i, h.start), h) for i, r in enumerate(reads) for w, h in r.signals[k]]
        if not hits:
            continue
        scored = (
            _negative(signal, hits, len(reads)) if signal.weight < 0 else _positive(signal, hits)
        )
        if scored is not None and (
            signal.name not in best or abs(scored[0]) > abs(best[signal.name][0])
        ):
            best[signal.name] = scored
    return list(best.values())


def _positive(signal: ImpactSignal, hits: Sequence[_Placed]) -> tuple[float, str] | None:
    up_front = [h for h in hits if h[0][0] != BODY]
    if up_front:
        return signal.weight, f"{signal.name}: {_quote(up_front)}"
    return signal.weight * BODY_FACTOR, f"{signal.name}: {_quote(hits)} (body only)"


def _negative(
    signal: ImpactSignal, hits: Sequence[_Placed], articles: int
) -> tuple[float, str] | None:
    """A negative signal (commentary) counts only when most headlines carry it."""
    in_titles = [h for h in hits if h[0][0] == TITLE]
    if len({place[1] for place, _ in in_titles}) * 2 < articles:
        return None
    return signal.weight, f"{signal.name}: {_quote(in_titles[:1])} ({signal.weight:+g})"


def _quote(hits: Sequence[_Placed]) -> str:
    """The first two matches as written, headlines before leads before bodies."""
    texts = dict.fromkeys(hit.matched for _, hit in sorted(hits, key=lambda h: h[0]))
    return ", ".join(f"'{t}'" for t in list(texts)[:2])


def _money(reads: Sequence[_Read], weight: float) -> list[tuple[float, str]]:
    if weight <= 0:
        return []
    candidates = [
        (money_points(r.money_lead.usd) * weight, r.money_lead, "") for r in reads if r.money_lead
    ]
    candidates += [
        (money_points(r.money_body.usd) * weight * BODY_FACTOR, r.money_body, " (body only)")
        for r in reads
        if r.money_body
    ]
    candidates = [c for c in candidates if c[0] > 0]
    if not candidates:
        return []
    points, money, where = max(candidates, key=lambda c: (c[0], c[1].usd))
    return [(points, f"money: {money.text}{where}")]


def _primary(
    articles: Sequence[Article], decision: Decision, weight: float
) -> list[tuple[float, str]]:
    label = next((o.label for o in decision.origins if o.primary), "")
    if not label:
        label = next((a.outlet or a.source_id for a in articles if a.tier == "primary"), "")
    return [(weight, f"primary source: {label}")] if label and weight else []


def _coverage(independent: int, settings: ImpactSettings) -> list[tuple[float, str]]:
    points = min(max(0, independent - 2) * settings.coverage_weight, settings.coverage_cap)
    if points <= 0:
        return []
    return [(points, f"coverage: {independent} independent sources (+{points:g})")]


# -- sentiment --------------------------------------------------------------------------

# VADER's compound score is the summed word valence x squashed as x / sqrt(x² + 15). Its
# own cut-offs (±0.05) suit social media; news wording is flatter, so:
# - neutral below |0.2| (x < 0.8): no tone word, or one weak and hedged one;
# - very negative / very positive from |0.8| (x ≥ 5.2): two or more strong words, or one
#   strongly amplified ("Smuggling ring charged; executives arrested" -0.93, "shares soar
#   to record high after blowout earnings" 0.88). One strong word stays one tier lower
#   ("Company faces losses after ban" -0.74 is negative, not very negative).
# An alert's reader should see "very" rarely; with ±0.6 most single-word headlines got it.
SENTIMENT_THRESHOLDS = (-0.8, -0.2, 0.2, 0.8)
# VADER's cost grows faster than the text (0.05 ms for a headline, 0.4 ms with 300 more
# characters), and the tone of news sits in the headline and the lede, so it reads the
# headline and the lead's first sentence, at most LEDE_CHARS of it.
LEDE_CHARS = 240
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“‘'(])")
_NOT_AN_END = re.compile(
    r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|No|vs|Jr|Sr|Inc|Corp|Co|Ltd|Gov|Sen|Rep))\.$"
)


# Words VADER scores as positive that, in this field's news, are nearly always part of a
# name or a technical term: "Bureau of Industry and Security", "Justice Department",
# "United States", "artificial intelligence", "advanced chips", "AI safety". Left in, they
# made plain regulatory news read as positive.
NEUTRAL_IN_NEWS = ("security", "justice", "united", "intelligence", "advanced", "defense", "safety")


@cache
def _analyzer() -> object:
    # Built on first use: loading the lexicon takes ~100 ms, and not every command needs it.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    for word in NEUTRAL_IN_NEWS:
        analyzer.lexicon.pop(word, None)
    return analyzer


def lede(lead: str) -> str:
    """The first sentence of the lead, at most LEDE_CHARS characters."""
    text = " ".join((lead or "").split())
    for end in _SENTENCE_END.finditer(text, 0, LEDE_CHARS + 1):
        if not _NOT_AN_END.search(text, 0, end.start()):  # "U.S. Commerce", "Mr. Li"
            return text[: end.start()]
    return text[:LEDE_CHARS]


@lru_cache(maxsize=4096)  # a development is re-scored on every new article; its words rarely change
def sentiment_score(headline: str, lead: str) -> float:
    """VADER compound score (-1..1) of the headline and the lead's first sentence."""
    parts = [p for p in (" ".join((headline or "").split()), lede(lead)) if p]
    if not parts:
        return 0.0
    scores = _analyzer().polarity_scores(". ".join(parts)[: 2 * LEDE_CHARS])  # type: ignore[attr-defined]
    return float(scores["compound"])


def tier(compound: float) -> Sentiment:
    """≤ -0.8 very negative, ≤ -0.2 negative, < 0.2 neutral, < 0.8 positive, else very positive."""
    very_neg, neg, pos, very_pos = SENTIMENT_THRESHOLDS
    if compound <= very_neg:
        return Sentiment.VERY_NEGATIVE
    if compound <= neg:
        return Sentiment.NEGATIVE
    if compound < pos:
        return Sentiment.NEUTRAL
    if compound < very_pos:
        return Sentiment.POSITIVE
    return Sentiment.VERY_POSITIVE


def sentiment(headline: str, lead: str) -> Sentiment:
    """Five-tier sentiment of a development's headline and lead."""
    return tier(sentiment_score(headline, lead))


def keep_what_is_read(members: list[Article], start: int = 0, end: int | None = None) -> None:
    """Drop, in members[start:end] (oldest first), what impact scoring never reads: the texts
    of members past the first MAX_ARTICLES, and text past MAX_BODY characters of the others.
    For callers that keep members between scorings (the store's cache)."""
    for member in members[max(start, MAX_ARTICLES) : end]:
        member.text = member.summary = ""
        member.signature = None
    for member in members[start : min(MAX_ARTICLES, end if end is not None else len(members))]:
        if len(member.text) > MAX_BODY:
            member.text = member.text[:MAX_BODY]
