"""Text features shared by dedup and cluster: tokens, capitalised names, numbers, shingles.

Plain functions over strings. Everything here is deterministic and cheap (regular
expressions and a cached stemmer), because it runs once per article on the hot path.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import date
from functools import lru_cache


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that carry no event identity. News boilerplate ("said", "reported") is included
# because every article has it; it would only blur the centroids. So are words naming an
# article's format ("in brief", "roundup"): two unrelated business briefs share them.
STOPWORDS: frozenset[str] = _wordset(
    """
    a about above after again against all almost also am among an and any are aren around as at
    back be became because become been before being below between both but by can cannot could
    did didn do does doesn doing don down during each either else even ever every few for from
    further get gets got had hadn has hasn have haven having he her here hers herself him himself
    his how however i if in into is isn it its itself just last least less let like ll made make
    many may me might mine more most much must my myself near need neither new next no nor not now
    of off often on once one only or other others our ours ourselves out over own per put rather
    re really s said same say saying says see seen shall she should since so some still such t take
    than that the their theirs them themselves then there these they this those though through
    thus to too toward towards under until up upon us use used very via was wasn way we well were
    weren what when where whether which while who whom whose why will with within without won
    would yet you your yours yourself yourselves ve d m o y ago already always another anyone
    anything come comes came going go goes gone told tell tells according report reports reported
    reporting news brief roundup week weeks today yesterday tomorrow day days year years time times first two
    three four five six seven eight nine ten say including include includes includ whose
    monday tuesday wednesday thursday friday saturday sunday
    """
)

MONTHS: frozenset[str] = _wordset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)

_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(
    r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent|million|billion|bn|m|k))?"
)
_SENTENCE_END = re.compile(r"[.!?:;\"“”]\s*$")


def fold(text: str) -> str:
    """Lower-case and strip accents so "Zürich" and "Zurich" meet."""
    if text.isascii():
        return text.lower()  # the common case, and 20× faster than the general one
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light English suffix stripper (plural, possessive, -ing/-ed on longer words).

    Deliberately conservative: "killed"/"kills"/"killing" meet, while short words and
    names are left alone. A full Porter stemmer merged too many unrelated news words.
    """
    w = word.replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.replace("'", "").replace(".", "")
    if len(w) <= 3 or w.isdigit():
        return w
    w = _british(w)
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        w = w[:-2]
    return _undouble(w)


# Nationality words name the same actor as the country: "Dutch government", "Netherlands
# confirms". Among names (who acts), they are folded to the country; as terms they stay
# apart, because "Chinese exports" and "China's stocks" are not one story.
DEMONYMS: dict[str, str] = {
    "dutch": "netherland", "japanese": "japan", "chinese": "china",
    "american": "us", "americans": "us", "usa": "us", "korean": "korea",
    "taiwanese": "taiwan", "russian": "russia", "russians": "russia", "indian": "india",
    "german": "germany", "french": "france", "british": "uk", "britain": "uk",
    "european": "europe", "malaysian": "malaysia", "vietnamese": "vietnam", "iranian": "iran",
    "israeli": "israel", "emirati": "uae", "singaporean": "singapore", "indonesian": "indonesia",
    "canadian": "canada", "mexican": "mexico", "brazilian": "brazil", "australian": "australia",
    "italian": "italy", "spanish": "spain", "swiss": "switzerland", "turkish": "turkey",
    "ukrainian": "ukraine", "polish": "poland", "belgian": "belgium", "swedish": "sweden",
}


# Countries and blocs under the stem a name of theirs gets, and their nationality words.
COUNTRIES: dict[str, str] = {
    **{c: c for c in (
        "china", "japan", "korea", "taiwan", "russia", "india", "germany", "france", "uk",
        "europe", "malaysia", "vietnam", "iran", "israel", "uae", "singapore", "indonesia",
        "canada", "mexico", "brazil", "australia", "italy", "spain", "switzerland", "turkey",
        "ukraine", "poland", "belgium", "sweden", "us", "eu", "netherland",
    )},
    "netherlands": "netherland", "holland": "netherland", "prc": "china", "u.s": "us",
    "usa": "us", "america": "us", "united": "",  # "United States" is read as "us" below
    **DEMONYMS,
}
COUNTRIES.pop("united")


