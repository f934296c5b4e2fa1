"""Topic rules → which topics an article matches, and why (or why not).

Rules per topic (feeds.yaml ``topics[].rules``), evaluated over the fields listed in
``fields`` (title, summary, text):

- ``any``: at least one of these terms must occur (skipped when the list is empty);
- ``all``: every one of these terms must occur, in any of the fields;
- ``groups``: another way to match, beside ``any``/``all``: lists of terms (OR-groups); an
  article with a term from every list matches ("a control word and a thing the beat
  controls"), scored like ``any`` terms (its best term per group) against ``min_score``;
- ``none``: if any of these occurs the article is excluded, whatever else matched;
- score: every distinct ``any``/``all`` term that occurs adds ``title_weight`` when it is
  in the title, 1 when it is only in the summary or text (a term counts once, at its best
  field, so feeds that repeat the summary in the text do not double the score);
- ``min_score``: the score needed to match. A topic with no ``any``, ``all`` or ``groups``
  terms matches every article only when ``min_score`` is 0 or less.

A verdict that is not a match but found some of the topic's positive terms is *partial*
(a near miss): the pipeline fetches such an item's full text before a final no, and lets it
join an open development it reports (relevance belongs to the development, not only to the
lone article: the second outlet often words the same event differently).

A source's ``topics`` list restricts it to those topics. All terms of all topics go into
one matcher, so each field of an article is scanned once however many topics there are.
The term syntax (phrases, ``*``, capitals) is described in :mod:`monitor.config.terms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from monitor.config.settings import Topic
from monitor.config.terms import TermHit, TermMatcher, compile_terms, normalise_term
from monitor.models import Article, TopicMatch

FIELDS: tuple[str, ...] = ("title", "summary", "text")


@dataclass(frozen=True, slots=True)
class CompiledTopic:
    id: str
    fields: tuple[str, ...]
    any: tuple[str, ...]
    all: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    none: tuple[str, ...]
    title_weight: float
    min_score: float

    @property
    def positive_terms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.any, *self.all, *(t for g in self.groups for t in g))))


@dataclass(frozen=True, slots=True)
class CompiledTopics:
    topics: tuple[CompiledTopic, ...]
    matcher: TermMatcher
    fields: tuple[str, ...]  # the fields any topic looks at, in FIELDS order


@dataclass(frozen=True, slots=True)
class TopicVerdict:
    """The full outcome for one topic: matched or not, the score and the sentence why."""

    topic_id: str
    matched: bool
    score: float
    explanation: str
    partial: bool = False  # not matched, not excluded, but some positive term was found


# Where each term was found in one article: term → field → first hit.
Found = dict[str, dict[str, TermHit]]


def _terms(raw: Sequence[str]) -> tuple[str, ...]:
    kept = (normalise_term(t) for t in raw)
    return tuple(dict.fromkeys(t for t in kept if isinstance(t, str)))


def _compile_topic(topic: Topic) -> CompiledTopic:
    rules = topic.rules
    return CompiledTopic(
        id=topic.id,
        fields=tuple(f for f in FIELDS if f in rules.fields),
        any=_terms(rules.any),
        all=_terms(rules.all),
        groups=tuple(g for g in (_terms(group) for group in rules.groups) if g),
        none=_terms(rules.none),
        title_weight=rules.title_weight,
        min_score=rules.min_score,
    )


@lru_cache(maxsize=32)
def _compile_topics(topics: tuple[Topic, ...]) -> CompiledTopics:
    compiled = tuple(_compile_topic(t) for t in topics)
    every = (term for t in compiled for term in (*t.positive_terms, *t.none))
    fields = tuple(f for f in FIELDS if any(f in t.fields for t in compiled))
    return CompiledTopics(compiled, compile_terms(dict.fromkeys(every)), fields)


def compile_topics(topics: Sequence[Topic]) -> CompiledTopics:
    """Compile the topics' rules once per configuration (cached on the frozen settings)."""
    return _compile_topics(tuple(topics))


def find_terms(article: Article, compiled: CompiledTopics) -> Found:
    """Scan each field once with the shared matcher."""
    found: Found = {}
    for field in compiled.fields:
        text = getattr(article, field, "") or ""
        for term, hit in compiled.matcher.found(text).items():
            found.setdefault(term, {})[field] = hit
    return found


def evaluate_topics(
    article: Article, compiled: CompiledTopics, *, allowed_topics: Sequence[str] | None = None
) -> tuple[TopicVerdict, ...]:
    """Every topic's verdict on this article (matched or not), in configuration order."""
    found = find_terms(article, compiled)
    return tuple(_verdict(topic, found, article, allowed_topics) for topic in compiled.topics)


def match_topics(
    article: Article, compiled: CompiledTopics, *, allowed_topics: Sequence[str] | None = None
) -> tuple[TopicMatch, ...]:
    """The topics this article matches, each with its score and explanation."""
    return tuple(
        TopicMatch(v.topic_id, v.score, v.explanation)
        for v in evaluate_topics(article, compiled, allowed_topics=allowed_topics)
        if v.matched
    )


