"""Feed bytes → items: RSS 0.9x/1.0/2.0, Atom and RDF through feedparser; JSON Feed by hand.

Plain, well-formed RSS 2.0 first goes to the lxml fast path of `monitor.ingest.parse.rss`, which
gives the items feedparser would give for about a quarter of the CPU; whatever it is not
sure about goes to feedparser as before.

feedparser only ever sees the bytes we fetched, wrapped in a BytesIO: given a str it would
treat it as a URL or a path and fetch or open it, and given bytes it still tries `open()`
on them first. Its SAX parser has external entities switched off, so a feed cannot make it
read a file or reach the network. Whatever goes wrong, `parse_feed` returns what it could
read plus warnings; it never raises.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser

from monitor.ingest.parse.bounds import (
    DEFAULT_MAX_ITEMS,
    MAX_AUTHOR_CHARS,
    count_items,
    cut_long_authors,
    newest_xml_items,
    read_json_feed,
)
from monitor.ingest.parse.dates import parse_date, zone_offset
from monitor.ingest.parse.rss import parse_rss20
from monitor.models import Item, ParseResult

log = logging.getLogger(__name__)

HTML_WARNING = "not a feed: looks like an HTML page"
MAX_WARNING_CHARS = 300  # a warning is a sentence for an operator, not a dump of the feed
MAX_DATE_WARNINGS = 3  # one bad date per item would flood the source's health record

# feedparser flags these as "bozo" although the feed is fine: a server saying text/xml
# without a charset (RFC 3023 then means us-ascii), or no Content-Type at all.
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)
_JSON_TYPES = ("application/feed+json", "application/json", "text/json")


def parse_feed(
    body: bytes, *, url: str, content_type: str | None = None, max_items: int = DEFAULT_MAX_ITEMS
) -> ParseResult:
    """Parse an RSS, Atom, RDF or JSON Feed document, reading at most `max_items` items
    (the newest); never raises."""
    try:
        if _is_json(body, content_type):
            return parse_json_feed(body, url=url, max_items=max_items)
        return _parse_bounded_xml(body, url=url, content_type=content_type, max_items=max_items)
    except RecursionError:
        log.warning("feed %s is nested too deeply to parse", url)
        return ParseResult(items=(), format="unknown", warnings=("the document is nested too deeply to read",))
    except Exception as exc:  # a parser bug must not stop the other sources
        log.warning("feed parse failed for %s: %r", url, exc, exc_info=True)
        return ParseResult(
            items=(), format="unknown", warnings=(_bounded(f"parse failed: {exc!r}"),)
        )


def _is_json(body: bytes, content_type: str | None) -> bool:
    # The body decides when it can: servers mislabel feeds in both directions.
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"<"):
        return start == b"{"
    return (content_type or "").split(";")[0].strip().lower() in _JSON_TYPES


def _parse_bounded_xml(body: bytes, *, url: str, content_type: str | None, max_items: int) -> ParseResult:
    """`_parse_xml_feed` on a body whose items and author fields are bounded first
    (monitor.ingest.parse.bounds); an ordinary feed goes through unchanged."""
    notes: list[str] = []
    if count_items(body) > max_items:
        trimmed = newest_xml_items(body, max_items)
        if trimmed.body is None:
            return ParseResult(items=(), format="unknown", warnings=(
                f"the feed lists over {max_items} items and is too malformed to pick the newest {max_items}",))
        if trimmed.items > max_items:
            body, content_type = trimmed.body, "application/xml; charset=utf-8"  # re-encoded as UTF-8
            notes.append(f"the feed lists {trimmed.items} items; read the newest {max_items} (max_items)")
    body = cut_long_authors(body)
    parsed = _parse_xml_feed(body, url=url, content_type=content_type)
    return replace(parsed, warnings=(*notes, *parsed.warnings)) if notes else parsed


def _parse_xml_feed(body: bytes, *, url: str, content_type: str | None) -> ParseResult:
    # We sniff the format ourselves, so feedparser only gets the charset the server named
    # (which, per RFC 3023, beats the XML prolog); without one it reads the prolog.
    charset = _charset(content_type)
    headers = {
        "content-type": "application/xml" + (f"; charset={charset}" if charset else ""),
        "content-location": url,  # base for relative links; feedparser does not fetch it
    }
    body = _strip_leading_space(body)
    fast = _parse_plain_rss(body, url=url, charset=charset)
    if fast is not None:
        return fast
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers=headers, sanitize_html=True, resolve_relative_uris=True
    )
    warnings: list[str] = []
    version = parsed.get("version") or ""
    if not version and not parsed.entries:
        reason = (
            HTML_WARNING
            if _HTML_START.match(body[:4096])
            else "not a feed: no RSS, Atom or RDF document found"
        )
        log.warning("%s: %s", url, reason)
        return ParseResult(items=(), format="unknown", warnings=(reason,))
    bozo = parsed.get("bozo_exception")
    if parsed.get("bozo") and not isinstance(bozo, _HARMLESS_BOZO):
        warnings.append(_bounded(f"malformed feed, kept what could be read: {bozo}"))
        log.info("malformed feed %s: %s", url, bozo)
    items = _items_from_entries(parsed.entries, warnings)
    title = str(parsed.feed.get("title", ""))
    return ParseResult(
        items=items,
        format=version or "unknown",
        title=title,
        warnings=_limit_date_warnings(warnings),
    )


def _parse_plain_rss(body: bytes, *, url: str, charset: str | None) -> ParseResult | None:
    """The lxml fast path (`monitor.ingest.parse.rss`): the same items feedparser gives, or None."""
    try:
        fast = parse_rss20(body, url=url, charset=charset)
    except Exception:  # a bug in the fast path must only cost time: feedparser reads it
        log.warning("fast RSS path failed for %s, using feedparser", url, exc_info=True)
        return None
    if fast is None:
        return None
    title, entries = fast
    warnings: list[str] = []
    items = _items_from_entries(entries, warnings)
    return ParseResult(
        items=items, format="rss20", title=title, warnings=_limit_date_warnings(warnings)
    )


def _items_from_entries(entries: Iterable[Mapping[str, Any]], warnings: list[str]) -> tuple[Item, ...]:
    """One item per entry; an entry that cannot be read costs that entry, not the feed."""
    items: list[Item] = []
    skipped = 0
    for entry in entries:
        try:
            items.append(_item_from_entry(entry, warnings))
        except (ValueError, OverflowError, TypeError, AttributeError) as exc:
            skipped += 1
            log.info("skipping an unreadable feed entry: %s", _bounded(repr(exc)))
    if skipped:
        warnings.append(f"skipped {skipped} entries that could not be read")
    return tuple(items)


def _strip_leading_space(body: bytes) -> bytes:
    """Drop whitespace before `<?xml`: common in real feeds (a stray newline from a PHP
    template) and fatal to a strict XML parser. A UTF-8 BOM stays, it names the encoding."""
    bom = b"\xef\xbb\xbf" if body.startswith(b"\xef\xbb\xbf") else b""
    return bom + body[len(bom) :].lstrip(b" \t\r\n")


def _charset(content_type: str | None) -> str | None:
    match = _CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _item_from_entry(entry: Mapping[str, Any], warnings: list[str]) -> Item:
    source = entry.get("source") or {}
    return Item(
        title=str(entry.get("title", "")),
        link=_entry_link(entry),
        guid=str(entry.get("id", "")),
        summary=str(entry.get("summary", "")),
        content=_entry_content(entry),
        published=_entry_date(entry, warnings),
        author=str(entry.get("author", "")),
        # Aggregators name the real outlet: RSS <source url="…">Outlet</source> (news-search
        # feeds), Atom <source><title>, or dc:publisher.
        outlet=str(source.get("title") or entry.get("publisher") or ""),
        outlet_url=str(source.get("href") or source.get("link") or ""),
        credit=str(entry.get("dc_source", "")),
    )


def _entry_link(entry: Mapping[str, Any]) -> str:
    """The item's own page: its alternate link. A license, via, related or enclosure link
    names another document, never the article (a Creative Commons URL is not the story)."""
    if entry.get("link"):
        return str(entry["link"])
    for link in entry.get("links", ()):
        if link.get("href") and link.get("rel", "alternate") == "alternate":
            return str(link["href"])
    return ""


def _entry_content(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or ()
    # Prefer an HTML body over a plain-text alternative when a feed gives both.
    for wanted in ("text/html", "application/xhtml+xml", None):
        for part in contents:
            if wanted is None or part.get("type") == wanted:
                return str(part.get("value", ""))
    return ""


def _entry_date(entry: Mapping[str, Any], warnings: list[str]) -> datetime | None:
    """The item's date, strictly (monitor.ingest.parse.dates); feedparser's reading only for the
    formats that are neither RFC 822 nor RFC 3339 (its national and W3DTF variants). A date
    that cannot be read is None with a warning — for this item only."""
    key = next((k for k in ("published", "updated", "created") if entry.get(k)), None)
    if key is None:
        return None
    raw = str(entry[key])
    reading = parse_date(raw)
    if reading.value is not None or reading.shaped:
        if reading.problem:
            warnings.append(_bounded(reading.problem))
        return reading.value
    struct = entry.get(f"{key}_parsed")
    if isinstance(struct, time.struct_time):
        try:
            return datetime(*struct[:6], tzinfo=UTC)  # feedparser has converted it to UTC
        except (ValueError, OverflowError):  # year 0 or 10000
            warnings.append(_bounded(f"unparseable date {raw!r} (out of range)"))
            return None
    localized = _parse_localized_date(raw)
    if localized is None:
        warnings.append(_bounded(reading.problem or f"unparseable date {raw!r}"))
    return localized


# RFC 822 dates with month names in the feed's language ("Seg, 24 Set 2018 19:42:40 -0300"):
# common in Portuguese, Spanish, French, German and Italian feeds, unknown to feedparser.
_MONTHS = {
    **dict.fromkeys(("jan", "ene", "gen", "janv"), 1),
    **dict.fromkeys(("feb", "fev", "fév", "févr"), 2),
    **dict.fromkeys(("mar", "mär", "mrz"), 3),
    **dict.fromkeys(("apr", "abr", "avr"), 4),
    **dict.fromkeys(("may", "mai", "mag"), 5),
    **dict.fromkeys(("jun", "giu", "juin"), 6),
    **dict.fromkeys(("jul", "lug", "juil"), 7),
    **dict.fromkeys(("aug", "ago", "aoû", "août"), 8),
    **dict.fromkeys(("sep", "set"), 9),
    **dict.fromkeys(("oct", "out", "okt", "ott"), 10),
    **dict.fromkeys(("nov",), 11),
    **dict.fromkeys(("dec", "dez", "dic", "déc"), 12),
}
_LOCALIZED_DATE = re.compile(
    r"(\d{1,2})\.?\s+([^\W\d_]+)\.?\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{2}:?\d{2}|[A-Za-z]{1,5}\b)?",
)


def _parse_localized_date(text: str) -> datetime | None:
    match = _LOCALIZED_DATE.search(text)
    if not match:
        return None
    day, month_name, year, hour, minute, second, zone = match.groups()
    word = month_name.lower()
    month = _MONTHS.get(word[:4]) or _MONTHS.get(word[:3])
    if month is None:
        return None
    offset = 0
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * (-1 if zone[0] == "-" else 1)
    elif zone:
        hours = zone_offset(zone)
        if hours is None:
            return None  # a zone we do not know: not a guess at UTC
        offset = round(hours * 60)
    try:
        local = datetime(
            int(year), month, int(day), int(hour), int(minute), min(int(second or 0), 59), tzinfo=UTC
        )
        return local - timedelta(minutes=offset)
    except (ValueError, OverflowError):
        return None


def parse_json_feed(body: bytes, *, url: str, max_items: int = DEFAULT_MAX_ITEMS) -> ParseResult:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), items streamed (bounds)."""
    try:
        read = read_json_feed(body, max_items, _json_item_date)
    except RecursionError:
        log.warning("JSON feed %s is nested too deeply to read", url)
        return ParseResult(items=(), format="json", warnings=("malformed JSON feed: nested too deeply to read",))
    except (ValueError, UnicodeDecodeError) as exc:
        log.warning("malformed JSON feed %s: %s", url, _bounded(str(exc)))
        return ParseResult(
            items=(), format="json", warnings=(_bounded(f"malformed JSON feed: {exc}"),)
        )
    if not read.has_items:
        return ParseResult(
            items=(), format="json", warnings=("not a feed: JSON without an 'items' list",)
        )
    doc = read.top
    version = str(doc.get("version", ""))
    fmt = "json1.1" if version.endswith("/1.1") else "json1" if version.endswith("/1") else "json"
    warnings: list[str] = []
    if read.total > max_items:
        warnings.append(f"the feed lists {read.total} items; read the newest {max_items} (max_items)")
    items = tuple(_json_item(raw, url, warnings) for raw in read.items if isinstance(raw, dict))
    if len(items) != len(read.items):
        warnings.append(
            f"skipped {len(read.items) - len(items)} JSON Feed items that are not objects"
        )
    return ParseResult(
        items=items,
        format=fmt,
        title=_str(doc.get("title")),
        warnings=_limit_date_warnings(warnings),
    )