def countries(text: str) -> set[str]:
    """The countries and blocs a text names, by name or nationality ("Dutch" → netherland)."""
    # "us" only as written for the country (US, U.S.): the pronoun is not one.
    found = {COUNTRIES.get(fold(w).replace(".", ""), "") for w in words(text) if w.lower() != "us" or w.isupper()}
    if "united states" in fold(text):
        found.add("us")
    found.discard("")
    return found


def _british(w: str) -> str:
    """One spelling for words that British and American outlets write differently
    ("licence"/"license", "authorisation"/"authorization", "defence"/"defense"), so two
    reports of one event meet whichever side of the Atlantic wrote them."""
    if w.startswith(("licens", "licenc")):
        return "licence"  # licence, licensed, licensing, licences: one term
    for us, uk in (("ization", "isation"), ("izing", "ising"), ("ized", "ised"), ("izes", "ises"), ("ize", "ise")):
        if w.endswith(us) and len(w) > len(us) + 2:
            return w[: -len(us)] + uk
    if w in ("defense", "offense", "center", "centers"):
        return {"defense": "defence", "offense": "offence", "center": "centre", "centers": "centres"}[w]
    if len(w) > 5 and w.endswith("our") and w not in ("detour", "contour", "velour"):
        return w[:-3] + "or"
    return w


def _undouble(w: str) -> str:
    # "stopp" (from stopped/stopping) → "stop"; "kill" keeps its ll (3+ letters before).
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        return w[:-1]
    return w


def words(text: str) -> list[str]:
    """Word tokens in their original case (hyphenated words and dotted acronyms kept whole)."""
    return _WORD.findall(text)


def terms(text: str, *, months: bool = True) -> list[str]:
    """Folded, stemmed content terms (stopwords, 1-letter tokens and bare numbers dropped).

    ``months=False`` drops month names too: in a headline they are mostly a dateline
    ("News in Pictures - 10 March"), in a body they help date the event.
    """
    out: list[str] = []
    for f in words(fold(text)):
        if len(f) < 2 or f in STOPWORDS or f.replace(".", "").isdigit():
            continue  # bare numbers are matched by numbers(), with their units
        if not months and f in MONTHS:
            continue
        s = stem(f)
        if s and s not in STOPWORDS:
            out.append(s)
    return out


def is_title_case(text: str) -> bool:
    """True for headline style where most words are capitalised (names are then ambiguous)."""
    ws = [w for w in words(text) if w[0].isalpha() and len(w) > 3]
    if len(ws) < 3:
        return False
    return sum(w[0].isupper() for w in ws) / len(ws) > 0.6


def names(text: str, *, headline: bool = False) -> set[str]:
    """Capitalised words that are not sentence-initial: people, places, organisations.

    In a Title Case headline every word is capitalised, so there only all-caps tokens
    and words capitalised mid-headline that are not stopwords count.
    """
    return set(_name_tokens(text, headline=headline))


def _name_tokens(text: str, *, headline: bool) -> Iterator[str]:
    title_case = headline and is_title_case(text)
    for line in text.splitlines():
        prev_end = True
        for match in _WORD.finditer(line):
            w = match.group()
            initial = prev_end
            prev_end = bool(_SENTENCE_END.search(line[match.end() : match.end() + 2]))
            if not w[0].isupper() or len(w) < 2:
                continue
            f = fold(w)
            country = COUNTRIES.get(f.replace(".", ""))
            if country:  # a country is a name wherever it stands, even first in a headline
                yield country
                continue
            if f in STOPWORDS or f in MONTHS:
                continue
            if initial and not (w.isupper() and len(w) > 1):
                continue
            if title_case and not w.isupper():
                continue
            yield stem(f)


def name_counts(text: str) -> Counter[str]:
    """How often each capitalised name occurs (see :func:`names`)."""
    return Counter(_name_tokens(text, headline=False))


def is_year(number: str) -> bool:
    return len(number) == 4 and number.isdigit() and number[:2] in ("19", "20")


def numbers(text: str) -> set[str]:
    """Numbers with their unit, normalised ("$184 million" → "184million", "7.6" → "7.6")."""
    out: set[str] = set()
    for m in _NUMBER.finditer(text):
        raw = m.group().lower().replace(",", "").replace(" ", "").lstrip("$€£")
        raw = raw.replace("percent", "%").replace("bn", "billion")
        if raw.endswith("m") and not raw.endswith("million"):
            raw = raw[:-1] + "million"
        if raw.isdigit() and len(raw) == 1:
            continue  # "1", "2": counts in every story, no identity
        out.add(raw)
    return out


