"""Parse stage: fetched bytes → items, for feeds (RSS, Atom, RDF, JSON Feed) and pages.

Never raises: a malformed document gives what could be read plus warnings, so one broken
source cannot stop a cycle.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from monitor.config.settings import Selectors
from monitor.ingest.parse.bounds import DEFAULT_MAX_ITEMS
from monitor.ingest.parse.feeds import parse_feed, parse_json_feed
from monitor.ingest.parse.pages import parse_page
from monitor.models import FetchResult, ParseResult

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = ["parse", "parse_feed", "parse_json_feed", "parse_page"]


def parse(
    result: FetchResult, *, kind: str, selectors: Selectors | None, max_items: int = DEFAULT_MAX_ITEMS
) -> ParseResult:
    """Parse one fetch result as a `feed` or a `page` (with its selectors), reading at most
    `max_items` items: the newest."""
    if result.not_modified:
        return ParseResult(items=(), format="unknown")  # nothing new; not a failure
    if result.body is None:
        reason = result.error or (result.error_kind.value if result.error_kind else "no body")
        return ParseResult(items=(), format="unknown", warnings=(f"nothing to parse: {reason}",))
    url = result.final_url or result.url
    if kind == "page":
        if selectors is None:
            return ParseResult(items=(), format="page", warnings=("page source has no selectors",))
        page = parse_page(
            result.body, url=url, selectors=selectors, content_type=result.content_type
        )
        return _newest(page, max_items)
    if kind == "feed":
        return parse_feed(
            result.body, url=url, content_type=result.content_type, max_items=max_items
        )
    return ParseResult(items=(), format="unknown", warnings=(f"unknown source kind {kind!r}",))


def _newest(parsed: ParseResult, max_items: int) -> ParseResult:
    """A listing page's newest `max_items` items (undated ones after dated, in page order)."""
    if len(parsed.items) <= max_items:
        return parsed
    order = sorted(
        range(len(parsed.items)),
        key=lambda i: (parsed.items[i].published is None, -(parsed.items[i].published or _EPOCH).timestamp(), i),
    )
    keep = sorted(order[:max_items])
    note = f"the page lists {len(parsed.items)} items; read the newest {max_items} (max_items)"
    return replace(parsed, items=tuple(parsed.items[i] for i in keep), warnings=(note, *parsed.warnings))
