"""Term lists → one fast matcher that says which terms occur and where.

Shared by relevance (topic rules) and score (impact signals). The term syntax, as written
in feeds.yaml:

- **Words and phrases.** ``export controls`` matches those words in that order, separated
  by any run of whitespace or hyphens ("export-controls", "export\\ncontrols").
- **Wildcards.** ``*`` stands for a run of up to 40 letters/digits inside one word:
  ``chip*`` matches chip, chips, chipmakers; ``semi*conductor*`` matches semiconductors.
  A term that is nothing but ``*`` is rejected (it would match everything), and so is a
  word with more than two wildcards (it would only be slow).
- **Case.** Matching ignores case (Unicode-aware), *except* for words written in capitals
  in the rule: a word with at least two capital letters and no lower-case letter (``BIS``,
  ``OFAC``, ``MOFCOM``, ``U.S.``) is matched exactly as written. So ``BIS`` finds the
  Bureau of Industry and Security but not the French "bis", while ``Nvidia`` finds
  "NVIDIA". The rule applies per word, so in ``BIS rule`` only "BIS" is case-sensitive.
- **Word boundaries.** A term never matches inside a longer word ("ban" is not in
  "bank"). Boundaries are Unicode-aware; next to CJK, kana or Thai characters, which are
  written without spaces, no boundary is required.

Terms and text are compared in NFC form. Text is read up to ``MAX_TEXT`` characters so
one giant page cannot stall the cycle.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

MAX_TEXT = 200_000  # characters of one field that are searched
MAX_TERM = 200  # longer terms are rejected: nobody means a paragraph

# Scripts written without spaces between words: no word boundary is required next to them.
_NO_SPACE_SCRIPTS = re.compile(
    r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)
_PHRASE_GAP = r"(?:\s|[-\u2010\u2011\u2013])+"
# Bounded so that several wildcards in one term cannot backtrack without end on a long
# run of letters (a base64 blob in a page, say): each tries at most 40 positions.
WILDCARD = r"\w{0,40}"
MAX_WILDCARDS = 2  # per word: "semi*conductor*" is useful, "a*b*c*d" only slow


@dataclass(frozen=True, slots=True)
class TermHit:
    """One occurrence of a rule term: the term as written and the text it matched."""

    term: str
    start: int
    end: int
    matched: str


@dataclass(frozen=True, slots=True)
class RejectedTerm:
    term: str
    reason: str


def is_acronym(word: str) -> bool:
    """A word written in capitals (≥ 2 upper-case letters, no lower-case) is case-sensitive."""
    letters = [ch for ch in word if ch.isalpha()]
    return sum(ch.isupper() for ch in letters) >= 2 and not any(ch.islower() for ch in letters)


def _word_pattern(word: str) -> str:
    body = WILDCARD.join(re.escape(part) for part in word.split("*"))
    return f"(?-i:{body})" if is_acronym(word) else body


def term_pattern(term: str) -> str:
    """The regular expression (used with re.IGNORECASE) for one normalised term."""
    words = term.split()
    body = _PHRASE_GAP.join(_word_pattern(w) for w in words)
    first, last = term[0], term[-1]
    # A wildcard at an edge already consumes word characters; the boundary still applies.
    before = "" if _NO_SPACE_SCRIPTS.match(first) else r"(?<!\w)"
    after = "" if _NO_SPACE_SCRIPTS.match(last) else r"(?!\w)"
    return f"{before}(?:{body}){after}"


def normalise_term(raw: str) -> str | RejectedTerm:
    """Collapse whitespace and repeated wildcards; reject what cannot be a useful term."""
    term = " ".join(unicodedata.normalize("NFC", str(raw)).split())
    term = re.sub(r"\*{2,}", "*", term)
    if not term:
        return RejectedTerm(str(raw), "empty term")
    if len(term) > MAX_TERM:
        return RejectedTerm(term, f"longer than {MAX_TERM} characters")
    if not any(ch.isalnum() for ch in term):
        return RejectedTerm(term, "has no letters or digits")
    if any(word.count("*") > MAX_WILDCARDS for word in term.split()):
        return RejectedTerm(term, f"more than {MAX_WILDCARDS} wildcards in one word")
    return term


def _first_prefix(term: str) -> str:
    """Literal start of the term's first word (up to a wildcard), folded for comparison."""
    return term.split()[0].split("*")[0].casefold()


