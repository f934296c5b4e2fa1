"""Impact 1–10 with reasons, and a five-tier sentiment.

Impact is a transparent sum, rounded and clamped to 1..10:

    1 (base)
    + each signal group present (regulatory action, agency, enforcement, operational
      effect, ...): the strongest tier of the group; half weight when the term is only in
      an article body, not in a headline or lead
    + money: by the largest amount named (0.5 point from $1M … 2 from $1B) × money_weight
    + primary source (government, the company itself): primary_source_weight
    + coverage: coverage_weight per independent source beyond the second, at most
      coverage_cap — small on purpose, so volume alone never makes a story important
    + commentary (negative): when most headlines say opinion/analysis/podcast …

and above 7 each further point counts half, so signals that pile up (a rule that also
mentions penalties and an amount) reach 9, while 10 needs an operational hit on top.

Calibration (tests pin it): a BIS rule adding companies to the Entity List, published by
BIS itself, scores 8–9 ("an operator should act", the default act_threshold); an opinion
piece about export controls scores 2–3; a story every outlet runs that changes no rule,
money or operation stays at 2–3 whatever its coverage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from monitor.models import Article, Decision, Impact, Sentiment
from monitor.settings import Impact as ImpactSettings
from monitor.settings import ImpactSignal, Topic
from monitor.terms import TermHit, TermMatcher, compile_terms

BASE = 1.0
KNEE, TOP_SLOPE = 7.0, 0.5  # above 7 points, each further point counts half (10 stays rare)
BODY_FACTOR = 0.5  # a signal only in the body, not in what the headline and lead say
MAX_ARTICLES = 50  # articles of one development read for signals (10,000 reprints add nothing)
MAX_BODY = 20_000  # characters of one article body read for signals
LEAD_CHARS = 400  # when a feed gives no summary, this much of the text is the lead
_SEP = "\n|\n"  # joins texts; "|" is not a phrase gap, so no phrase spans two articles

DEFAULT_SIGNALS: tuple[ImpactSignal, ...] = (
    ImpactSignal(
        name="regulatory action",
        weight=4.0,
        terms=(
            "interim final rule",
            "final rule",
            "proposed rule",
            "Entity List",
            "Unverified List",
            "Military End User List",
            "foreign direct product rule",
            "license requirement*",
            "licence requirement*",
            "licensing requirement*",
            "export ban*",
            "ban on export*",
            "effective immediately",
        ),
    ),
    ImpactSignal(
        name="regulatory action",
        weight=2.0,
        terms=(
            "rule",
            "rules",
            "regulation*",
            "ban",
            "bans",
            "banned",
            "banning",
            "restriction*",
            "restrict",
            "restricts",
            "curbs",
            "sanction*",
            "export control*",
            "blacklist*",
            "prohibit*",
        ),
    ),
    ImpactSignal(
        name="agency",
        weight=1.5,
        terms=(
            "BIS",
            "Bureau of Industry and Security",
            "Commerce Department",
            "Department of Commerce",
            "OFAC",
            "Office of Foreign Assets Control",
            "MOFCOM",
            "Ministry of Commerce",
            "Federal Register",
            "Justice Department",
            "Department of Justice",
            "DOJ",
            "European Commission",
        ),
    ),
    ImpactSignal(
        name="enforcement",
        weight=2.5,
        terms=(
            "fined",
            "indict*",
            "charged",
            "smuggl*",
            "arrest*",
            "pleaded guilty",
            "convicted",
            "sentenced",
            "seiz*",
            "settlement",
        ),
    ),
    # Talk of possible penalties ("violations could draw penalties") is a weaker tier.
    ImpactSignal(
        name="enforcement",
        weight=1.0,
        terms=("fine", "penalt*", "prosecut*", "violation*", "investigation", "probe"),
    ),
    ImpactSignal(
        name="operational effect",
        weight=2.5,
        terms=(
            "halt* shipment*",
            "halt* sales",
            "halt* exports",
            "cut off access",
            "cut off",
            "cuts off",
            "withdraw* product*",
            "pull* product*",
            "revok* licen*",
            "licen* revoked",
            "suspend* sales",
            "suspend* shipment*",
            "stop* shipping",
            "stop* selling",
            "pause* shipment*",
            "cease* supply",
            "cancel* orders",
        ),
    ),
    ImpactSignal(
        name="commentary",
        weight=-2.0,
        terms=(
            "opinion",
            "op-ed",
            "column",
            "editorial",
            "commentary",
            "analysis",
            "podcast",
            "newsletter",
            "explainer",
            "what to know",
            "letters",
        ),
    ),
)


# -- money ------------------------------------------------------------------------------

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MAG = r"trillion|tn|billion|bln|bn|b|million|mln|mn|m|thousand|k"
_SYMBOL = r"US\$|C\$|A\$|HK\$|\$|€|£|¥|(?:USD|EUR|GBP|CNY|RMB|JPY)\s?"
_WORD_CURRENCY = r"dollars|euros|pounds|yuan|renminbi|yen"
_MONEY = re.compile(
    rf"(?<!\w)(?P<cur>{_SYMBOL})(?P<num>{_NUM})(?:\s?(?P<mag>{_MAG}))?(?!\w)"
    rf"|(?<![\w.])(?P<num2>{_NUM})\s?(?P<mag2>{_MAG})\s+(?P<cur2>{_WORD_CURRENCY})(?!\w)"
    rf"|(?<![\w.])(?P<num3>{_NUM})\s?(?P<mag3>bn|mn|tn)(?!\w)",
    re.IGNORECASE,
)
_MAGNITUDE = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "bln": 1e9,
    "billion": 1e9,
    "tn": 1e12,
    "trillion": 1e12,
}
# Rough rates: only the order of magnitude matters here. "¥" is read as yuan, the
# commoner currency in this topic (yen amounts are then overstated, never missed).
_TO_USD = {
    "$": 1.0,
    "us$": 1.0,
    "usd": 1.0,
    "dollars": 1.0,
    "c$": 0.73,
    "a$": 0.65,
    "hk$": 0.13,
    "€": 1.1,
    "eur": 1.1,
    "euros": 1.1,
    "£": 1.25,
    "gbp": 1.25,
    "pounds": 1.25,
    "¥": 0.14,
    "cny": 0.14,
    "rmb": 0.14,
    "yuan": 0.14,
    "renminbi": 0.14,
    "jpy": 0.007,
    "yen": 0.007,
}
_MONEY_POINTS = ((1e9, 2.0), (1e8, 1.5), (1e7, 1.0), (1e6, 0.5))


@dataclass(frozen=True, slots=True)
class Money:
    text: str  # as written: "$5 billion"
    usd: float  # rough value in US dollars


def money_amounts(text: str) -> tuple[Money, ...]:
    """Amounts of money named in the text, e.g. "$5 billion", "€200m", "1.2 bn"."""
    found = []
    for m in _MONEY.finditer(text):
        num = m.group("num") or m.group("num2") or m.group("num3")
        mag = (m.group("mag") or m.group("mag2") or m.group("mag3") or "").lower()
        cur = (m.group("cur") or m.group("cur2") or "$").strip().lower()
        value = float(num.replace(",", "")) * _MAGNITUDE.get(mag, 1.0) * _TO_USD.get(cur, 1.0)
        found.append(Money(m.group().strip(), value))
    return tuple(found)


def money_points(usd: float) -> float:
    return next((points for floor, points in _MONEY_POINTS if usd >= floor), 0.0)


# -- impact -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Texts:
    """A development's words, split by how much they say about what happened."""

    headlines: tuple[str, ...]
    lead: str  # headlines and leads joined
    body: str


