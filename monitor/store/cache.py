"""What this process last wrote, kept so that a development touched again is not read back.

The pipeline reads and writes developments through `StoredCopies` with the same answers the
store's queries would give (`stored_development`, `stored_members`, `storyline_candidates`).
Member articles are kept as impact scoring reads them (`score.keep_what_is_read`: texts of
the first articles only, cut where scoring stops reading); everything is bounded.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from monitor.models import Article, Development, DevelopmentState
from monitor.store import articles, developments
from monitor.story import score


@dataclass
class StoredCopies:
    """What this process last wrote for recently touched developments: each one's row and
    its member articles, as the store would give them back.

    This process is the store's only writer of developments and articles (retention aside,
    see `members`), so a development touched again — most are, several times while a story
    breaks — needs no re-reading of its row and all its articles. Only what the scoring
    reads is kept: the texts of the first `score.MAX_ARTICLES` members (cut to what it
    reads), none of the others'. Bounded (`limit` developments, `text_limit` characters of
    member text): the least recently touched are dropped first.
    It also keeps each topic's most recently seen developments, the storyline candidates
    (see `RecentDevelopments`).
    """

    limit: int = 2048
    text_limit: int = 32_000_000
    developments: OrderedDict[int, Development] = field(default_factory=OrderedDict)
    members: OrderedDict[int, list[Article]] = field(default_factory=OrderedDict)
    recent: dict[str, RecentDevelopments] = field(default_factory=dict)
    _text: dict[int, int] = field(default_factory=dict)  # characters of text kept per development
    _text_total: int = 0

    def clear(self) -> None:
        self.developments.clear()
        self.members.clear()
        self.recent.clear()
        self._text.clear()
        self._text_total = 0

    def storyline_candidates(self, conn: Connection, since: datetime, topic: str, limit: int) -> list[Development]:
        """`developments.storyline_candidates(conn, since, topic=topic, limit=limit)`."""
        if self.limit <= 0:  # keeping nothing
            return developments.storyline_candidates(conn, since, topic=topic, limit=limit)
        recent = self.recent.get(topic)
        if recent is not None:
            found = recent.seen_since(since, limit)
            if found is not None:
                return found
        loaded = developments.storyline_candidates(conn, None, topic=topic, limit=2 * limit)
        self.recent[topic] = recent = RecentDevelopments(loaded, complete=len(loaded) < 2 * limit, keep=2 * limit)
        found = recent.seen_since(since, limit)
        if found is None:  # fewer than `limit` of the newest are recent enough: ask the store
            return developments.storyline_candidates(conn, since, topic=topic, limit=limit)
        return found

    def stored_development(self, conn: Connection, dev_id: int) -> Development | None:
        """The development's row as stored (None when it is new)."""
        dev = self.developments.get(dev_id)
        if dev is None:
            return developments.get_development(conn, dev_id)
        self.developments.move_to_end(dev_id)
        return dev

    def wrote_development(self, dev: Development) -> None:
        assert dev.id is not None
        stored = self.developments[dev.id] = developments.as_stored(dev)
        self.developments.move_to_end(dev.id)
        recent = self.recent.get(dev.topic)
        if recent is not None:
            recent.wrote(stored)
        while len(self.developments) > self.limit:
            self.developments.popitem(last=False)

    def stored_members(self, conn: Connection, dev_id: int, unpruned_since: datetime) -> list[Article]:
        """The development's articles in store order (published, id): texts only where the
        scoring reads them. Retention prunes texts of articles published before its cut,
        which is never later than `unpruned_since`: members older than that are read again."""
        members = self.members.get(dev_id)
        if members and members[0].published >= unpruned_since:
            self.members.move_to_end(dev_id)
            return members
        members = articles.articles_for_development(conn, dev_id)
        score.keep_what_is_read(members, 0)
        self._forget_members(dev_id)
        self.members[dev_id] = members
        self._count_text(dev_id)
        return members

    def wrote_articles(self, written: Sequence[Article], merged: set[int]) -> None:
        """Add newly inserted articles to the members kept; a development in a merge is
        read again (its articles moved)."""
        for article in written:
            dev_id = article.development_id
            if dev_id is None:
                continue
            if dev_id in merged:
                self._forget_members(dev_id)
                continue
            members = self.members.get(dev_id)
            if members is not None:
                stored = articles.as_stored(article)
                at = bisect.bisect_right(members, (stored.published, stored.id or 0), key=_store_order)
                members.insert(at, stored)
                # The new member, and the one it pushed past the first MAX_ARTICLES.
                score.keep_what_is_read(members, at, at + 1)
                if at < score.MAX_ARTICLES:
                    score.keep_what_is_read(members, score.MAX_ARTICLES, score.MAX_ARTICLES + 1)
                self._count_text(dev_id)
        for dev_id in merged:
            self._forget_members(dev_id)

    def _count_text(self, dev_id: int) -> None:
        """Recount one development's kept text, then drop the least recently touched
        developments' members while over a bound."""
        self._text_total -= self._text.get(dev_id, 0)
        held = self._text[dev_id] = sum(len(a.text) + len(a.summary) for a in self.members[dev_id][: score.MAX_ARTICLES])
        self._text_total += held
        while self.members and (len(self.members) > self.limit or self._text_total > self.text_limit):
            self._forget_members(next(iter(self.members)))

    def _forget_members(self, dev_id: int) -> None:
        self.members.pop(dev_id, None)
        self._text_total -= self._text.pop(dev_id, 0)


class RecentDevelopments:
    """One topic's developments (not merged) in the store's most-recently-seen order, as
    stored: every one whose (last_seen, id) is at or above `floor` — a complete prefix of
    that order, so the newest N of them are the newest N in the store whenever there are N.
    Kept complete by `wrote` (this process writes every development); trimmed to `keep`."""

    def __init__(self, loaded: Sequence[Development], *, complete: bool, keep: int) -> None:
        self.keep = keep
        self.by_id = {d.id: d for d in loaded}
        self.floor = None if complete or not loaded else _recency(loaded[-1])

    def seen_since(self, since: datetime, limit: int) -> list[Development] | None:
        """The newest `limit` seen at or after `since`, newest first; None when the prefix
        held may miss some (it must be read again)."""
        ordered = sorted(self.by_id.values(), key=_recency, reverse=True)
        found = [d for d in ordered if d.last_seen >= since][:limit]
        if len(found) < limit and self.floor is not None and since <= self.floor[0]:
            return None  # some seen between `since` and the floor may not be held
        return found

    def wrote(self, dev: Development) -> None:
        self.by_id.pop(dev.id, None)
        if dev.state is not DevelopmentState.MERGED and (self.floor is None or _recency(dev) >= self.floor):
            self.by_id[dev.id] = dev
        if len(self.by_id) > 2 * self.keep:
            kept = sorted(self.by_id.values(), key=_recency, reverse=True)[: self.keep]
            self.by_id = {d.id: d for d in kept}
            self.floor = _recency(kept[-1])


def _recency(dev: Development) -> tuple[datetime, int]:
    return dev.last_seen, dev.id or 0


def _store_order(article: Article) -> tuple[datetime, int]:
    return article.published, article.id or 0
