"""The floor: what a perfect poller could not beat on this machine.

Same concurrency as the monitor (global and per-host limits from the same settings), one
aiohttp session, conditional GETs with the validators of the previous answer, and an lxml
parse of changed bodies only — no normalising, no store, no analysis. Run by the bench as a
long-lived contender: ``python -m bench.peers.floor URLS_FILE CONCURRENCY PER_HOST``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from lxml import etree

from bench.peers.driver import serve


class Floor:
    def __init__(self, urls: list[str], concurrency: int, per_host: int) -> None:
        self.urls = urls
        self.concurrency = concurrency
        self.per_host = per_host
        self.validators: dict[str, tuple[str | None, str | None]] = {}
        self.session: aiohttp.ClientSession | None = None

    async def cycle(self) -> dict[str, int]:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0))
        total = asyncio.Semaphore(self.concurrency)
        hosts: dict[str, asyncio.Semaphore] = {}
        counts = {"changed": 0, "unchanged": 0, "failed": 0, "items": 0}

        async def one(url: str) -> None:
            host = urlsplit(url).hostname or ""
            etag, modified = self.validators.get(url, (None, None))
            headers = {k: v for k, v in (("If-None-Match", etag), ("If-Modified-Since", modified)) if v}
            assert self.session is not None
            async with hosts.setdefault(host, asyncio.Semaphore(self.per_host)), total:
                try:
                    async with self.session.get(url, headers=headers) as response:
                        body = await response.read() if response.status == 200 else b""
                        status = response.status
                        validators = (response.headers.get("ETag"), response.headers.get("Last-Modified"))
                except aiohttp.ClientError:
                    counts["failed"] += 1
                    return
            if status == 304:
                counts["unchanged"] += 1
                return
            if status != 200:
                counts["failed"] += 1
                return
            self.validators[url] = validators
            counts["changed"] += 1
            counts["items"] += len(etree.fromstring(body).findall("./channel/item"))

        await asyncio.gather(*(one(u) for u in self.urls))
        return counts


async def main(argv: list[str]) -> None:
    urls = Path(argv[0]).read_text(encoding="utf-8").split()
    floor = Floor(urls, int(argv[1]), int(argv[2]))
    try:
        await serve(floor.cycle)
    finally:
        if floor.session is not None:
            await floor.session.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
