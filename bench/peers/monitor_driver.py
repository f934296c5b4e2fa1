"""The monitor as a long-lived contender: `open_app` once, then `run_once` per cycle.

``python -m bench.peers.monitor_driver FEEDS_YAML``. This is the code path of
``monitor run --once`` (same composition root, same `run_once`, same SQLite store and relay),
minus the process start-up that a running service pays once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter

from bench.peers.driver import say, serve


async def main(config: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    try:
        from monitor.run.app import open_app
        from monitor.run.scheduler import run_once
    except Exception as exc:  # the monitor is being built next door: say so, don't crash the bench
        say({"error": f"cannot import the monitor: {type(exc).__name__}: {exc}"})
        return
    try:
        async with open_app(config) as app:

            async def cycle() -> dict[str, int]:
                reports = await run_once(app.runtime, relay=app.relay.deliver_due)
                return {
                    "outcomes": dict(Counter(r.outcome for r in reports)),
                    "parsed_feeds": sum(1 for r in reports if r.items),
                    "items": sum(r.items for r in reports),
                    "new_articles": sum(r.new_articles for r in reports),
                    "relevant": sum(r.relevant for r in reports),
                    "errors": [r.error for r in reports if r.outcome == "failed"][:3],
                }

            await serve(cycle)
    except Exception as exc:
        say({"error": f"cannot open the monitor: {type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
