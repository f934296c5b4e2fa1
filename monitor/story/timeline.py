"""Storylines: developments of one ongoing story, linked over weeks or, by kind, years.

A development joins the storyline of an earlier development of the same topic, seen
within ``storyline_window``, when the two share at least ``MIN_SHARED`` *distinctive*
features: key terms, headline terms and capitalised names (Huawei, SMIC, H20). A feature
is distinctive when it is not one of the topic's own words (passed as ``common_terms``)
and not spread over much of the candidate pool (in a pool of forty export-control
developments, "chip" and "export" say nothing; "smic" and "7nm" do). Among qualifying
candidates, the one sharing the rarest features wins; ties go to the most recent. At least one shared
distinctive feature must be a name both developments carry: a story is about someone or
something, and generic words ("licence", "rule") alone link unrelated developments.

Developments of one *series kind* link by their kind alone (``monitor.story.rubric``: the US chip
rules, Entity List additions, enforcement penalties, allies' controls, China's controls):
the October 2023 rules update the October 2022 rules although their reports share few
words, so such storylines run for years (``storyline_window``). Other kinds (a licence on
one company's product, an inquiry) join a storyline only through shared names as above,
and only with developments of their own kind; commentary joins none. Only corroborated developments appear in
a timeline: a single-source item is not a fact to recall under "Earlier in this story".

The storyline id is the id of its earliest development, so a chain A ← B ← C keeps A's
id. Features use the same folding and stemming as clustering (:mod:`monitor.story.textfeatures`),
so key terms and headline words meet.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from monitor.models import Development, DevelopmentState, TimelineEntry
from monitor.story import textfeatures as tf
from monitor.story.rubric import COMMENTARY_KIND, SERIES_KINDS

MIN_SHARED = 2  # distinctive features two developments must share to be one story
COMMON_SHARE = 0.3  # a feature in more than this share of the pool is not distinctive
COMMON_FLOOR = 3  # ... but in small pools a feature seen this often still counts
MAX_CANDIDATES = 300  # most recent candidates examined (and loaded): bounds the cost per new development
KIND_CANDIDATES = 20  # plus the newest of the development's own series kind, however old
NAMES_WINDOW = timedelta(days=90)  # how far back shared names alone link two developments
TIMELINE_LIMIT = 10  # earlier developments listed in an alert (newest kept)
LEAD_CHARS = 500


def features(dev: Development, common: Collection[str] = ()) -> frozenset[str]:
    """Folded, stemmed key terms, headline terms and names of one development."""
    found = _features(dev.headline or "", tuple(dev.key_terms), (dev.lead or "")[:LEAD_CHARS])
    return found - frozenset(common) if common else found


@lru_cache(maxsize=50_000)  # every candidate is compared again for each new development
def _features(headline: str, key_terms: tuple[str, ...], lead: str) -> frozenset[str]:
    found: set[str] = {tf.stem(tf.fold(t)) for t in key_terms if t}
    found.update(tf.terms(headline))
    found.update(tf.names(headline, headline=True))
    found.update(tf.names(lead))
    return frozenset(f for f in found if _useful(f))


def entities(dev: Development) -> frozenset[str]:
    """The names (people, places, organisations, products) among a development's features."""
    return _entities(dev.headline or "", (dev.lead or "")[:LEAD_CHARS])


@lru_cache(maxsize=50_000)
def _entities(headline: str, lead: str) -> frozenset[str]:
    return frozenset(f for f in tf.names(headline, headline=True) | tf.names(lead) if _useful(f))


def _useful(feature: str) -> bool:
    # Bare numbers and years recur across unrelated stories; "h20" and "7nm" do not.
    return len(feature) >= 2 and not feature.replace(".", "").isdigit()


def _common(terms: Iterable[str]) -> frozenset[str]:
    return frozenset(t for phrase in terms for t in tf.terms(phrase.replace("*", "")))


def _order(dev: Development) -> tuple[datetime, float]:
    """Chronological order; ids break ties (an unsaved development sorts last)."""
    return dev.first_seen, float(dev.id) if dev.id is not None else math.inf


def _alive(dev: Development) -> bool:
    return dev.id is not None and dev.merged_into is None and dev.state != DevelopmentState.MERGED


