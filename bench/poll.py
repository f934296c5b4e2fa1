"""Poll-cycle benchmark: the monitor, rss2email, a naive feedparser loop and the floor, against the farm.

Each contender starts once with empty state (store, data file) and keeps it. Cycles, with
the contenders alternating in an order that rotates from run to run:

- ``first`` (run 1 only): every feed new (N × 50 items);
- ``steady`` (every run): after the farm changed 5 % of the feeds (3 new items on top of each);
- ``unchanged`` (every run; monitor and floor): nothing changed since their last cycle. Its
  CPU / N is the CPU per unchanged feed.

The naive loop is measured once: it keeps no validators, so every one of its cycles is the
same full download and parse of N feeds (100+ s at N = 2,000) — its steady cycle *is* its
first. changedetection.io (no conditional GETs either) does its first and steady cycle in run
1 only. rss2email's steady cycle is repeated like the monitor's.

Every cycle records wall time, CPU seconds of the contender (its own getrusage for long-lived
contenders, cross-checked with psutil over the process tree; wait4 rusage for one-shot
processes), and the farm's own CPU over that cycle: farm CPU / wall is how busy the farm was
(1.0 = one core saturated), the check that the farm is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ChildCPU, LongLived, progress, run_timed
from bench.config import write_config
from bench.farm import Farm
from bench.peers import changedetection, rss2email

CYCLE_TIMEOUT = 3600.0
STEADY_FRACTION = 0.05


class Contender:
    """One poller; it keeps its state (store, validators, seen items) from cycle to cycle."""

    name = ""
    kinds = ("first", "steady", "unchanged")
    repeat = True  # measured in every run (else only in the first)

    def start(self, run_dir: Path, urls: list[str], urls_file: Path) -> None: ...

    def cycle(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None: ...


class _LongLivedContender(Contender):
    process: LongLived | None = None

    def cycle(self) -> dict[str, Any]:
        assert self.process is not None
        return self.process.cycle(CYCLE_TIMEOUT)

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None


class Monitor(_LongLivedContender):
    name = "monitor"

    def start(self, run_dir: Path, urls: list[str], urls_file: Path) -> None:
        config = write_config(run_dir / "monitor", urls)
        self.process = LongLived([PYTHON, "-m", "bench.peers.monitor_driver", str(config)], cwd=run_dir / "monitor")


class Floor(_LongLivedContender):
    name = "floor"

    def __init__(self, concurrency: int = 50, per_host: int = 4) -> None:
        self.concurrency, self.per_host = concurrency, per_host

    def start(self, run_dir: Path, urls: list[str], urls_file: Path) -> None:
        self.process = LongLived([PYTHON, "-m", "bench.peers.floor", str(urls_file), str(self.concurrency), str(self.per_host)])


class _CommandContender(Contender):
    """A poller that runs one command per cycle; its CPU is its child processes' CPU."""

    command: list[str]

    def cycle(self) -> dict[str, Any]:
        cpu = ChildCPU()
        result = run_timed(self.command, timeout=CYCLE_TIMEOUT)
        result["cpu"] = cpu.elapsed()
        return result


class Naive(_CommandContender):
    name = "naive"
    kinds = ("first",)  # every naive cycle is the same full download and parse of N feeds:
    repeat = False  # its steady figure is its first cycle (the report says so)

    def start(self, run_dir: Path, urls: list[str], urls_file: Path) -> None:
        self.command = [PYTHON, "-m", "bench.peers.naive", str(urls_file)]


class Rss2Email(_CommandContender):
    name = "rss2email"
    kinds = ("first", "steady")

    def start(self, run_dir: Path, urls: list[str], urls_file: Path) -> None:
        self.command = rss2email.prepare(run_dir / "rss2email", urls)


class ChangeDetection(Contender):
    name = "changedetection.io"
    kinds = ("first", "steady")
    repeat = False  # 100+ s a cycle at N = 2,000 and no conditional GETs: measured in run 1 only

    def start(self, run_dir: Path, urls: list[str], urls_file: Path) -> None:
        self.cycles = 0
        self.error: str | None = None
        try:
            self.first, self.again = changedetection.commands(run_dir / "changedetection", urls)
        except FileNotFoundError as exc:
            self.error = str(exc)

    def cycle(self) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        command = self.first if self.cycles == 0 else self.again
        self.cycles += 1
        cpu = ChildCPU()
        result = run_timed(command, timeout=CYCLE_TIMEOUT, env=changedetection.environment())
        result["cpu"] = cpu.elapsed()
        return result


