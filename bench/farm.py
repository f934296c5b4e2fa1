"""The feed farm: N RSS feeds built from real headlines, served on loopback like the internet.

Each feed lives on its own "host": feed i is served at ``http://127.0.<1+i//250>.<1+i%250>:PORT/h/<i>/feed.xml``
(all of 127.0.0.0/8 is loopback on Linux), so a client's per-host limits and connection
pools see N hosts as they would in production. Every response — 200 or 304 — waits a fixed
latency (``asyncio.sleep``, default 50 ms) before it is sent, like a round trip to a real
server; the sleep costs the farm no CPU.

Feeds hold ~50 items each, titled with the UCI News Aggregator headlines (recycled when N×50
exceeds the corpus) and described by the headlines of the same story from other outlets, so
items carry real text of ≥ 400 characters (the monitor then judges them from the feed alone,
as it does for full-description feeds). ETag and Last-Modified change only when a feed does;
If-None-Match / If-Modified-Since get a 304.

The farm runs in worker processes (``workers``, SO_REUSEPORT on every address, the kernel
spreads connections). Each worker holds the same deterministic state; the controller
(:class:`Farm`, in the bench process) applies every change to every worker through the
worker's private admin port, so all of them always serve the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import socket
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from bench.common import corpus_file

ITEMS_PER_FEED = 50
NEW_ITEMS_PER_CHANGE = 3
MIN_SUMMARY_CHARS = 450  # above the monitor's 400-character "thin teaser" mark
BASE_TIME = 1_700_000_000.0  # Last-Modified of generation 0 (a fixed date: deterministic bodies)


@dataclass(frozen=True, slots=True)
class Headline:
    title: str
    outlet: str
    story: str


@dataclass(slots=True)
class FeedItem:
    guid: str
    title: str
    link: str
    summary: str
    published: float  # Unix seconds


def feed_host(index: int) -> str:
    """The loopback address that plays feed `index`'s host."""
    if index >= 250 * 254:
        raise ValueError("the farm has room for 63,500 hosts")
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def feed_url(index: int, port: int) -> str:
    return f"http://{feed_host(index)}:{port}/h/{index}/feed.xml"