class TermMatcher:
    """Finds every occurrence of every term in one pass over the text.

    One alternation of all terms (no capturing groups, which would disable ``re``'s fast
    literal checks) scans the case-folded text: a case-sensitive scan of folded text is
    several times faster than an IGNORECASE one. At each spot where some term matches, the
    few terms that share its first two letters are tried with their exact (case-aware)
    pattern, so overlapping terms ("export", "export controls") are all reported and
    capitalised words are confirmed on the original text. When case folding changes the
    text's length ("ß" → "ss"), offsets would drift, so that text is scanned with a slower
    IGNORECASE alternation instead.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        accepted: list[str] = []
        rejected: list[RejectedTerm] = []
        for raw in terms:
            result = normalise_term(raw)
            if isinstance(result, RejectedTerm):
                rejected.append(result)
                log.warning("term rejected", extra={"term": result.term, "reason": result.reason})
            elif result not in accepted:
                accepted.append(result)
        self.terms: tuple[str, ...] = tuple(accepted)
        self.rejected: tuple[RejectedTerm, ...] = tuple(rejected)
        self._exact = [re.compile(term_pattern(t), re.IGNORECASE) for t in self.terms]
        self._confirm = [any(is_acronym(w) for w in t.split()) for t in self.terms]
        self._folded = _folded_union(self.terms)
        self._slow = _slow_union(self.terms)
        self._buckets, self._short = _buckets(self.terms)

    def find(self, text: str) -> tuple[TermHit, ...]:
        """Every occurrence of every term, in text order (a term may occur many times)."""
        if not self.terms or not text:
            return ()
        text = prepare(text)
        folded = text.casefold()
        fast = len(folded) == len(text)
        union, haystack = (self._folded, folded) if fast else (self._slow, text)
        if union is None:  # only possible when there are no terms
            return ()
        hits: list[TermHit] = []
        pos = 0
        while (m := union.search(haystack, pos)) is not None:
            start = m.start()
            key = text[start : start + 2].casefold()[:2]
            for j in (*self._buckets.get(key, ()), *self._short):
                if (exact := self._exact[j].match(text, start)) is not None:
                    hits.append(TermHit(self.terms[j], start, exact.end(), exact.group()))
            pos = start + 1
        return tuple(hits)

    def found(self, text: str) -> dict[str, TermHit]:
        """Each term that occurs, with its first occurrence."""
        first: dict[str, TermHit] = {}
        for hit in self.find(text):
            first.setdefault(hit.term, hit)
        return first

    def __repr__(self) -> str:
        return f"TermMatcher({len(self.terms)} terms)"


def _buckets(terms: Sequence[str]) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """Terms by the first two folded letters of their literal start; the rest go in `short`."""
    buckets: dict[str, list[int]] = {}
    short: list[int] = []
    for i, term in enumerate(terms):
        prefix = _first_prefix(term)
        if len(prefix) >= 2:
            buckets.setdefault(prefix[:2], []).append(i)
        else:
            short.append(i)
    return {k: tuple(v) for k, v in buckets.items()}, tuple(short)


def _longest_first(terms: Sequence[str]) -> list[int]:
    # Only whether some term matches at a spot matters; longer first keeps it specific.
    return sorted(range(len(terms)), key=lambda i: -len(terms[i]))


def _folded_pattern(term: str) -> str:
    words = (WILDCARD.join(re.escape(p) for p in w.casefold().split("*")) for w in term.split())
    return _PHRASE_GAP.join(words)


def _folded_union(terms: Sequence[str]) -> re.Pattern[str] | None:
    """Case-sensitive alternation over case-folded text, one boundary check for all."""
    bounded, loose = [], []
    for i in _longest_first(terms):
        term = terms[i]
        if _NO_SPACE_SCRIPTS.match(term[0]) or _NO_SPACE_SCRIPTS.match(term[-1]):
            loose.append(f"(?:{term_pattern(term.casefold())})")
        else:
            bounded.append(f"(?:{_folded_pattern(term)})")
    parts = [r"(?<!\w)(?:" + "|".join(bounded) + r")(?!\w)"] if bounded else []
    return re.compile("|".join(parts + loose)) if parts or loose else None


def _slow_union(terms: Sequence[str]) -> re.Pattern[str] | None:
    alternatives = [term_pattern(terms[i]) for i in _longest_first(terms)]
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def prepare(text: str) -> str:
    """Bound and NFC-normalise text before matching (offsets refer to this form)."""
    text = text[:MAX_TEXT]
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


@lru_cache(maxsize=512)
def _compile(terms: tuple[str, ...]) -> TermMatcher:
    return TermMatcher(terms)


def compile_terms(terms: Iterable[str]) -> TermMatcher:
    """A matcher for these terms, built once per distinct term list and then reused."""
    return _compile(tuple(terms))
