"""Exact and near duplicates, and the origin every article belongs to.

- Exact: the same canonical URL, the same (source, guid) or the same content hash is not
  a new article (:func:`exact_keys`, :func:`is_known`).
- Near: copies of one text across outlets, exact or lightly edited, found with MinHash
  LSH (datasketch) over word 5-shingles of title and text (:class:`ReprintIndex`). Only the
  first copy of a text is indexed; later copies match it, so 10,000 copies of one press
  release cost one index entry, and every copy points at the earliest one.
- Origin (:func:`assign_origin`): a copy inherits the origin of what it copies; otherwise a
  wire credit ("(Reuters) -", "WASHINGTON (AP) —", a credit naming a wire) gives
  ``wire:<name>``; a rel=canonical pointing at another outlet gives that outlet's origin;
  an owner group gives ``owner:<group>``; else ``outlet:<outlet>``. Keys match the ones
  :mod:`monitor.story.corroborate` counts.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from monitor.models import Article
from monitor.story import textfeatures as tf
from monitor.story.corroborate import slug


def _quad(*args: Any, **kwargs: Any) -> Any:
    """scipy.integrate.quad, imported on first use (see `_import_datasketch`)."""
    from scipy.integrate import quad

    return quad(*args, **kwargs)


def _import_datasketch() -> types.ModuleType:
    """datasketch, without the ~40 MB and ~0.4 s of scipy.integrate it imports up front.

    datasketch's LSH imports `scipy.integrate.quad` at module level, for its parameter
    optimiser only. While datasketch is first imported, `scipy.integrate` is a stand-in
    whose `quad` imports the real one when called; afterwards the stand-in is removed, so
    anything else importing scipy gets scipy. The index passes the optimiser's answer for
    its usual settings (`LSH_PARAMS`), so scipy is only loaded for unusual ones.
    """
    if "datasketch" in sys.modules or "scipy.integrate" in sys.modules:
        import datasketch

        return datasketch
    stand_in = types.ModuleType("scipy.integrate")
    stand_in.quad = _quad  # type: ignore[attr-defined]
    sys.modules["scipy.integrate"] = stand_in
    try:
        import datasketch
    finally:
        if sys.modules.get("scipy.integrate") is stand_in:
            del sys.modules["scipy.integrate"]
    return datasketch


if TYPE_CHECKING:
    from datasketch import MinHash, MinHashLSH
else:
    _datasketch = _import_datasketch()
    MinHash, MinHashLSH = _datasketch.MinHash, _datasketch.MinHashLSH

# (bands, rows) that datasketch's optimiser picks for (threshold, num_perm) with equal false
# positive and false negative weights; tests check these against the optimiser itself.
LSH_PARAMS: dict[tuple[float, int], tuple[int, int]] = {(0.5, 64): (14, 4)}

log = logging.getLogger(__name__)

# Wire services and how they are credited. Key = the origin name corroborate knows.
WIRES: dict[str, tuple[str, ...]] = {
    "reuters": ("Reuters", "Thomson Reuters"),
    "ap": ("AP", "Associated Press", "The Associated Press"),
    "afp": ("AFP", "Agence France-Presse", "Agence France Presse"),
    "bloomberg": ("Bloomberg", "Bloomberg News"),
    "dpa": ("dpa", "Deutsche Presse-Agentur"),
    "xinhua": ("Xinhua",),
    "kyodo": ("Kyodo", "Kyodo News"),
    "yonhap": ("Yonhap",),
    "pa": ("PA", "PA Media", "Press Association"),
    "ansa": ("ANSA",),
    "efe": ("EFE",),
    "upi": ("UPI", "United Press International"),
    "tass": ("TASS",),
    "prnewswire": ("PR Newswire", "PRNewswire"),
    "businesswire": ("Business Wire", "BusinessWire"),
    "globenewswire": ("GlobeNewswire", "GLOBE NEWSWIRE"),
}

MIN_WORDS = 20  # texts shorter than this (headlines) are too short to call a copy


@dataclass(frozen=True, slots=True)
class ReprintMatch:
    """The earliest indexed copy an article matches, and how closely."""

    article_id: int
    origin: str
    similarity: float  # estimated Jaccard of the shingle sets


# -- exact duplicates -----------------------------------------------------------------


def exact_keys(article: Article) -> tuple[str, ...]:
    """Keys under which an identical article would be known (URL, source+guid, content)."""
    keys = []
    if article.canonical_url:
        keys.append(f"url:{article.canonical_url}")
    if article.guid:
        keys.append(f"guid:{article.source_id}\x1f{article.guid}")
    if article.content_hash:
        keys.append(f"hash:{article.content_hash}")
    return tuple(keys)


def is_known(article: Article, known_keys: Container[str]) -> str | None:
    """The first key under which this article is already known, or None if it is new."""
    return next((k for k in exact_keys(article) if k in known_keys), None)


# -- wire credits and origins ----------------------------------------------------------


def _alias_pattern(wires: Mapping[str, tuple[str, ...]]) -> tuple[re.Pattern[str], dict[str, str]]:
    by_alias = {slug(a): name for name, aliases in wires.items() for a in (name, *aliases)}
    aliases = sorted({a for aliases in wires.values() for a in aliases}, key=len, reverse=True)
    return re.compile("|".join(re.escape(a) for a in aliases)), by_alias


_PATTERNS: dict[int, tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], dict[str, str]]] = {}


def _patterns(
    wires: Mapping[str, tuple[str, ...]],
) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], dict[str, str]]:
    cached = _PATTERNS.get(id(wires))
    if cached is None:
        alias, by_alias = _alias_pattern(wires)
        # "WASHINGTON (Reuters) -", "(AP) —", "PARIS, March 3 (AFP) –"
        dateline = re.compile(rf"\(\s*({alias.pattern})\s*\)\s*[-—–:]")
        # "By Jane Doe, Associated Press" / "© 2024 Thomson Reuters" / "— AFP" closing a text
        byline = re.compile(
            rf"(?:\bBy\b[^\n]{{0,60}}?|(?:©|\(c\)|Copyright)[^\n]{{0,30}}?|^\s*[-—–]\s*)\b({alias.pattern})\b",
            re.IGNORECASE | re.MULTILINE,
        )
        whole = re.compile(rf"^\s*(?:the\s+)?({alias.pattern})(?:\s+news)?\s*$", re.IGNORECASE)
        cached = _PATTERNS[id(wires)] = (dateline, byline, whole, by_alias)
    return cached


def find_wire(text: str, credit: str = "", wires: Mapping[str, tuple[str, ...]] = WIRES) -> str | None:
    """The wire an article credits, from the feed's credit field or the text's dateline/byline."""
    dateline, byline, whole, by_alias = _patterns(wires)
    if credit:
        for part in re.split(r"[,;/|]| and ", credit):
            if whole.match(part):
                return by_alias.get(slug(whole.match(part).group(1)))  # type: ignore[union-attr]
    lead, tail = text[:400], text[-300:]
    for pattern, chunk in ((dateline, lead), (byline, lead), (byline, tail)):
        m = pattern.search(chunk)
        if m:
            name = by_alias.get(slug(m.group(1)))
            if name:
                return name
    return None


def host(url: str) -> str:
    """Host of a URL without "www." (empty when there is none)."""
    try:
        netloc = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return netloc.removeprefix("www.")


def outlet_origin(outlet: str, owner: str = "") -> str:
    return f"owner:{slug(owner)}" if owner else f"outlet:{slug(outlet) or 'unknown'}"


def assign_origin(
    article: Article,
    reprint_match: ReprintMatch | None,
    wire_names: Mapping[str, tuple[str, ...]] = WIRES,
    outlets_by_host: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[str, str]:
    """The origin key of an article and the reason, e.g. ("wire:reuters", "credits Reuters").

    ``outlets_by_host`` maps a host to (outlet, owner) for the configured sources, so a
    rel=canonical pointing at a known outlet collapses into that outlet's origin.
    """
    if reprint_match is not None:
        return reprint_match.origin, (
            f"copy of article {reprint_match.article_id} (similarity {reprint_match.similarity:.2f})"
        )
    if article.tier == "wire":
        own = find_wire("", article.outlet, wire_names)
        if own:
            return f"wire:{own}", f"{article.outlet} is a wire"
    wire = find_wire(article.text or article.summary, article.credit, wire_names)
    if wire:
        return f"wire:{wire}", f"credits {wire_names[wire][0]}"
    target = host(article.canonical_link)
    if target and target != host(article.canonical_url or article.url):
        known = (outlets_by_host or {}).get(target)
        if known:
            return outlet_origin(*known), f"rel=canonical points to {known[0]}"
        return f"outlet:{slug(target)}", f"rel=canonical points to {target}"
    if article.owner:
        return outlet_origin(article.outlet, article.owner), f"owned by {article.owner}"
    return outlet_origin(article.outlet or article.source_id), "own reporting"


# -- near duplicates ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """How a text is recognised again: MinHash for real texts, an exact key for short ones."""

    minhash: MinHash | None
    exact: str | None  # folded words of a text too short for MinHash (a headline)


def fingerprint(text: str, num_perm: int = 64) -> Fingerprint:
    """MinHash of the text's word 5-shingles; a short text (a headline) is only matched exactly."""
    words = tf.words(text)
    if len(words) < MIN_WORDS:
        folded = " ".join(tf.fold(w) for w in words)
        # identical wording from two outlets is syndication; three words could be chance
        return Fingerprint(None, folded if len(words) >= 4 else None)
    mh = MinHash(num_perm=num_perm, seed=7)
    mh.update_batch([s.encode() for s in tf.shingles(text)])
    return Fingerprint(mh, None)