def load_headlines(path: Path | None = None) -> list[Headline]:
    rows = []
    with open(path or corpus_file("clusters", "uci-headlines.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                title = (row.get("title") or "").strip()
                if title:
                    rows.append(Headline(title, (row.get("source") or "unknown").removeprefix("www."), str(row.get("cluster"))))
    return rows


def story_text(headlines: list[Headline]) -> dict[str, str]:
    """Per story, the headlines of all its outlets joined: real text for item descriptions."""
    by_story: dict[str, list[str]] = {}
    for h in headlines:
        by_story.setdefault(h.story, []).append(h.title)
    return {story: ". ".join(titles) for story, titles in by_story.items()}


class FeedSet:
    """The farm's content: deterministic from (n, seed); changes are explicit commands."""

    def __init__(self, n: int, *, seed: int = 1, headlines: list[Headline] | None = None, items_per_feed: int = ITEMS_PER_FEED) -> None:
        self.n = n
        pool = headlines if headlines is not None else load_headlines()
        self.texts = story_text(pool)
        pool = list(pool)
        random.Random(seed).shuffle(pool)
        # A third of the headlines is kept for the items that changes add, so every new item
        # is a headline no feed carried before. The first content recycles the rest across
        # the N × 50 items: copies of one headline are exact reprints (same title and text),
        # as syndicated wire copy is, and a monitor's exact-duplicate check drops them.
        self.fresh = pool[::3]
        self.base = [h for i, h in enumerate(pool) if i % 3]
        self.base_cursor = 0
        self.fresh_cursor = 0
        self.serial = 0
        self.feeds: list[deque[FeedItem]] = []
        self.version = [0] * n
        self.modified = [BASE_TIME] * n
        self.bodies: list[bytes | None] = [None] * n
        for i in range(n):
            items: deque[FeedItem] = deque(maxlen=ITEMS_PER_FEED)
            for k in range(items_per_feed):
                headline = self.base[self.base_cursor % len(self.base)]
                self.base_cursor += 1
                items.appendleft(self.make_item(i, headline.title, self.summary_for(headline), BASE_TIME - (items_per_feed - k) * 600))
            self.feeds.append(items)

    def _fresh_item(self, feed: int, published: float) -> FeedItem:
        headline = self.fresh[self.fresh_cursor % len(self.fresh)]
        self.fresh_cursor += 1
        return self.make_item(feed, headline.title, self.summary_for(headline), published)

    def summary_for(self, headline: Headline) -> str:
        text = self.texts.get(headline.story, headline.title)
        while len(text) < MIN_SUMMARY_CHARS:  # small stories: repeat rather than invent words
            text = f"{text}. {headline.title}"
        return text[:600]

    def make_item(self, feed: int, title: str, summary: str, published: float) -> FeedItem:
        self.serial += 1
        guid = f"h{feed}-{self.serial}"
        return FeedItem(guid, title, f"http://{feed_host(feed)}/news/{guid}.html", summary, published)

    # -- changes (applied identically in every worker) ---------------------------------------

    def change(self, feeds: list[int], now: float, count: int = NEW_ITEMS_PER_CHANGE) -> None:
        """Put `count` new items at the top of each listed feed."""
        for i in feeds:
            for _ in range(count):
                self.feeds[i].appendleft(self._fresh_item(i, now))
            self._touch(i, now)

    def add_item(self, feed: int, title: str, summary: str, now: float) -> None:
        self.feeds[feed].appendleft(self.make_item(feed, title, summary, now))
        self._touch(feed, now)

    def _touch(self, i: int, now: float) -> None:
        self.version[i] += 1
        # Last-Modified has one-second resolution: keep it strictly increasing per feed.
        self.modified[i] = max(float(int(now)), self.modified[i] + 1)
        self.bodies[i] = None

    # -- serving -----------------------------------------------------------------------------

    def etag(self, i: int) -> str:
        return f'"f{i}-v{self.version[i]}"'

    def last_modified(self, i: int) -> str:
        return formatdate(self.modified[i], usegmt=True)

    def body(self, i: int) -> bytes:
        cached = self.bodies[i]
        if cached is None:
            cached = self.bodies[i] = render_rss(i, self.feeds[i], self.last_modified(i))
        return cached


def render_rss(index: int, items: deque[FeedItem], last_modified: str) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>Farm feed {index}</title><link>http://{feed_host(index)}/</link>",
        f"<description>Headlines of host {index}</description><lastBuildDate>{last_modified}</lastBuildDate>",
    ]
    for item in items:
        parts.append(
            f"<item><title>{escape(item.title)}</title><link>{item.link}</link>"
            f'<guid isPermaLink="false">{item.guid}</guid>'
            f"<pubDate>{formatdate(item.published, usegmt=True)}</pubDate>"
            f"<description>{escape(item.summary)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


# -- worker process ---------------------------------------------------------------------------


class Worker:
    def __init__(self, feeds: FeedSet, latency: float) -> None:
        self.feeds = feeds
        self.latency = latency
        self.counts = {"200": 0, "304": 0, "404": 0}

    async def feed(self, request: web.Request) -> web.Response:
        try:
            i = int(request.match_info["i"])
            self.feeds.version[i]  # noqa: B018 - bounds check
        except (ValueError, IndexError):
            self.counts["404"] += 1
            await asyncio.sleep(self.latency)
            raise web.HTTPNotFound() from None
        await asyncio.sleep(self.latency)
        etag, modified = self.feeds.etag(i), self.feeds.last_modified(i)
        headers = {"ETag": etag, "Last-Modified": modified, "Cache-Control": "max-age=0"}
        inm, ims = request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since")
        if (inm is not None and inm == etag) or (inm is None and ims is not None and ims == modified):
            self.counts["304"] += 1
            return web.Response(status=304, headers=headers)
        self.counts["200"] += 1
        return web.Response(body=self.feeds.body(i), headers=headers, content_type="application/rss+xml")

    async def admin(self, request: web.Request) -> web.Response:
        command = await request.json()
        op = command.get("op")
        if op == "change":
            self.feeds.change([int(i) for i in command["feeds"]], float(command["now"]), int(command.get("count", NEW_ITEMS_PER_CHANGE)))
        elif op == "add_item":
            self.feeds.add_item(int(command["feed"]), str(command["title"]), str(command["summary"]), float(command["now"]))
        elif op == "stats":
            pass
        elif op == "reset_counts":
            self.counts = dict.fromkeys(self.counts, 0)
        else:
            raise web.HTTPBadRequest(text=f"unknown op {op!r}")
        return web.json_response({"ok": True, "counts": self.counts, "pid": os.getpid()})


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _serve(n: int, port: int, latency: float, seed: int, items: int, ready: Any) -> None:
    worker = Worker(FeedSet(n, seed=seed, items_per_feed=items), latency)
    app = web.Application()
    app.router.add_get("/h/{i}/feed.xml", worker.feed)
    app.router.add_post("/admin", worker.admin)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    for i in range(n):
        await web.SockSite(runner, _listen(feed_host(i), port)).start()
    admin_sock = _listen("127.0.0.1", 0)
    await web.SockSite(runner, admin_sock).start()
    ready.send(admin_sock.getsockname()[1])
    ready.close()
    await asyncio.Event().wait()


def _worker_main(n: int, port: int, latency: float, seed: int, items: int, ready: Any) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(n, port, latency, seed, items, ready))


# -- controller -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Farm:
    """Start with `with Farm(n) as farm:`; `farm.urls` are the feeds, `farm.change(0.05)` moves them."""

    def __init__(self, n: int, *, latency: float = 0.05, workers: int = 1, seed: int = 1, items_per_feed: int = ITEMS_PER_FEED) -> None:
        self.n, self.latency, self.workers, self.seed = n, latency, workers, seed
        self.items_per_feed = items_per_feed
        self.port = 0
        self.admin_ports: list[int] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.rng = random.Random(seed + 1000)
        self.generation = 0

    @property
    def urls(self) -> list[str]:
        return [feed_url(i, self.port) for i in range(self.n)]

    def start(self) -> Farm:
        ctx = multiprocessing.get_context("spawn")
        self.port = free_port()
        for _ in range(self.workers):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main, args=(self.n, self.port, self.latency, self.seed, self.items_per_feed, child), daemon=True)
            proc.start()
            child.close()
            if not parent.poll(120):
                raise RuntimeError("feed farm worker did not start within 120 s")
            self.admin_ports.append(int(parent.recv()))
            self.processes.append(proc)
        return self

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            proc.join(5)
        self.processes.clear()

    def __enter__(self) -> Farm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _broadcast(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        answers = []
        for port in self.admin_ports:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/admin", data=json.dumps(command).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append(json.loads(response.read()))
        return answers

    def change(self, fraction: float, count: int = NEW_ITEMS_PER_CHANGE) -> list[int]:
        """New items at the top of round(fraction × n) feeds chosen at random; returns them."""
        chosen = sorted(self.rng.sample(range(self.n), max(0, round(fraction * self.n)))) if fraction > 0 else []
        self.generation += 1
        if chosen:
            self._broadcast({"op": "change", "feeds": chosen, "now": time.time(), "count": count})
        return chosen

    def add_item(self, feed: int, title: str, summary: str) -> float:
        """Publish one item at the top of `feed`; returns time.monotonic() when every worker serves it."""
        self._broadcast({"op": "add_item", "feed": feed, "title": title, "summary": summary, "now": time.time()})
        return time.monotonic()

    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for answer in self._broadcast({"op": "stats"}):
            for key, value in answer["counts"].items():
                total[key] = total.get(key, 0) + value
        return total

    def reset_counts(self) -> None:
        self._broadcast({"op": "reset_counts"})

    def cpu_seconds(self) -> float:
        """User + system CPU of all farm workers so far (to show the farm is not the bottleneck)."""
        import psutil

        total = 0.0
        for proc in self.processes:
            if proc.pid is not None:
                times = psutil.Process(proc.pid).cpu_times()
                total += times.user + times.system
        return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.farm", description="Serve the feed farm until interrupted.")
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every response")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    with Farm(args.feeds, latency=args.latency, workers=args.workers) as farm:
        print(f"{args.feeds} feeds, e.g. {farm.urls[0]} … {farm.urls[-1]}; admin ports {farm.admin_ports}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
