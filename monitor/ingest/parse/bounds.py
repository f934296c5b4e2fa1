"""Bounds on what one feed body can cost, applied before the parsers see it.

- Items: a poll reads at most `max_items` (the newest, by their dates; undated ones after
  dated ones, earlier in the document first). An XML feed with more is streamed through
  lxml's iterparse keeping a heap of the best `max_items` item elements in the tree and
  dropping the rest as they end, then serialised for feedparser; a JSON Feed's `items`
  array is decoded one item at a time the same way. Neither ever materialises 115,000
  items (or 3 M empty objects) at once.
- Author fields: feedparser looks for an e-mail address in every author string with a
  pattern that is quadratic in its length (64 KB took 15 s of CPU, holding the GIL). Author,
  creator, name, email, publisher... element texts are cut to `MAX_AUTHOR_CHARS` first.

Feeds that need neither are passed on byte for byte, so ordinary parsing is unchanged.
"""

from __future__ import annotations

import heapq
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lxml.etree

from monitor.ingest.parse.dates import parse_date

MAX_AUTHOR_CHARS = 256
DEFAULT_MAX_ITEMS = 500

_AUTHOR_TAGS = rb"(?:author|creator|name|email|managingeditor|webmaster|contributor|publisher|owner)"
_LONG_AUTHOR = re.compile(
    rb"(<(?:[A-Za-z_][\w.-]*:)?" + _AUTHOR_TAGS + rb"\b[^<>]{0,512}>\s*(?:<!\[CDATA\[)?)([^<\]]{%d,})"
    % (MAX_AUTHOR_CHARS + 1),
    re.IGNORECASE,
)
_DATE_TAGS = frozenset({"pubdate", "published", "updated", "date", "issued", "modified", "created"})


def count_items(body: bytes) -> int:
    """At least as many as the item and entry start tags: a cheap trigger (bytes.count
    allocates nothing, where a regex over 1.4 M tags would build a list of them)."""
    return sum(body.count(tag) for tag in (b"<item", b":item", b"<entry", b":entry"))


def cut_long_authors(body: bytes) -> bytes:
    """Author-like element texts longer than MAX_AUTHOR_CHARS, cut to it (never inside an
    entity reference)."""

    def cut(match: re.Match[bytes]) -> bytes:
        text = match.group(2)[:MAX_AUTHOR_CHARS]
        amp = text.rfind(b"&", -12)
        if amp != -1 and b";" not in text[amp:]:
            text = text[:amp]
        return match.group(1) + text

    return _LONG_AUTHOR.sub(cut, body)


class _Newest:
    """The best `limit` items seen so far by (dated, date, earlier in the document)."""

    def __init__(self, limit: int, on_drop: Callable[[Any], None]) -> None:
        self.limit = limit
        self.on_drop = on_drop
        self.heap: list[tuple[bool, float, int, Any]] = []
        self.seen = 0

    def offer(self, when: datetime | None, item: Any) -> None:
        index = self.seen
        self.seen += 1
        key = (when is not None, when.timestamp() if when else 0.0, -index, item)
        if len(self.heap) < self.limit:
            heapq.heappush(self.heap, key)
            return
        dropped = heapq.heapreplace(self.heap, key)[3] if key[:3] > self.heap[0][:3] else item
        self.on_drop(dropped)

    def kept(self) -> list[Any]:
        """In document order."""
        return [entry[3] for entry in sorted(self.heap, key=lambda e: -e[2])]


@dataclass
class Trimmed:
    body: bytes | None  # the document with only its newest items (UTF-8); None: unreadable
    items: int  # how many items it listed


def newest_xml_items(body: bytes, max_items: int) -> Trimmed:
    """The document with only its newest `max_items` items, re-encoded as UTF-8 (body None
    when lxml cannot read it even in recovery mode)."""
    events = lxml.etree.iterparse(
        io.BytesIO(body), events=("end",), recover=True, resolve_entities=False,
        no_network=True, huge_tree=False, remove_comments=True, remove_pis=True,
    )  # fmt: skip

    def drop(element: Any) -> None:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)

    newest = _Newest(max_items, drop)
    try:
        for _event, element in events:
            tag = element.tag
            if isinstance(tag, str) and tag.rsplit("}", 1)[-1] in ("item", "entry"):
                newest.offer(_element_date(element), element)
        root = events.root
    except (lxml.etree.XMLSyntaxError, ValueError):
        return Trimmed(None, newest.seen)
    if root is None:
        return Trimmed(None, newest.seen)
    return Trimmed(lxml.etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=True), newest.seen)


def _element_date(element: Any) -> datetime | None:
    for child in element:
        tag = child.tag
        if isinstance(tag, str) and tag.rsplit("}", 1)[-1].lower() in _DATE_TAGS and child.text:
            value = parse_date(child.text).value
            if value is not None:
                return value
    return None


@dataclass
class JsonFeedDocument:
    """A JSON Feed read with its items bounded: the top-level keys, the kept item objects
    (document order) and how many items the array held."""

    top: dict[str, Any]
    items: list[Any]
    total: int
    has_items: bool


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def read_json_feed(body: bytes, max_items: int, date_of: Callable[[Any], datetime | None]) -> JsonFeedDocument:
    """Decode a JSON document whose top level is an object; its `items` array one element
    at a time, keeping the newest `max_items`. Raises ValueError (json.JSONDecodeError) on
    malformed JSON and RecursionError on absurd nesting, as json.loads does."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    at = _skip(text, 0)
    if not text.startswith("{", at):
        value = json.loads(text)  # not an object: the caller says "not a feed"
        return JsonFeedDocument({"": value}, [], 0, False)
    top: dict[str, Any] = {}
    newest = _Newest(max_items, lambda _item: None)
    has_items = False
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        return JsonFeedDocument(top, [], 0, False)
    while True:
        key, at = _DECODER.raw_decode(text, at)
        if not isinstance(key, str):
            raise json.JSONDecodeError("expected a key", text, at)
        at = _expect(text, at, ":")
        if key == "items" and text.startswith("[", at):
            newest = _Newest(max_items, lambda _item: None)  # the last "items" wins, as in json.loads
            at = _read_array(text, at + 1, newest, date_of)
            has_items = True
        else:
            top[key], at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
            continue
        at = _expect(text, at, "}")
        break
    if _skip(text, at) != len(text):
        raise json.JSONDecodeError("Extra data", text, at)
    return JsonFeedDocument(top, newest.kept(), newest.seen, has_items)


def _read_array(text: str, at: int, newest: _Newest, date_of: Callable[[Any], datetime | None]) -> int:
    at = _skip(text, at)
    if text.startswith("]", at):
        return at + 1
    while True:
        value, at = _DECODER.raw_decode(text, at)
        newest.offer(date_of(value), value)
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
            continue
        return _expect(text, at, "]")


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return match.end() if match else at


def _expect(text: str, at: int, char: str) -> int:
    at = _skip(text, at)
    if not text.startswith(char, at):
        raise json.JSONDecodeError(f"Expecting '{char}'", text, at)
    return _skip(text, at + 1)
