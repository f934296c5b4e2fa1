"""``python -m bench [--quick]`` (``make bench [QUICK=1]``): every benchmark, one table, one JSON.

Progress goes to stderr; the table to stdout; every raw run, the machine and the package
versions to ``bench/results/latest.json`` (``--quick`` writes ``quick.json`` instead, so a
quick check never overwrites the full figures). See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, progress

RESULTS_DIR = ROOT / "bench" / "results"
ALL_PARTS = ("poll", "analysis", "alerts", "hostile", "distributed")
PACKAGES = ("aiohttp", "feedparser", "lxml", "SQLAlchemy", "datasketch", "rss2email", "psutil", "slack-sdk", "APScheduler", "pydantic", "celery", "psycopg")


@dataclass(frozen=True)
class Plan:
    feeds: int
    poll_runs: int
    sizes: tuple[int, ...]
    analysis_articles: int
    analysis_runs: int
    interval: float
    events: int
    hostile_runs: int = 3
    distributed_runs: int = 3


FULL = Plan(feeds=2000, poll_runs=3, sizes=(10_000, 100_000, 1_000_000), analysis_articles=1000, analysis_runs=3, interval=10, events=8)
QUICK = Plan(feeds=20, poll_runs=1, sizes=(1_000, 3_000), analysis_articles=40, analysis_runs=1, interval=5, events=2, hostile_runs=1, distributed_runs=1)


def machine() -> dict[str, Any]:
    import os

    import psutil

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "load_average_at_start": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
    }


def _stop_on_sigterm() -> None:
    """`timeout`, CI or an operator's kill: unwind, so every part stops the processes it
    started (they run in sessions of their own) and drops its schemas and queues."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the benchmarks and print one table.")
    parser.add_argument("--quick", action="store_true", help="reduced sizes, a few minutes")
    parser.add_argument("--only", choices=ALL_PARTS, action="append", help="run only these parts (repeatable)")
    parser.add_argument("--feeds", type=int, help="override the number of feeds of the poll cycle")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    plan = QUICK if args.quick else FULL
    if args.feeds:
        plan = Plan(**{**plan.__dict__, "feeds": args.feeds})
    parts = set(args.only or ALL_PARTS)

    from bench.alert_latency import run_alert_latency
    from bench.analysis import run_analysis
    from bench.distributed import run_distributed
    from bench.hostile import run_hostile
    from bench.poll import ChangeDetection, Floor, Monitor, Naive, Rss2Email, run_poll
    from bench.report import render_table, summarize

    started = time.monotonic()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "plan": plan.__dict__,
        "machine": machine(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="exportwatch-bench-"))
    try:
        alert_thread: threading.Thread | None = None
        if "alerts" in parts and args.quick:
            # Quick mode only: the alert check mostly waits for poll intervals, so it runs
            # alongside the analysis part to stay under a minute (the full run keeps them apart).
            def alerts_job() -> None:
                result["alerts"] = run_alert_latency(interval=plan.interval, events=plan.events, workdir=workdir)

            alert_thread = threading.Thread(target=alerts_job, daemon=True)
        if "poll" in parts:
            result["poll"] = run_poll(
                feeds=plan.feeds, runs=plan.poll_runs, latency=0.05, farm_workers=1, workdir=workdir,
                contenders=[Monitor(), Floor(), Rss2Email(), ChangeDetection(), Naive()],
            )
        if alert_thread is not None:
            alert_thread.start()
        if "analysis" in parts:
            result["analysis"] = run_analysis(list(plan.sizes), plan.analysis_articles, plan.analysis_runs)
        if alert_thread is not None:
            alert_thread.join()
        elif "alerts" in parts:
            result["alerts"] = run_alert_latency(interval=plan.interval, events=plan.events, workdir=workdir)
        if "hostile" in parts:
            result["hostile"] = run_hostile(runs=plan.hostile_runs, workdir=workdir, quick=args.quick)
        if "distributed" in parts:
            result["distributed"] = run_distributed(feeds=plan.feeds, runs=plan.distributed_runs, latency=0.05, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["seconds"] = time.monotonic() - started
    result["summary"] = summarize(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # Only a full run of every part replaces latest.json (the README's table comes from it).
    partial = args.only is not None or args.feeds is not None
    # A run of some parts keeps its own file (e.g. distributed.json), so one part's run never
    # replaces another's figures; a changed size is a trial, kept in partial.json.
    named = "-".join(p for p in ALL_PARTS if p in parts) + ".json" if args.only and not args.feeds else "partial.json"
    out = RESULTS_DIR / ("quick.json" if args.quick else named if partial else "latest.json")
    out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(render_table(result))
    progress(f"done in {result['seconds']:.0f} s; raw runs in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