def farm_check(farm: Farm, concurrency: int) -> dict[str, Any]:
    """Unconditional GETs of every feed from a trivial aiohttp client: is the farm keeping up?"""
    import aiohttp

    async def load() -> float:
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def one(url: str) -> None:
                async with gate, session.get(url) as response:
                    await response.read()

            started = time.monotonic()
            await asyncio.gather(*(one(u) for u in farm.urls))
            return time.monotonic() - started

    cpu = farm.cpu_seconds()
    wall = asyncio.run(load())
    farm_cpu = farm.cpu_seconds() - cpu
    ideal = farm.n / concurrency * farm.latency
    return {"requests": farm.n, "wall": wall, "ideal": ideal, "farm_cpu": farm_cpu, "farm_busy": farm_cpu / wall}


def _measure(farm: Farm, contender: Contender, run: int, kind: str, feeds: int, changed: int) -> dict[str, Any]:
    cpu, counts_before = farm.cpu_seconds(), farm.counts()
    result = contender.cycle()
    farm_cpu = farm.cpu_seconds() - cpu
    counts = {k: v - counts_before.get(k, 0) for k, v in farm.counts().items()}
    wall = result.get("wall") or 0.0
    record = {
        "run": run, "kind": kind, "contender": contender.name, "feeds": feeds,
        "changed_feeds": changed if kind == "steady" else (feeds if kind == "first" else 0),
        "farm_cpu": farm_cpu, "farm_busy": farm_cpu / wall if wall else None, "farm_responses": counts,
        **result,
    }
    if "error" in result:
        progress(f"poll:   {contender.name} {kind}: {result['error']}")
    else:
        progress(f"poll:   {wall:.2f} s wall, {result.get('cpu', 0):.2f} s CPU, farm busy {record['farm_busy'] or 0:.0%}")
    return record


def parse_costs(farm: Farm, samples: int = 20) -> dict[str, Any]:
    """Milliseconds to parse one farm feed (50 items): the monitor's parser, bare feedparser, lxml."""
    import urllib.request

    import feedparser
    from lxml import etree

    bodies = []
    for url in farm.urls[:samples]:
        with urllib.request.urlopen(url, timeout=30) as response:
            bodies.append(response.read())
    out: dict[str, Any] = {"samples": len(bodies), "bytes": sum(map(len, bodies)) / len(bodies)}
    parsers: dict[str, Any] = {
        "feedparser": lambda b: feedparser.parse(b),
        "lxml": lambda b: etree.fromstring(b).findall("./channel/item"),
    }
    try:
        from monitor.ingest.parse.feeds import parse_feed

        parsers["monitor"] = lambda b: parse_feed(b, url="http://farm.example/feed.xml", content_type="application/rss+xml")
    except Exception as exc:  # reported, the rest still runs
        out["monitor_error"] = str(exc)
    for name, fn in parsers.items():
        started = time.process_time()
        for body in bodies:
            fn(body)
        out[f"{name}_ms"] = 1000 * (time.process_time() - started) / len(bodies)
    return out


def run_poll(
    *,
    feeds: int,
    runs: int,
    latency: float,
    farm_workers: int,
    workdir: Path,
    contenders: list[Contender],
) -> dict[str, Any]:
    raw: list[dict[str, Any]] = []
    progress(f"poll: starting the farm ({feeds} feeds, {latency * 1000:g} ms latency, {farm_workers} worker(s))")
    with Farm(feeds, latency=latency, workers=farm_workers) as farm:
        urls = farm.urls
        urls_file = workdir / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
        checks = []
        for _ in range(2):  # the first pass renders the bodies; the second is the steady check
            checks.append(farm_check(farm, 50))
        parse = parse_costs(farm)
        progress(f"poll: farm check {checks[-1]['wall']:.2f} s for {feeds} GETs (ideal {checks[-1]['ideal']:.2f} s), farm busy {checks[-1]['farm_busy']:.0%}")
        run_dir = workdir / "state"
        for contender in contenders:
            contender.start(run_dir, urls, urls_file)
        try:
            for run in range(runs):
                order = contenders[run % len(contenders):] + contenders[: run % len(contenders)]
                kinds = ("first", "steady", "unchanged") if run == 0 else ("steady", "unchanged")
                for kind in kinds:
                    changed = farm.change(STEADY_FRACTION) if kind == "steady" else []
                    for contender in order:
                        if kind not in contender.kinds or (run > 0 and not contender.repeat):
                            continue
                        progress(f"poll: run {run + 1}/{runs}, {kind} cycle, {contender.name}")
                        raw.append(_measure(farm, contender, run, kind, feeds, len(changed)))
        finally:
            for contender in contenders:
                contender.close()
    return {"feeds": feeds, "runs": runs, "latency": latency, "farm_workers": farm_workers, "farm_check": checks, "parse": parse, "cycles": raw}
