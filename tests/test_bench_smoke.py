"""The benchmark's feed farm behaves like a well-run feed server (no timings: those are bench/)."""

from __future__ import annotations

import urllib.error
import urllib.request

import feedparser
import pytest

from bench.farm import ITEMS_PER_FEED, Farm, FeedSet, load_headlines
from tests.corpus import corpus_path


@pytest.fixture(autouse=True)
def headlines_corpus() -> None:
    """The farm serves real UCI headlines; without the corpus these tests skip (CI: fail)."""
    corpus_path("clusters", "uci-headlines.jsonl")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:  # urllib raises on 304
        return error.code, dict(error.headers), b""


@pytest.fixture(scope="module")
def farm():
    corpus_path("clusters", "uci-headlines.jsonl")  # module scope runs before the autouse check
    with Farm(4, latency=0.0) as running:
        yield running


def test_feeds_carry_real_headlines_and_enough_text():
    feeds = FeedSet(3)
    titles = {h.title for h in load_headlines()}
    parsed = feedparser.parse(feeds.body(0))
    assert len(parsed.entries) == ITEMS_PER_FEED
    assert all(entry.title in titles for entry in parsed.entries)
    assert all(len(entry.summary) >= 400 for entry in parsed.entries)
    assert len({entry.id for entry in parsed.entries}) == ITEMS_PER_FEED


def test_each_feed_has_its_own_loopback_host(farm):
    hosts = {url.split("/")[2].split(":")[0] for url in farm.urls}
    assert len(hosts) == farm.n
    assert all(host.startswith("127.") for host in hosts)


def test_etag_gives_304_until_the_feed_changes(farm):
    url = farm.urls[1]
    status, headers, body = get(url)
    assert status == 200 and body
    status, _, body = get(url, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    status, _, _ = get(url, {"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304

    farm.add_item(1, "Farm test headline", "x" * 450)
    status, changed, body = get(url, {"If-None-Match": headers["ETag"]})
    assert status == 200
    assert changed["ETag"] != headers["ETag"]
    assert feedparser.parse(body).entries[0].title == "Farm test headline"


def test_change_touches_only_the_chosen_feeds(farm):
    before = {url: get(url)[1]["ETag"] for url in farm.urls}
    chosen = farm.change(0.5)
    assert len(chosen) == 2
    after = {url: get(url, {"If-None-Match": before[url]})[0] for url in farm.urls}
    assert [after[farm.urls[i]] for i in range(farm.n)] == [200 if i in chosen else 304 for i in range(farm.n)]