def signature(text: str, num_perm: int = 64) -> MinHash | None:
    """MinHash of the text's word 5-shingles; None when the text is too short to judge."""
    return fingerprint(text, num_perm).minhash


_SCHEME = MinHash(num_perm=1, seed=7).scheme


def signature_bytes(mh: MinHash) -> bytes:
    return np.asarray(mh.hashvalues, dtype=np.uint64).tobytes()


def signature_from_bytes(data: bytes, num_perm: int = 64) -> MinHash | None:
    values = np.frombuffer(data, dtype=np.uint64)
    if len(values) != num_perm:
        return None
    # The scheme must match the one fresh signatures use (datasketch ≥ 2 insists on it).
    return MinHash(num_perm=num_perm, seed=7, hashvalues=values, scheme=_SCHEME)


@dataclass(slots=True)
class _Entry:
    article_id: int
    origin: str
    published: datetime
    minhash: MinHash | None
    exact: str | None = None
    copies: int = 0


class ReprintIndex:
    """Originals of the last ``window`` in a MinHash LSH; bounded by time and by size."""

    def __init__(
        self,
        threshold: float = 0.5,
        num_perm: int = 64,
        max_entries: int = 200_000,
        max_candidates: int = 50,
    ) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.max_entries = max_entries
        self.max_candidates = max_candidates
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=LSH_PARAMS.get((threshold, num_perm)))
        self._entries: OrderedDict[int, _Entry] = OrderedDict()  # oldest first
        self._exact: dict[str, int] = {}  # folded short text → article id
        self._noisy: set[int] = set()  # originals already logged as mass-copied

    def __len__(self) -> int:
        return len(self._entries)

    def query(self, fp: Fingerprint) -> ReprintMatch | None:
        """The earliest indexed original this text copies, if any."""
        if fp.exact is not None:
            key = self._exact.get(fp.exact)
            entry = self._entries.get(key) if key is not None else None
            return self._matched(entry, 1.0) if entry is not None else None
        if fp.minhash is None:
            return None
        mh = fp.minhash
        best: tuple[float, datetime, _Entry] | None = None
        for key in self._lsh.query(mh)[: self.max_candidates]:
            entry = self._entries.get(key)
            if entry is None or entry.minhash is None:
                continue
            sim = mh.jaccard(entry.minhash)
            if sim < self.threshold:
                continue
            if best is None or (entry.published, -sim) < (best[1], -best[0]):
                best = (sim, entry.published, entry)
        return self._matched(best[2], best[0]) if best is not None else None

    def _matched(self, entry: _Entry, similarity: float) -> ReprintMatch:
        entry.copies += 1
        if entry.copies >= 1000 and entry.article_id not in self._noisy:
            self._noisy.add(entry.article_id)
            log.warning(
                "mass-copied text: 1000+ copies of one article",
                extra={"article_id": entry.article_id, "origin": entry.origin},
            )
        return ReprintMatch(entry.article_id, entry.origin, similarity)

    def add(self, article_id: int, origin: str, published: datetime, fp: Fingerprint) -> None:
        """Index an original (never a copy: copies are found through their original)."""
        if article_id in self._entries or (fp.minhash is None and fp.exact is None):
            return
        if fp.minhash is not None:
            self._lsh.insert(article_id, fp.minhash, check_duplication=False)
        if fp.exact is not None:
            self._exact.setdefault(fp.exact, article_id)
        self._entries[article_id] = _Entry(article_id, origin, published, fp.minhash, fp.exact)
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))

    def expire(self, before: datetime) -> int:
        """Forget originals published before ``before``; returns how many.

        Entries are kept in arrival order, which is publication order up to feed lag, so
        this stops at the first entry still inside the window instead of scanning all.
        """
        dropped = 0
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.published >= before:
                break
            self._remove(key)
            dropped += 1
        return dropped

    def _remove(self, key: int) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.exact is not None and self._exact.get(entry.exact) == key:
            del self._exact[entry.exact]
        self._noisy.discard(key)
        if key in self._lsh:
            self._lsh.remove(key)

    def restore(self, articles: Iterable[Article]) -> None:
        """Re-index stored originals (articles that copy nothing), in publication order."""
        for article in articles:
            if article.reprint_of is None and article.id is not None:
                self.add(article.id, article.origin, article.published, article_fingerprint(article, self.num_perm))


def article_fingerprint(article: Article, num_perm: int = 64) -> Fingerprint:
    """The fingerprint of an article (its stored signature reused when present)."""
    if article.signature:
        mh = signature_from_bytes(article.signature, num_perm)
        if mh is not None:
            return Fingerprint(mh, None)
    return fingerprint(copy_text(article), num_perm)


def copy_text(article: Article) -> str:
    """What is compared to find copies: the body (outlets rewrite headlines), else the headline."""
    body = article.text or article.summary
    if len(tf.words(body)) >= MIN_WORDS:
        return body
    return f"{article.title}\n{body}"
