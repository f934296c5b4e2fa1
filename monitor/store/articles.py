"""Articles: exact-dedup lookups, batch inserts, reads by development, retention.

Retention (`prune_articles`) works in two steps, so that neither a lingering feed item nor
the database size becomes a problem:

- *prune*: an old article's text, summary and near-duplicate signature are cleared and it is
  marked `pruned`. Its dedup keys (canonical URL, GUID, content hash), title, URL, outlet
  and development stay, so a feed that still lists the item does not bring it back as news,
  and an old development still names its outlets.
- *forget* (optional, `forget_before`): rows older than that are deleted outright, which is
  what bounds the database. Pick it well beyond how long any feed keeps an item.

Articles of a development still being reported (its `last_seen` is not older than the cut)
are left whole, whatever their own age. Developments and alerts are never touched: they
keep their own headline, lead, counts and payloads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    delete,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import RowMapping

from monitor.models import Article, TopicMatch
from monitor.store.db import max_ids, sync_id_sequence
from monitor.store.schema import article, as_utc, development

log = logging.getLogger(__name__)

# Values per IN (...) list: far below SQLite's and PostgreSQL's parameter limits, and large
# enough that a 500-item feed costs one query per key kind.
CHUNK = 500
MAX_SOURCES = 20  # sources whose GUIDs one find_known statement looks up (a poll has one)
STREAM_BATCH = 1000
_URL_SOURCE_SEP = "\t"  # never in a canonical URL (whitespace is percent-encoded) or a source id

T = TypeVar("T")


@dataclass(slots=True)
class KnownKeys:
    """The dedup keys among those asked about that are already stored."""

    canonical_urls: set[str] = field(default_factory=set)
    guids: set[tuple[str, str]] = field(default_factory=set)  # (source_id, guid)
    content_hashes: set[str] = field(default_factory=set)
    url_sources: set[tuple[str, str]] = field(default_factory=set)  # (canonical_url, source_id)


def find_known(
    conn: Connection,
    *,
    canonical_urls: Iterable[str] = (),
    guids: Iterable[tuple[str, str]] = (),
    content_hashes: Iterable[str] = (),
) -> KnownKeys:
    """Which of these keys are stored already (pruned articles count: they were seen)."""
    urls = {u for u in canonical_urls if u}
    hashes = {h for h in content_hashes if h}
    by_source: dict[str, set[str]] = {}
    for source_id, guid in guids:
        if guid:
            by_source.setdefault(source_id, set()).add(guid)
    if max(len(urls), len(hashes), *map(len, by_source.values())) <= CHUNK and len(by_source) <= MAX_SOURCES:
        return _find_known_at_once(conn, urls, hashes, by_source)
    known = KnownKeys()
    for batch in _chunks(urls):
        query = select(article.c.canonical_url, article.c.source_id).where(article.c.canonical_url.in_(batch)).distinct()
        for url, source_id in conn.execute(query):
            known.canonical_urls.add(url)
            known.url_sources.add((url, source_id))
    for batch in _chunks(hashes):
        query = select(article.c.content_hash).where(article.c.content_hash.in_(batch))
        known.content_hashes.update(conn.execute(query).scalars())
    for source_id, source_guids in by_source.items():
        # One source per query keeps it on the (source_id, guid) index on both engines.
        for batch in _chunks(source_guids):
            query = select(article.c.guid).where(
                article.c.source_id == source_id, article.c.guid.in_(batch)
            )
            known.guids.update((source_id, g) for g in conn.execute(query).scalars())
    return known


def _find_known_at_once(
    conn: Connection, urls: set[str], hashes: set[str], by_source: dict[str, set[str]]
) -> KnownKeys:
    """`find_known` in one statement (a UNION ALL of the same indexed lookups): a poll's
    keys usually fit, and one round trip costs about a third of three."""
    parts: list[Select[Any]] = []
    kinds: list[tuple[str, str]] = []  # per part: ("url" | "hash" | "guid", source of the GUIDs)
    if urls:
        # The URL with its source, as one key: a URL stored by another source is a copy,
        # one stored by the same source may be another item (their identities decide).
        url_key = article.c.canonical_url + literal(_URL_SOURCE_SEP) + article.c.source_id
        parts.append(select(literal(len(parts)), url_key).where(article.c.canonical_url.in_(urls)))
        kinds.append(("url", ""))
    if hashes:
        parts.append(select(literal(len(parts)), article.c.content_hash).where(article.c.content_hash.in_(hashes)))
        kinds.append(("hash", ""))
    for source_id, source_guids in by_source.items():
        # One source per part keeps each on the (source_id, guid) index on both engines.
        parts.append(
            select(literal(len(parts)), article.c.guid).where(
                article.c.source_id == source_id, article.c.guid.in_(source_guids)
            )
        )
        kinds.append(("guid", source_id))
    known = KnownKeys()
    if not parts:
        return known
    for part, key in conn.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        kind, source_id = kinds[part]
        if kind == "url":
            url, _, source_id = key.rpartition(_URL_SOURCE_SEP)
            known.canonical_urls.add(url)
            known.url_sources.add((url, source_id))
        elif kind == "hash":
            known.content_hashes.add(key)
        else:
            known.guids.add((source_id, key))
    return known


def insert_articles(conn: Connection, articles: Sequence[Article]) -> None:
    """Insert new articles with their ids; an article without an id is given the next one."""
    if not articles:
        return
    if any(item.id is None for item in articles):
        # Past both what is stored and what this batch brings with its own ids.
        next_id = max([max_ids(conn)[0], *(a.id for a in articles if a.id is not None)])
        for item in articles:
            if item.id is None:
                next_id += 1
                item.id = next_id
    conn.execute(article.insert(), [_row_from_article(a) for a in articles])
    sync_id_sequence(conn, "article")


def articles_for_development(conn: Connection, development_id: int) -> list[Article]:
    """The articles of one development, oldest first."""
    query = (
        select(article)
        .where(article.c.development_id == development_id)
        .order_by(article.c.published, article.c.id)
    )
    return [_article_from_row(row._mapping) for row in conn.execute(query)]


def as_stored(item: Article) -> Article:
    """The article as `articles_for_development` would read it back after `insert_articles`.

    For callers that keep what they wrote instead of reading it again in the same process.
    """
    stored = _article_from_row(_row_from_article(item))  # type: ignore[arg-type]
    stored.published, stored.fetched = as_utc(stored.published), as_utc(stored.fetched)
    return stored



def iter_recent_articles(conn: Connection, since: datetime) -> Iterator[Article]:
    """Articles published since `since`, in id order, streamed (server-side on PostgreSQL).

    For rebuilding in-memory indexes on start; consume it while `conn` is open.
    """
    query = (
        select(article)
        .where(article.c.published >= since)
        .order_by(article.c.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    shared: dict[Any, Any] = {}
    for row in conn.execute(query):
        yield _with_shared_values(_article_from_row(row._mapping), shared)


# Values that repeat over thousands of articles (a few hundred outlets, one origin each, the
# same topic matches): a restart keeps every recent article's slim copy in memory.
_SHARED_FIELDS = ("source_id", "outlet", "owner", "tier", "credit", "canonical_link", "origin", "topics")


def _with_shared_values(item: Article, shared: dict[Any, Any]) -> Article:
    """The article with each repeated value as one object shared with earlier articles."""
    for name in _SHARED_FIELDS:
        value = getattr(item, name)
        setattr(item, name, shared.setdefault(value, value))
    if item.canonical_url == item.url:
        item.canonical_url = item.url
    if item.fetched == item.published:
        item.fetched = item.published
    return item


def count_articles(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(article)).scalar() or 0)


def prune_articles(
    conn: Connection, before: datetime, *, forget_before: datetime | None = None
) -> int:
    """Retention: prune articles published before `before`; delete those before
    `forget_before` (see the module docstring). Returns how many articles were affected."""
    deleted = _forget_articles(conn, forget_before) if forget_before is not None else 0
    pruned = conn.execute(
        update(article)
        .where(_retired(before), article.c.pruned.is_(False))
        .values(text="", summary="", signature=None, pruned=True)
    ).rowcount
    if pruned or deleted:
        log.info("retention: pruned %d articles, deleted %d", pruned, deleted)
    return int(pruned) + int(deleted)


def reassign_development(conn: Connection, from_id: int, to_id: int) -> int:
    """Move every article of development `from_id` to `to_id` (a merge); returns the count."""
    result = conn.execute(
        update(article).where(article.c.development_id == from_id).values(development_id=to_id)
    )
    return int(result.rowcount)


def _forget_articles(conn: Connection, before: datetime) -> int:
    doomed = select(article.c.id).where(_retired(before))
    # A surviving reprint must not point at a deleted original.
    conn.execute(update(article).where(article.c.reprint_of.in_(doomed)).values(reprint_of=None))
    return int(conn.execute(delete(article).where(article.c.id.in_(doomed))).rowcount)


def _retired(before: datetime) -> ColumnElement[bool]:
    """Published before the cut, and not part of a development still being reported."""
    active = select(development.c.id).where(development.c.last_seen >= before)
    return and_(
        article.c.published < before,
        or_(article.c.development_id.is_(None), article.c.development_id.not_in(active)),
    )


def _row_from_article(item: Article) -> dict[str, Any]:
    return {
        "id": item.id,
        "source_id": item.source_id,
        "outlet": item.outlet,
        "owner": item.owner,
        "tier": item.tier,
        "guid": item.guid,
        "url": item.url,
        "canonical_url": item.canonical_url,
        "title": item.title,
        "summary": item.summary,
        "text": item.text,
        "published": item.published,
        "fetched": item.fetched,
        "content_hash": item.content_hash,
        "signature": item.signature,
        "credit": item.credit,
        "canonical_link": item.canonical_link,
        "origin": item.origin,
        "reprint_of": item.reprint_of,
        "topics": [
            {"topic_id": t.topic_id, "score": t.score, "explanation": t.explanation}
            for t in item.topics
        ],
        "development_id": item.development_id,
        "pruned": False,
    }


def _article_from_row(row: RowMapping) -> Article:
    signature = row["signature"]
    return Article(
        id=row["id"],
        source_id=row["source_id"],
        outlet=row["outlet"],
        owner=row["owner"],
        tier=row["tier"],
        guid=row["guid"],
        url=row["url"],
        canonical_url=row["canonical_url"],
        title=row["title"],
        summary=row["summary"],
        text=row["text"],
        published=row["published"],
        fetched=row["fetched"],
        content_hash=row["content_hash"],
        signature=bytes(signature) if signature is not None else None,
        credit=row["credit"],
        canonical_link=row["canonical_link"],
        origin=row["origin"],
        reprint_of=row["reprint_of"],
        topics=_topics_from_json(row["topics"]),
        development_id=row["development_id"],
    )


def _topics_from_json(value: Any) -> tuple[TopicMatch, ...]:
    topics: list[TopicMatch] = []
    for entry in value or ():
        try:
            topics.append(
                TopicMatch(str(entry["topic_id"]), float(entry["score"]), str(entry["explanation"]))
            )
        except (KeyError, TypeError, ValueError):
            # Written by hand or by another version: skip it rather than fail the read.
            log.warning("ignoring malformed topic match in article row: %r", entry)
    return tuple(topics)


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    iterator = iter(values)
    while batch := list(islice(iterator, CHUNK)):
        yield batch
