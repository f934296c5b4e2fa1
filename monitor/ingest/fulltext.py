"""Article pages for items whose feed gives only a headline or a teaser, within a budget.

One `PageBudget` per poll bounds how many article pages the poll fetches and for how long,
and records what it fetched and what it skipped and why, for the poll report. Everything in
a poll that fetches article pages takes from the same budget (thin items here; the story
engine's "near miss" items may too), so together they stay within it.

`fetch_full_texts` fetches pages of different hosts in parallel and one host's pages in
turn (the fetcher spaces them by `http.article_min_interval`), stops starting new ones when
the count is spent and stops waiting when the time is: a large teaser feed costs one
budget, not hours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from monitor.config.settings import Http
from monitor.ingest import extract, normalize
from monitor.models import Article, FetchResult


@dataclass(frozen=True)
class Skipped:
    url: str
    reason: str  # "page budget", "time budget" or the fetch error


@dataclass
class PageBudget:
    """How many article pages one poll may fetch, for how long; what happened to each."""

    max_pages: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    fetched: int = 0  # pages fetched (whether or not text was found in them)
    skipped: list[Skipped] = field(default_factory=list)

    @classmethod
    def from_settings(cls, http: Http) -> PageBudget:
        return cls(http.article_pages_per_poll, http.article_time_per_poll.total_seconds())

    def remaining(self) -> float:
        if self.started is None:
            self.started = self.clock()
        return max(0.0, self.seconds - (self.clock() - self.started))

    def take(self) -> bool:
        """Spend one page of the count, if there is one left and time too."""
        if self.fetched >= self.max_pages or self.remaining() <= 0:
            return False
        self.fetched += 1
        return True

    def skip(self, url: str, reason: str) -> None:
        self.skipped.append(Skipped(url, reason))

    def summary(self) -> str:
        """One clause for the poll report; "" when nothing was asked of it."""
        if not self.fetched and not self.skipped:
            return ""
        text = f"full text: {self.fetched} page{'' if self.fetched == 1 else 's'} fetched"
        if self.skipped:
            reasons: dict[str, int] = {}
            for skipped in self.skipped:
                reasons[skipped.reason] = reasons.get(skipped.reason, 0) + 1
            parts = ", ".join(f"{count} {_why(reason, self)}" for reason, count in reasons.items())
            text += f", {len(self.skipped)} skipped ({parts})"
        return text


def _why(reason: str, budget: PageBudget) -> str:
    if reason == "page budget":
        return f"over the {budget.max_pages}-page budget (http.article_pages_per_poll)"
    if reason == "time budget":
        return f"after the {budget.seconds:g} s budget ran out (http.article_time_per_poll)"
    return reason


FetchPage = Callable[[Article], Awaitable[FetchResult]]
Extract = Callable[[bytes, str], Awaitable[str]]


async def fetch_full_texts(
    wanted: Sequence[Article], fetch_page: FetchPage, budget: PageBudget, extract_text: Extract
) -> None:
    """Fill `article.text` from each article's page, within `budget` (see the module doc)."""
    if not wanted:
        return
    by_host: dict[str, list[Article]] = {}
    for article in wanted:
        by_host.setdefault(_host(article.url), []).append(article)
    handled: set[int] = set()

    async def one_host(queue: list[Article]) -> None:
        for article in queue:
            if budget.fetched >= budget.max_pages:
                budget.skip(article.url, "page budget")
            elif not budget.take():
                budget.skip(article.url, "time budget")
            else:
                try:
                    page = await fetch_page(article)
                except asyncio.CancelledError:
                    budget.fetched -= 1  # not fetched after all: counted below as skipped
                    raise
                if not page.ok or not page.body:
                    budget.skip(article.url, "fetch failed")
                else:
                    text = await extract_text(page.body, page.final_url)
                    if text:
                        article.text = normalize.clean_text(text)
            handled.add(id(article))

    workers = [asyncio.ensure_future(one_host(queue)) for queue in by_host.values()]
    _finished, unfinished = await asyncio.wait(workers, timeout=max(budget.remaining(), 0.001))
    for worker in unfinished:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for article in wanted:
        if id(article) not in handled:
            budget.skip(article.url, "time budget")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


async def extract_in_thread(body: bytes, url: str) -> str:
    """trafilatura is CPU work: off the event loop."""
    return await asyncio.to_thread(extract.extract_article_text, body, url)


def needs_full_text(article: Article) -> bool:
    return bool(article.url) and extract.needs_full_text(article.summary, article.text)
