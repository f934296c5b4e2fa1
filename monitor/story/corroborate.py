"""Independent sources behind a development → a Decision with its reason.

Dedup has already given every article an origin key: ``wire:reuters`` for wire copies,
``owner:<group>`` for outlets sharing an owner, ``outlet:<name>`` otherwise (and a
reprint carries the key of the article it copies). Independent sources are the distinct
origin keys. An article without a key falls back to the origin of the article it copies
(``reprint_of``), then to its own outlet, so a missing key can only make us *more*
cautious about reprints, never merge two outlets that dedup kept apart.

The state is CORROBORATED when the independent count reaches ``required`` and
SINGLE_SOURCE otherwise (the model has no separate "not yet" state; the reason says
"2 independent (needs 3)" in that case). The reason lists the origins in order of first
publication, e.g. "3 independent: Reuters (+4 reprints), Politico, BIS (primary source)".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from monitor.models import Article, Decision, DevelopmentState, Origin

log = logging.getLogger(__name__)

MAX_LISTED = 8  # origins named in a reason; the rest are counted, so a reason stays short

WIRES: dict[str, str] = {
    "reuters": "Reuters",
    "ap": "Associated Press",
    "associatedpress": "Associated Press",
    "afp": "AFP",
    "agencefrancepresse": "AFP",
    "bloomberg": "Bloomberg",
    "dpa": "dpa",
    "xinhua": "Xinhua",
    "kyodo": "Kyodo",
    "yonhap": "Yonhap",
    "pa": "PA Media",
    "ansa": "ANSA",
    "efe": "EFE",
    "upi": "UPI",
    "tass": "TASS",
    "prnewswire": "PR Newswire",
    "businesswire": "Business Wire",
    "globenewswire": "GlobeNewswire",
}


def slug(text: str) -> str:
    """'Associated Press' → 'associatedpress'; used to compare outlet and wire names."""
    return re.sub(r"[^\w]+", "", text.casefold()).replace("_", "")


def origin_key(article: Article, by_id: dict[int, Article] | None = None) -> str:
    """The article's origin key, falling back to what it copies, then to its outlet."""
    seen: set[int] = set()
    current = article
    while not current.origin and current.reprint_of is not None and by_id:
        if current.reprint_of in seen or current.reprint_of not in by_id:
            break
        seen.add(current.reprint_of)
        current = by_id[current.reprint_of]
    if current.origin:
        return current.origin
    return f"outlet:{slug(article.outlet) or slug(article.source_id) or 'unknown'}"


def corroborate(articles: Sequence[Article], required: int) -> Decision:
    """Count independent origins behind these articles and decide whether that is enough."""
    if required < 1:
        log.warning("min_sources below 1 treated as 1", extra={"required": required})
        required = 1
    groups = _group(_unique(articles))
    origins = tuple(_origin(key, members) for key, members in groups)
    independent = len(origins)
    state = (
        DevelopmentState.CORROBORATED if independent >= required else DevelopmentState.SINGLE_SOURCE
    )
    return Decision(state, independent, _reason(origins, required), origins, required)


def _unique(articles: Sequence[Article]) -> list[Article]:
    """Drop an article passed twice (same id), keeping order."""
    seen: set[int] = set()
    kept: list[Article] = []
    for article in articles:
        if article.id is not None:
            if article.id in seen:
                continue
            seen.add(article.id)
        kept.append(article)
    return kept


def _group(articles: list[Article]) -> list[tuple[str, list[Article]]]:
    """Articles by origin key, origins in order of their first publication."""
    by_id = {a.id: a for a in articles if a.id is not None}
    groups: dict[str, list[Article]] = {}
    for article in articles:
        groups.setdefault(origin_key(article, by_id), []).append(article)
    for members in groups.values():
        members.sort(key=_published)
    return sorted(groups.items(), key=lambda kv: (_published(kv[1][0]), kv[0]))


def _published(article: Article) -> tuple[datetime, int]:
    return article.published, article.id if article.id is not None else 0


def _origin(key: str, members: list[Article]) -> Origin:
    kind, _, name = key.partition(":")
    label = _label(kind, name, members)
    own = [a for a in members if _is_original(kind, name, label, a)]
    outlets = list(dict.fromkeys(_outlet(a) for a in (*own, *members)))
    # A wire's copies are all reprints unless the wire's own story is among them.
    reprints = len(outlets) - 1 if own or kind != "wire" else len(outlets)
    return Origin(
        key=key,
        label=label,
        article_ids=tuple(a.id for a in members if a.id is not None),
        outlets=tuple(outlets),
        reprints=max(reprints, 0),
        primary=any(a.tier == "primary" for a in members),
    )


def _outlet(article: Article) -> str:
    return article.outlet or article.source_id


def _is_original(kind: str, name: str, label: str, article: Article) -> bool:
    """Whether this article is the origin's own publication rather than a copy."""
    if kind == "wire":
        return article.tier == "wire" or slug(_outlet(article)) in (name, slug(label))
    return article.reprint_of is None


def _label(kind: str, name: str, members: list[Article]) -> str:
    if kind == "wire":
        named = next((_outlet(a) for a in members if slug(_outlet(a)) == name), "")
        return WIRES.get(name) or named or (name.upper() if len(name) <= 4 else name.title())
    if kind == "owner":
        # What readers know it as: the group's first outlet ("Bureau of Industry and
        # Security"), never the owner id from feeds.yaml ("us-commerce").
        own = next((a for a in members if a.reprint_of is None), members[0])
        return _outlet(own) or next((a.owner for a in members if a.owner), "") or name
    lead = next((a for a in members if a.reprint_of is None), members[0])
    return _outlet(lead) or name or "unknown source"


def describe(origin: Origin) -> str:
    """'Reuters (+4 reprints)', 'NYT group (+1 same-owner outlet)', 'BIS (primary source)'."""
    text = origin.label
    if origin.primary:
        text += " (primary source)"
    if origin.reprints:
        n = origin.reprints
        if origin.key.startswith("owner:"):
            text += f" (+{n} same-owner outlet{'s' if n != 1 else ''})"
        else:
            text += f" (+{n} reprint{'s' if n != 1 else ''})"
    return text


def _reason(origins: Sequence[Origin], required: int) -> str:
    n = len(origins)
    if n == 0:
        return "no sources"
    listed = ", ".join(describe(o) for o in origins[:MAX_LISTED])
    if n > MAX_LISTED:
        listed += f" and {n - MAX_LISTED} more"
    if n == 1:
        return f"1 independent source (single-source): {listed}"
    if n < required:
        return f"{n} independent (needs {required}): {listed}"
    return f"{n} independent: {listed}"