def _eligible(
    dev: Development, candidates: Sequence[Development], window: timedelta, now: datetime
) -> list[Development]:
    """Unmerged developments of the same topic within the window, before or after this one.

    Both directions: a backlog can bring an earlier development in after a later one, and
    the two still belong to one story.
    """
    since = min(dev.first_seen, now) - window
    until = dev.last_seen + window
    # Cheap comparisons first: most candidates fail on time or topic.
    kept = [
        c
        for c in candidates
        if c.last_seen >= since
        and c.first_seen <= until
        and c.topic == dev.topic
        and c.id != dev.id
        and _alive(c)
        and c.first_seen <= now
    ]
    kept.sort(key=lambda c: c.last_seen, reverse=True)
    return kept[:MAX_CANDIDATES]


def storyline_for(
    dev: Development,
    candidates: Sequence[Development],
    *,
    window: timedelta,
    now: datetime,
    common_terms: Iterable[str] = (),
) -> int | None:
    """The storyline id this development belongs to, or None when it starts no link.

    ``common_terms`` are the topic's own rule terms (e.g. "export controls", "chip*"):
    every development of the topic shares them, so they never link two developments.
    """
    if dev.kind == COMMENTARY_KIND:
        return None
    pool = [c for c in _eligible(dev, candidates, window, now) if _same_family(dev, c)]
    if not pool:
        return None
    series = _by_kind(dev, pool)
    if series is not None:
        return series.storyline_id or series.id
    # A story told through shared names (a company, a product) runs for months, not years:
    # over years, the same big names recur in unrelated stories.
    pool = _eligible(dev, pool, min(window, NAMES_WINDOW), now)
    if not pool:
        return None
    common = _common(common_terms)
    mine = features(dev, common)
    # Only the development's own features matter, so only their spread is counted.
    # One story means shared entities: generic words alone ("licence", "rule") link nothing.
    my_names = entities(dev)
    overlaps = [(c, mine & features(c)) for c in pool if my_names & entities(c)]
    df = Counter(f for _, shared in overlaps for f in shared)
    n = len(pool) + 1
    limit = max(COMMON_FLOOR, COMMON_SHARE * n)
    best: tuple[float, datetime, Development] | None = None
    for cand, overlap in overlaps:
        shared = [f for f in overlap if df[f] + 1 <= limit]
        if len(shared) < MIN_SHARED or not my_names.intersection(shared) & entities(cand):
            continue
        weight = sum(math.log((n + 1) / df[f]) for f in shared)
        key = (weight, cand.last_seen, cand)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        return None
    chosen = best[2]
    return chosen.storyline_id or chosen.id


def _same_family(dev: Development, cand: Development) -> bool:
    """Unrated developments compare as before; rated ones only with their own kind (an
    inquiry with inquiries, a licence on a product with such licences), never commentary."""
    if cand.kind == COMMENTARY_KIND:
        return False
    return not dev.kind or not cand.kind or dev.kind == cand.kind


def _by_kind(dev: Development, pool: Sequence[Development]) -> Development | None:
    """The nearest corroborated development of the same series kind, before or after."""
    if dev.kind not in SERIES_KINDS:
        return None
    same = [c for c in pool if c.kind == dev.kind and _corroborated(c)]
    if not same:
        return None
    return min(same, key=lambda c: (abs((c.first_seen - dev.first_seen).total_seconds()), c.id or 0))


def _corroborated(dev: Development) -> bool:
    return dev.state is DevelopmentState.CORROBORATED or (dev.state is DevelopmentState.CLOSED and dev.independent >= 2)


def timeline_entries(
    dev: Development, storyline_devs: Sequence[Development], *, limit: int = TIMELINE_LIMIT
) -> tuple[TimelineEntry, ...]:
    """Earlier corroborated developments of the same storyline, oldest first (the newest
    ``limit`` kept)."""
    if dev.storyline_id is None:
        return ()
    earlier: dict[int, Development] = {}
    for d in storyline_devs:
        if d.id is None or not _alive(d) or d.id == dev.id or not _corroborated(d):
            continue
        if (d.storyline_id or d.id) == dev.storyline_id and _order(d) < _order(dev):
            earlier[d.id] = d
    ordered = sorted(earlier.items(), key=lambda kv: (kv[1].first_seen, kv[0]))
    kept = ordered[-limit:] if limit > 0 else []
    return tuple(TimelineEntry(i, d.headline, d.first_seen, d.independent) for i, d in kept)
