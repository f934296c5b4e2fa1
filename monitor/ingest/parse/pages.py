"""A listing page (HTML) → items, read with the CSS selectors a source sets in feeds.yaml.

Used for sites without a feed, typically government press-release pages. Links are
resolved against the page URL (or its <base href>) and only http(s) links are kept.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from dateutil import parser as dateparser
from soupsieve import SelectorSyntaxError

from monitor.config.settings import Selectors
from monitor.models import Item, ParseResult

log = logging.getLogger(__name__)

MAX_ITEMS = 500  # a listing page with more "items" has a selector that matches too much


def parse_page(
    body: bytes, *, url: str, selectors: Selectors, content_type: str | None = None
) -> ParseResult:
    """Apply `selectors` to the page; never raises."""
    try:
        return _parse_page(body, url=url, selectors=selectors, content_type=content_type)
    except SelectorSyntaxError as exc:
        return ParseResult(
            items=(), format="page", warnings=(f"bad CSS selector: {exc}".splitlines()[0],)
        )
    except Exception as exc:  # a parser bug must not stop the other sources
        log.warning("page parse failed for %s: %r", url, exc, exc_info=True)
        return ParseResult(items=(), format="page", warnings=(f"parse failed: {exc!r}"[:300],))


def _parse_page(
    body: bytes, *, url: str, selectors: Selectors, content_type: str | None
) -> ParseResult:
    soup = BeautifulSoup(body, "lxml", from_encoding=_charset(content_type))
    base = _base_url(soup, url)
    warnings: list[str] = []
    items: list[Item] = []
    matches = soup.select(selectors.item, limit=MAX_ITEMS + 1)
    if len(matches) > MAX_ITEMS:
        warnings.append(
            f"item selector {selectors.item!r} matched more than {MAX_ITEMS} elements; kept {MAX_ITEMS}"
        )
    for element in matches[:MAX_ITEMS]:
        item = _item(element, base, selectors, warnings)
        if item.title or item.link:
            items.append(item)
    if not matches:
        warnings.append(
            f"item selector {selectors.item!r} matched nothing; has the page layout changed?"
        )
    elif len(items) < len(matches[:MAX_ITEMS]):
        warnings.append(
            f"skipped {len(matches[:MAX_ITEMS]) - len(items)} items with neither title nor link"
        )
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    return ParseResult(items=tuple(items), format="page", title=title, warnings=tuple(warnings))


def _item(element: Tag, base: str, selectors: Selectors, warnings: list[str]) -> Item:
    title_el = _first(element, selectors.title)
    link_el = _first(element, selectors.link)
    date_el = _first(element, selectors.date) if selectors.date else None
    summary_el = _first(element, selectors.summary) if selectors.summary else None
    return Item(
        title=title_el.get_text(" ", strip=True) if title_el else "",
        link=_link(link_el, base),
        summary=summary_el.get_text(" ", strip=True) if summary_el else "",
        published=_date(date_el, warnings) if date_el else None,
    )


def _first(element: Tag, selector: str) -> Tag | None:
    """The first match inside the item, or the item itself (an item that *is* the <a>)."""
    found = element.select_one(selector)
    if found is None and element.css.match(selector):
        return element
    return found


def _link(element: Tag | None, base: str) -> str:
    if element is None:
        return ""
    href = element.get("href")
    if not isinstance(href, str) or not href.strip():
        return ""
    link = urljoin(base, href.strip())
    # javascript:, mailto: and the like are not articles
    return link if urlsplit(link).scheme in ("http", "https") else ""


def _date(element: Tag, warnings: list[str]) -> datetime | None:
    raw = element.get("datetime") or element.get("content") or element.get_text(" ", strip=True)
    text = raw if isinstance(raw, str) else " ".join(raw)
    if not text:
        return None
    try:
        value = dateparser.parse(text)
    except (ValueError, OverflowError):
        try:  # "Posted on November 3, 2025 by the Office of Public Affairs"
            value = dateparser.parse(text, fuzzy=True)
        except (ValueError, OverflowError):
            if len(warnings) < 20:
                warnings.append(f"unparseable date {text[:80]!r}")
            return None
    # A page date without a zone is taken as UTC: off by hours at most, and stable.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _base_url(soup: BeautifulSoup, url: str) -> str:
    base = soup.find("base", href=True)
    href = base.get("href") if isinstance(base, Tag) else None
    return urljoin(url, href.strip()) if isinstance(href, str) and href.strip() else url


def _charset(content_type: str | None) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None