@dataclass(frozen=True, slots=True)
class _Signals:
    signals: tuple[ImpactSignal, ...]
    matcher: TermMatcher


@lru_cache(maxsize=32)
def _compiled(settings: ImpactSettings) -> _Signals:
    signals = settings.signals if settings.signals is not None else DEFAULT_SIGNALS
    terms = dict.fromkeys(t for s in signals for t in s.terms)
    return _Signals(tuple(signals), compile_terms(terms))


def impact(view_articles: Sequence[Article], decision: Decision, topic: Topic) -> Impact:
    """Score a development 1..10 from its articles and corroboration, with the reasons."""
    settings = topic.impact
    texts = _texts(view_articles)
    parts: list[tuple[float, str]] = []
    parts += _signal_points(_compiled(settings), texts)
    parts += _money(texts, settings.money_weight)
    parts += _primary(view_articles, decision, settings.primary_source_weight)
    parts += _coverage(decision.independent, settings)
    raw = BASE + sum(points for points, _ in parts)
    if raw > KNEE:  # less room at the top: past the knee each point counts half
        raw = KNEE + (raw - KNEE) * TOP_SLOPE
    score = min(10, max(1, math.floor(raw + 0.5)))  # round half up: 7.5 → 8
    return Impact(score, tuple(reason for _, reason in parts))