def _json_item(raw: Mapping[str, Any], base: str, warnings: list[str]) -> Item:
    link = _str(raw.get("url")) or _str(raw.get("external_url"))
    date_text = _str(raw.get("date_published")) or _str(raw.get("date_modified"))
    return Item(
        title=_str(raw.get("title")),
        link=urljoin(base, link) if link else "",
        guid=_str(raw.get("id")),  # the spec says string, but numbers are common in the wild
        summary=_str(raw.get("summary")),
        content=_str(raw.get("content_html")) or _str(raw.get("content_text")),
        published=_parse_date_text(date_text, warnings) if date_text else None,
        author=", ".join(_author_names(raw)),
    )


def _json_item_date(raw: Any) -> datetime | None:
    if not isinstance(raw, dict):
        return None
    text = _str(raw.get("date_published")) or _str(raw.get("date_modified"))
    return parse_date(text).value if text else None


def _author_names(raw: Mapping[str, Any]) -> Iterable[str]:
    authors = raw.get("authors")  # 1.1
    if not isinstance(authors, list):
        authors = [raw.get("author")]  # 1.0
    return [_str(a.get("name"))[:MAX_AUTHOR_CHARS] for a in authors if isinstance(a, dict) and a.get("name")]


def _parse_date_text(text: str, warnings: list[str]) -> datetime | None:
    """RFC 3339 (what JSON Feed requires), or RFC 822, strictly: no fuzzy guessing."""
    reading = parse_date(text)
    if reading.problem:
        warnings.append(_bounded(reading.problem))
    return reading.value


def _str(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 1] + "…"


def _limit_date_warnings(warnings: list[str]) -> tuple[str, ...]:
    dates = [w for w in warnings if w.startswith("unparseable date")]
    if len(dates) <= MAX_DATE_WARNINGS:
        return tuple(warnings)
    others = [w for w in warnings if not w.startswith("unparseable date")]
    return (
        *others,
        *dates[:MAX_DATE_WARNINGS],
        f"… and {len(dates) - MAX_DATE_WARNINGS} more unparseable dates",
    )
