"""Parse stage: fetched bytes → items, for feeds (RSS, Atom, RDF, JSON Feed) and pages.

Never raises: a malformed document gives what could be read plus warnings, so one broken
source cannot stop a cycle.
"""

from __future__ import annotations

from monitor.models import FetchResult, ParseResult
from monitor.parse.feeds import parse_feed, parse_json_feed
from monitor.parse.pages import parse_page
from monitor.settings import Selectors

__all__ = ["parse", "parse_feed", "parse_json_feed", "parse_page"]


def parse(result: FetchResult, *, kind: str, selectors: Selectors | None) -> ParseResult:
    """Parse one fetch result as a `feed` or a `page` (with its selectors)."""
    if result.not_modified:
        return ParseResult(items=(), format="unknown")  # nothing new; not a failure
    if result.body is None:
        reason = result.error or (result.error_kind.value if result.error_kind else "no body")
        return ParseResult(items=(), format="unknown", warnings=(f"nothing to parse: {reason}",))
    url = result.final_url or result.url
    if kind == "page":
        if selectors is None:
            return ParseResult(items=(), format="page", warnings=("page source has no selectors",))
        return parse_page(
            result.body, url=url, selectors=selectors, content_type=result.content_type
        )
    if kind == "feed":
        return parse_feed(result.body, url=url, content_type=result.content_type)
    return ParseResult(items=(), format="unknown", warnings=(f"unknown source kind {kind!r}",))