def _texts(articles: Sequence[Article]) -> _Texts:
    chosen = sorted(articles, key=lambda a: a.published)[:MAX_ARTICLES]
    headlines = tuple(a.title or "" for a in chosen)
    leads = [a.summary or (a.text or "")[:LEAD_CHARS] for a in chosen]
    return _Texts(
        headlines=headlines,
        lead=_SEP.join((*headlines, *leads)),
        body=_SEP.join((a.text or "")[:MAX_BODY] for a in chosen),
    )


def _signal_points(compiled: _Signals, texts: _Texts) -> list[tuple[float, str]]:
    in_lead = compiled.matcher.found(texts.lead)
    in_body = compiled.matcher.found(texts.body)
    best: dict[str, tuple[float, str]] = {}  # signal name → strongest tier present
    for signal in compiled.signals:
        scored = _one_signal(signal, compiled.matcher, texts, in_lead, in_body)
        if scored is not None and (
            signal.name not in best or abs(scored[0]) > abs(best[signal.name][0])
        ):
            best[signal.name] = scored
    return list(best.values())


def _one_signal(
    signal: ImpactSignal,
    matcher: TermMatcher,
    texts: _Texts,
    in_lead: dict[str, TermHit],
    in_body: dict[str, TermHit],
) -> tuple[float, str] | None:
    if signal.weight < 0:
        return _negative(signal, matcher, texts.headlines)
    lead_hits = [in_lead[t] for t in signal.terms if t in in_lead]
    if lead_hits:
        return signal.weight, f"{signal.name}: {_quote(lead_hits)}"
    body_hits = [in_body[t] for t in signal.terms if t in in_body]
    if body_hits:
        return signal.weight * BODY_FACTOR, f"{signal.name}: {_quote(body_hits)} (body only)"
    return None


def _negative(
    signal: ImpactSignal, matcher: TermMatcher, headlines: Sequence[str]
) -> tuple[float, str] | None:
    """A negative signal (commentary) counts only when most headlines carry it."""
    terms = set(signal.terms)
    carrying = [
        hits for h in headlines if (hits := [x for x in matcher.find(h) if x.term in terms])
    ]
    if not headlines or len(carrying) * 2 < len(headlines):
        return None
    return signal.weight, f"{signal.name}: {_quote(carrying[0])} ({signal.weight:+g})"


def _quote(hits: Sequence[TermHit]) -> str:
    """The first two matches as written in the article (headlines come first in the text)."""
    texts = dict.fromkeys(h.matched for h in sorted(hits, key=lambda h: h.start))
    return ", ".join(f"'{t}'" for t in list(texts)[:2])


def _money(texts: _Texts, weight: float) -> list[tuple[float, str]]:
    if weight <= 0:
        return []
    lead, body = money_amounts(texts.lead), money_amounts(texts.body)
    candidates = [(money_points(m.usd) * weight, m, "") for m in lead]
    candidates += [(money_points(m.usd) * weight * BODY_FACTOR, m, " (body only)") for m in body]
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
MAX_SENTIMENT_CHARS = 600  # headline + lead read by VADER; it is slow on long text


@cache
def _analyzer() -> object:
    # Built on first use: loading the lexicon takes ~100 ms, and not every command needs it.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(headline: str, lead: str) -> float:
    """VADER compound score (-1..1) of the headline and the start of the lead."""
    text = ". ".join(p.strip() for p in (headline or "", lead or "") if p and p.strip())
    if not text:
        return 0.0
    scores = _analyzer().polarity_scores(text[:MAX_SENTIMENT_CHARS])  # type: ignore[attr-defined]
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