_MONTH_NO = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
)}
_MONTH_RE = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATES = (
    # "July 28, 2004", "Sep 18 2013", "March 2009"
    re.compile(_MONTH_RE + r"\s+(?:\d{1,2}(?:st|nd|rd|th)?,?\s+)?((?:19|20)\d\d)\b", re.I),
    # "28 July 2004", "16th September, 2013"
    re.compile(r"\b\d{1,2}(?:st|nd|rd|th)?\s+" + _MONTH_RE + r",?\s+((?:19|20)\d\d)\b", re.I),
)
_ISO_DATE = re.compile(r"\b((?:19|20)\d\d)\s?[-/.]\s?(\d{1,2})\s?[-/.]\s?\d{1,2}\b")


def months(text: str) -> set[int]:
    """Months named by explicit dates in the text, as ``year * 12 + month - 1``.

    Only dates that carry a year count ("July 28, 2004", "2013-09-26", "March 2009"):
    they are datelines and event dates, the most direct evidence of *which* earthquake
    or election a text reports. A bare "Tuesday" or "July 28" says nothing across years.
    """
    out: set[int] = set()
    for pattern in _DATES:
        for m in pattern.finditer(text):
            out.add(int(m.group(2)) * 12 + _MONTH_NO[m.group(1)[:3].lower()] - 1)
    for m in _ISO_DATE.finditer(text):
        month = int(m.group(2))
        if 1 <= month <= 12:
            out.add(int(m.group(1)) * 12 + month - 1)
    return out


# Day-level dates: "October 7, 2022", "Oct. 17", "7 October 2022", "2024-12-02".
# Month names capitalised, as dates are written: "may 10" is a verb and a number.
_MONTH_CAP = (
    r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY_FIRST = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_CAP + r"(?:,?\s+((?:19|20)\d\d))?\b")
_MONTH_FIRST = re.compile(
    r"\b" + _MONTH_CAP + r"\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+((?:19|20)\d\d))?(?!\s*(?:%|percent|million|billion))"
)
_ISO_DAY = re.compile(r"\b((?:19|20)\d\d)-(\d{1,2})-(\d{1,2})\b")


def event_days(text: str, published: date, *, before: int = 120) -> set[int]:
    """Days (proleptic ordinals) of the explicit dates a report names before its publication.

    A report is about something that happened on a date it names: a law-firm alert three
    weeks later reports "the interim final rule issued October 7, 2022". Dates without a
    year ("December 15") take the publication's year (the year before, when that would be
    after publication). Only dates from ``before`` days before publication to the day before
    it count: the publication day itself is a dateline, which the publication time already
    says; comment deadlines and effective dates ahead, or history years back, are not the
    event of the report.
    """
    lo, hi = published.toordinal() - before, published.toordinal() - 1
    found: set[int] = set()
    for year, month, day in _named_dates(text):
        for candidate_year in ((year,) if year else (published.year, published.year - 1)):
            try:
                day_number = date(candidate_year, month, day).toordinal()
            except ValueError:
                continue
            if lo <= day_number <= hi:
                found.add(day_number)
                break
    return found


def _named_dates(text: str) -> Iterator[tuple[int | None, int, int]]:
    """(year or None, month, day) for each day-level date written in the text."""
    for m in _MONTH_FIRST.finditer(text):
        yield (int(m.group(3)) if m.group(3) else None), _MONTH_NO[m.group(1)[:3].lower()], int(m.group(2))
    for m in _DAY_FIRST.finditer(text):
        yield (int(m.group(3)) if m.group(3) else None), _MONTH_NO[m.group(2)[:3].lower()], int(m.group(1))
    for m in _ISO_DAY.finditer(text):
        yield int(m.group(1)), int(m.group(2)), int(m.group(3))


def shingles(text: str, k: int = 5) -> set[str]:
    """Word k-shingles of the folded text, for near-duplicate (MinHash) comparison."""
    toks = words(fold(text))
    if len(toks) < k:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + k]) for i in range(len(toks) - k + 1)}
