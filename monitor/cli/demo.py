"""`monitor demo`: the whole path in seconds, with no internet and no Slack.

A local HTTP server on 127.0.0.1 serves the invented feeds of `monitor.cli.demo_feeds`; the
monitor runs two cycles against them with a temporary store and console alerts:
cycle 1 finds the development (a wire story, a paper's reprint of it, an independent outlet)
and posts the parent alert; cycle 2 adds the agency's own press release, which updates the
alert and adds a thread reply.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from html import escape
from pathlib import Path

from aiohttp import web

from monitor.cli import demo_feeds
from monitor.clock import utc_now
from monitor.ops.server import local_site


class DemoServer:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.cycle = 1
        self.base = ""

    async def feed(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "broken":
            return web.Response(body=demo_feeds.BROKEN_FEED, content_type="application/rss+xml")
        items = demo_feeds.FEEDS.get(name)
        if items is None:
            raise web.HTTPNotFound()
        outlet = demo_feeds.OUTLETS[name][0]
        body = demo_feeds.rss(outlet, f"{self.base}/{name}", items, self.now, self.cycle)
        return web.Response(body=body, content_type="application/rss+xml")

    async def page(self, request: web.Request) -> web.Response:
        """Article pages, for items whose feed gives only a teaser."""
        for name, items in demo_feeds.FEEDS.items():
            for item in items:
                if f"/{name}{item.link}" == request.path:
                    html = (
                        f"<html><head><title>{escape(item.title)}</title></head><body><article>"
                        f"<h1>{escape(item.title)}</h1><p>{escape(item.summary)}</p></article></body></html>"
                    )
                    return web.Response(text=html, content_type="text/html")
        raise web.HTTPNotFound()


@contextlib.asynccontextmanager
async def serve(now: datetime) -> AsyncIterator[DemoServer]:
    state = DemoServer(now)
    app = web.Application()
    app.router.add_get("/feeds/{name}.xml", state.feed)
    app.router.add_get("/{tail:.*}", state.page)
    async with local_site(app) as state.base:
        yield state


def say(text: str = "") -> None:
    print(text, flush=True)


async def run_demo(*, keep: str | None = None) -> int:
    if keep:
        workdir = Path(keep)
        workdir.mkdir(parents=True, exist_ok=True)
        return await _demo_in(workdir, keep=True)
    with tempfile.TemporaryDirectory(prefix="monitor-demo-") as scratch:
        return await _demo_in(Path(scratch), keep=False)


async def _demo_in(workdir: Path, *, keep: bool) -> int:
    from monitor.ops.status import print_developments
    from monitor.run.app import deliver_all, open_app, release_holds
    from monitor.run.scheduler import run_once

    now = utc_now()
    async with serve(now) as server:
        config = workdir / "feeds.yaml"
        config.write_text(
            demo_feeds.DEMO_CONFIG.format(store=(workdir / "demo.db").as_posix(), base=server.base)
        )
        where = f"store and feeds.yaml in {workdir}" if keep else "a temporary store (use --keep DIR to keep it)"
        say(f"Demo: sample feeds on {server.base}, {where}\n")
        async with open_app(config, clock=lambda: now) as app:
            for cycle, title in (
                (
                    1,
                    "Cycle 1 — a wire story, a paper reprinting it, an independent outlet, unrelated items, a broken feed",
                ),
                (2, "Cycle 2 — the agency publishes its own press release"),
            ):
                server.cycle = cycle
                say(f"━━ {title}")
                reports = await run_once(app.runtime)
                release_holds(app)
                await deliver_all(app)
                for report in reports:
                    detail = (
                        report.error
                        or f"{report.items} items, {report.relevant} relevant, {report.new_articles} new"
                    )
                    say(f"   {report.source_id:<16} {report.outcome:<9} {detail}")
                    for warning in () if report.error else report.warnings:
                        say(f"   {'':<16} {'':<9} warning: {warning}")
                say()
                print_developments(
                    app.store, now - app.settings.cluster.storyline_window, out=sys.stdout, settings=app.settings
                )
                say()
    say(
        "What next: `monitor check` validates your feeds.yaml; `make run` starts the monitor on it."
    )
    if keep:
        say(
            f"This demo's store is kept: `monitor --config {workdir / 'feeds.yaml'} digest --since 24h`."
        )
    return 0