def explain_miss(
    article: Article, compiled: CompiledTopics, *, allowed_topics: Sequence[str] | None = None
) -> tuple[str, ...]:
    """One line per topic the article does not match: "topic-id: why not"."""
    return tuple(
        f"{v.topic_id}: {v.explanation}"
        for v in evaluate_topics(article, compiled, allowed_topics=allowed_topics)
        if not v.matched
    )


def _verdict(
    topic: CompiledTopic, found: Found, article: Article, allowed: Sequence[str] | None
) -> TopicVerdict:
    if allowed is not None and topic.id not in allowed:
        listed = ", ".join(allowed) or "none"
        return TopicVerdict(
            topic.id, False, 0.0, f"source is restricted to other topics ({listed})"
        )
    seen = {
        term: {f: h for f, h in fields.items() if f in topic.fields}
        for term, fields in found.items()
    }
    seen = {term: fields for term, fields in seen.items() if fields}
    if not any((getattr(article, f, "") or "").strip() for f in topic.fields):
        return TopicVerdict(topic.id, False, 0.0, f"nothing to search: {_join(topic.fields)} empty")
    excluded = [t for t in topic.none if t in seen]
    if excluded:
        term = excluded[0]
        return TopicVerdict(
            topic.id, False, 0.0, f"excluded by 'none' term {_describe(term, seen[term])}"
        )
    return _positive(topic, seen)


def _positive(topic: CompiledTopic, seen: Found) -> TopicVerdict:
    """Matched by the `any`/`all` terms or by a term from every group; else why not."""
    verdicts = []
    if topic.any or topic.all or not topic.groups:
        verdicts.append(_by_terms(topic, seen))
    if topic.groups:
        verdicts.append(_by_groups(topic, seen))
    matched = next((v for v in verdicts if v.matched), None)
    if matched is not None:
        return matched
    score = max(v.score for v in verdicts)
    partial = any(t in seen for t in topic.positive_terms)
    why = "; ".join(v.explanation for v in verdicts)
    return TopicVerdict(topic.id, False, score, why, partial)


def _term_score(topic: CompiledTopic, term: str, seen: Found) -> float:
    return topic.title_weight if "title" in seen[term] else 1.0


def _by_terms(topic: CompiledTopic, seen: Found) -> TopicVerdict:
    problems: list[str] = []
    if topic.any and not any(t in seen for t in topic.any):
        problems.append(f"no 'any' term found in {_join(topic.fields)}")
    missing = [t for t in topic.all if t not in seen]
    if missing:
        noun = "term" if len(missing) == 1 else "terms"
        problems.append(f"missing 'all' {noun} " + ", ".join(f"'{t}'" for t in missing))
    positive = [t for t in dict.fromkeys((*topic.any, *topic.all)) if t in seen]
    score = sum(_term_score(topic, t, seen) for t in positive)
    because = _because(positive, seen)
    if not problems and score < topic.min_score:
        problems.append(
            f"score {score:g} below min_score {topic.min_score:g}"
            + (f" ({because})" if because else "")
        )
    if problems:
        return TopicVerdict(topic.id, False, score, "; ".join(problems))
    return TopicVerdict(topic.id, True, score, because or "topic has no required terms")


def _by_groups(topic: CompiledTopic, seen: Found) -> TopicVerdict:
    """A term from every group: each group adds its best term's score."""
    best: list[str] = []
    empty: list[int] = []
    for number, group in enumerate(topic.groups, start=1):
        found = [t for t in group if t in seen]
        if found:
            best.append(max(found, key=lambda t: (_term_score(topic, t, seen), -group.index(t))))
        else:
            empty.append(number)
    score = sum(_term_score(topic, t, seen) for t in best)
    because = _because(best, seen)
    if empty:
        which = ", ".join(str(n) for n in empty)
        noun = "group" if len(empty) == 1 else "groups"
        partly = f" (found {because})" if because else ""
        return TopicVerdict(topic.id, False, score, f"no term of {noun} {which}{partly}")
    if score < topic.min_score:
        return TopicVerdict(topic.id, False, score, f"groups score {score:g} below min_score {topic.min_score:g} ({because})")
    return TopicVerdict(topic.id, True, score, because)


def _because(terms: Sequence[str], seen: Found) -> str:
    """ "'export controls' in title; 'BIS' in summary", strongest field first, then position."""

    def key(term: str) -> tuple[int, int]:
        fields = seen[term]
        best = min(FIELDS.index(f) for f in fields)
        return best, fields[FIELDS[best]].start

    return "; ".join(_describe(t, seen[t]) for t in sorted(terms, key=key))


def _describe(term: str, fields: dict[str, TermHit]) -> str:
    names = [f for f in FIELDS if f in fields]
    label = f"'{term}'"
    if "*" in term:  # show what the wildcard stood for
        label += f" ({fields[names[0]].matched})"
    return f"{label} in {_join(names)}"


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
