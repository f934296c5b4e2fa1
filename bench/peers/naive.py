"""The loop most hand-written bots use: ``feedparser.parse(url)`` per feed, one after another.

It keeps no validators, so every cycle downloads and parses every feed in full (that is the
point of the comparison). It remembers nothing between runs either: a cron job.
``python -m bench.peers.naive URLS_FILE`` prints one JSON line of counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import feedparser


def main(path: str) -> None:
    urls = Path(path).read_text(encoding="utf-8").split()
    counts = {"changed": 0, "failed": 0, "items": 0}
    for url in urls:
        parsed = feedparser.parse(url)
        if parsed.get("status") == 200:
            counts["changed"] += 1
            counts["items"] += len(parsed.entries)
        else:
            counts["failed"] += 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1])
