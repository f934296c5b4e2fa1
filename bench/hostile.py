"""Hostile feeds (issue 12, cases 3-5): what one poll of a bad feed costs the monitor.

``python -m bench --only hostile`` (part of ``make bench``). Every figure is a median over
`runs` fresh processes; nothing here is asserted (tests do not time things).

- **Peak RSS of a poll of a 10 MB hostile feed** (target ≤ 300 MB), and the longest a
  `/healthz` request waited meanwhile (the parse runs in a worker thread): a child process opens the
  monitor (`open_app`, the code of `monitor run --once`), polls one source once and reports
  its peak RSS (VmHWM, imports included: ru_maxrss would include the bench parent's, which
  survives exec), wall and CPU seconds. Feeds: 115,000 minimal
  RSS items (9.7 MB), 1.4 M empty `<item/>` (9.8 MB), a JSON Feed of 3 M empty objects, and
  a tiny ordinary feed as the baseline of the same process.
- **/healthz during a feed with a 48 KB author field** (target: never delayed by more than
  1 s): a child runs the monitor with its HTTP server on and polls an RSS feed (on feedparser's
  path) of 20 items with 48 KB <author> fields, while a probe asks `/healthz` every 20 ms on
  the same event loop; the figure is the longest answer time during the poll. For scale, the
  child also reports what feedparser alone spends on one such entry, unbounded.
- **Article pages for 12 teaser items**: the default budget (20 pages, 30 s) and politeness
  (2 s between two pages of one host): 12 teasers on one host, the same on four hosts, and
  500 teasers on one host (bounded by the budget). Pages answer at once; the wall time is
  the poll's.

Servers are on loopback addresses only (127.0.0.1-4), started by this module.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import PYTHON, median, progress, run_timed

AUTHOR_CHARS = 48_000
TEASER = "Entity List: read more."
STORY = "The Bureau of Industry and Security added chip designers to the Entity List. " * 12


# ----------------------------------------------------------------------------- feeds


def rss_minimal_items(count: int) -> bytes:
    items = "".join(f"<item><title>t{n}</title><link>https://e.org/{n}</link><guid>{n}</guid></item>" for n in range(count))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def rss_empty_items(count: int) -> bytes:
    return b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>' + b"<item/>" * count + b"</channel></rss>"


def json_empty_objects(count: int) -> bytes:
    return b'{"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [' + b",".join([b"{}"] * count) + b"]}"


def rss_long_authors(entries: int, chars: int) -> bytes:
    """RSS whose items carry `chars`-long <author> fields, with an xml:base so the lxml fast
    path declines it and feedparser, whose author pattern is quadratic, reads it."""
    now = datetime.now(UTC)
    body = "".join(
        f"<item><title>Entity List news {n}</title><link>https://example.org/{n}</link>"
        f"<author>{'a' * chars}</author><pubDate>{format_datetime(now - timedelta(minutes=n))}</pubDate>"
        f"<description>{STORY}</description></item>"
        for n in range(entries)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel xml:base="https://example.org/"><title>t</title>'
        f"{body}</channel></rss>"
    ).encode()


def teaser_feed(links: list[str]) -> bytes:
    now = format_datetime(datetime.now(UTC))
    items = "".join(
        f"<item><title>Entity List news {n}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{now}</pubDate><description>{TEASER} {n}</description></item>"
        for n, link in enumerate(links)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


ARTICLE_PAGE = f"<html><body><article><p>{STORY}</p></article></body></html>".encode()


class Served:
    """Static bodies on one loopback address (stdlib server, a thread per request)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body, content_type = routes.get(self.path, (ARTICLE_PAGE, "text/html"))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.host, self.port = host, self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, path: str, body: bytes, content_type: str) -> str:
        self.routes[path] = (body, content_type)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(directory: Path, urls: list[str], *, server: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    sources = "".join(
        f"  - id: s{n}\n    name: Source {n}\n    url: {url}\n    allow_private: true\n" for n, url in enumerate(urls)
    )
    path = directory / "feeds.yaml"
    path.write_text(
        f"""store:
  url: sqlite:///{directory / 'monitor.db'}
server:
  enabled: {'true' if server else 'false'}
defaults:
  jitter: 0s
sources:
{sources}topics:
  - id: ai
    name: AI export controls
    rules:
      any: ["Entity List"]
""",
        encoding="utf-8",
    )
    return path


# ----------------------------------------------------------------------------- the parent


def run_hostile(*, runs: int, workdir: Path, quick: bool = False) -> dict[str, Any]:
    workdir = workdir / "hostile"
    result: dict[str, Any] = {"runs": runs, "memory": {}, "healthz": [], "fulltext": {}}
    served = [Served(f"127.0.0.{n}") for n in range(1, 5)]
    try:
        feeds = {
            "baseline (10-item feed)": (rss_minimal_items(10), "application/rss+xml"),
            "115,000 minimal RSS items": (rss_minimal_items(115_000), "application/rss+xml"),
            "1.4 M empty <item/>": (rss_empty_items(1_400_000), "application/rss+xml"),
            "3 M-object JSON Feed": (json_empty_objects(3_000_000), "application/feed+json"),
        }
        for name, (body, content_type) in feeds.items():
            url = served[0].add(f"/{abs(hash(name))}.feed", body, content_type)
            samples = []
            for run in range(runs):
                progress(f"hostile: peak RSS, {name} ({len(body) / 1e6:.1f} MB), run {run + 1}/{runs}")
                config = write_config(Path(tempfile.mkdtemp(dir=workdir.parent)), [url], server=True)
                samples.append(run_timed([PYTHON, "-m", "bench.hostile", "probe", str(config)], timeout=600))
            result["memory"][name] = {"mb": round(len(body) / 1e6, 1), "samples": samples}

        authors = rss_long_authors(20, AUTHOR_CHARS)
        url = served[0].add("/authors.xml", authors, "application/rss+xml")
        for run in range(runs):
            progress(f"hostile: /healthz during a feed with {AUTHOR_CHARS // 1000} KB authors, run {run + 1}/{runs}")
            config = write_config(Path(tempfile.mkdtemp(dir=workdir.parent)), [url], server=True)
            result["healthz"].append(run_timed([PYTHON, "-m", "bench.hostile", "probe-authors", str(config)], timeout=600))

        layouts = {"12 teasers, 1 host": (12, 1), "12 teasers, 4 hosts": (12, 4), "500 teasers, 1 host": (500, 1)}
        for name, (count, hosts) in layouts.items():
            links = [served[n % hosts].url(f"/article/{n}") for n in range(count)]
            url = served[0].add(f"/teasers-{count}-{hosts}.xml", teaser_feed(links), "application/rss+xml")
            samples = []
            for run in range(1 if quick else runs):
                progress(f"hostile: article pages, {name}, run {run + 1}")
                config = write_config(Path(tempfile.mkdtemp(dir=workdir.parent)), [url])
                samples.append(run_timed([PYTHON, "-m", "bench.hostile", "poll", str(config)], timeout=600))
            result["fulltext"][name] = samples
    finally:
        for server in served:
            server.close()
    return result


def summarize_hostile(raw: dict[str, Any]) -> dict[str, Any]:
    def med(samples: list[dict[str, Any]], key: str) -> float | None:
        return median([s[key] for s in samples if key in s and "error" not in s])

    memory = {
        name: {"mb": entry["mb"], "peak_rss_mb": med(entry["samples"], "peak_rss_mb"), "wall": med(entry["samples"], "poll_seconds"),
               "cpu": med(entry["samples"], "cpu"), "items": med(entry["samples"], "items"),
               "healthz_worst_ms": med(entry["samples"], "healthz_worst_ms")}
        for name, entry in raw.get("memory", {}).items()
    }
    healthz = {
        "worst_ms": med(raw.get("healthz", []), "healthz_worst_ms"),
        "poll_s": med(raw.get("healthz", []), "poll_seconds"),
        "probes": med(raw.get("healthz", []), "probes"),
        "feedparser_alone_s": med(raw.get("healthz", []), "feedparser_alone_s"),
    }
    fulltext = {
        name: {"wall": med(samples, "poll_seconds"), "notes": next((s.get("notes") for s in samples if "notes" in s), "")}
        for name, samples in raw.get("fulltext", {}).items()
    }
    return {"memory": memory, "healthz": healthz, "fulltext": fulltext}


# ----------------------------------------------------------------------------- the child


async def _poll(config: str) -> dict[str, Any]:
    from monitor.run.app import open_app
    from monitor.run.scheduler import run_once

    async with open_app(config) as app:
        started = time.monotonic()
        [report] = await run_once(app.runtime)
        out = {"poll_seconds": time.monotonic() - started, "items": report.items, "outcome": report.outcome,
               "notes": "; ".join(report.notes)}
        if report.outcome == "failed":
            out["poll_error"] = report.error
        return out


async def _healthz(config: str) -> dict[str, Any]:
    import aiohttp

    from monitor.ops.server import serve_if_enabled
    from monitor.run.app import open_app
    from monitor.run.scheduler import run_once

    class Ready:
        ready = True

    async with open_app(config) as app, serve_if_enabled(app, Ready(), port=0) as server:
        assert server is not None
        worst, probes = 0.0, 0
        poll = asyncio.ensure_future(run_once(app.runtime))
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while not poll.done():
                asked = time.monotonic()
                async with session.get(server.url + "/healthz") as response:
                    await response.read()
                worst = max(worst, time.monotonic() - asked)
                probes += 1
                await asyncio.sleep(0.02)
        [report] = await poll
        return {"healthz_worst_ms": 1000 * worst, "probes": probes, "poll_seconds": time.monotonic() - started,
                "items": report.items, "outcome": report.outcome}


def _feedparser_alone(chars: int) -> float:
    """CPU seconds feedparser spends on one entry with a `chars`-long author, unbounded."""
    import feedparser

    body = rss_long_authors(1, chars)
    started = time.process_time()
    feedparser.parse(body)
    return time.process_time() - started


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), which starts afresh at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(argv: list[str]) -> int:
    import logging

    logging.basicConfig(level=logging.ERROR)
    mode, config = argv
    cpu = time.process_time()
    runner: Callable[[str], Any] = _poll if mode == "poll" else _healthz
    out = asyncio.run(runner(config))
    if mode == "probe-authors":
        out["feedparser_alone_s"] = _feedparser_alone(AUTHOR_CHARS)
    out["cpu"] = time.process_time() - cpu
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(child(sys.argv[1:]))
