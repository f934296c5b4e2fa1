"""Analysis scaling: articles/s through normalise → relevance → dedup → cluster → corroborate →
decide (+ the store writes of that decision), with the store already holding S articles.

How the history of S articles is made (``build``, cached per size in ``$BENCH_CACHE``):

- Texts: the 2,954 UCI headlines and the 772 ECB+ articles (title + text). Copy ``v`` of a
  text (v ≥ 1) is perturbed — one title word swapped for a word of another headline, two
  adjacent words exchanged, the text's sentences rotated — and given its own outlet (one of
  500), URL, guid and content hash, so exact-duplicate checks never short-cut it.
- Dates: spread evenly over the 90-day retention, as a monitor that has run for 90 days at a
  steady rate holds them; so S/30 of them lie inside the 3-day cluster window. All rows are
  bulk-inserted as the monitor leaves them (signatures, origins, 4 articles to a
  development); developments last seen inside the window are open, older ones closed.
- The measurement (``measure``, a fresh process per size, pinned to one core) opens the
  store the way `monitor run` does (``build_runtime`` → ``Analyzer.restore``), then streams
  M new articles (fresh copies of the texts, dated "now") through the stages in batches of
  10 per source, timing each stage: ``normalize.normalize_items``, ``pipeline.with_topics``,
  ``pipeline.unseen`` (exact duplicates against the store), ``Analyzer.add`` (near-duplicates,
  clustering, corroboration) and ``pipeline.save_results`` (decide + one transaction).
  Peak RSS is the process's ru_maxrss (restore + measurement).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import PYTHON, corpus_file, progress, run_timed
from bench.config import write_config

OUTLETS = 500
BATCH = 10  # new articles per source per poll
SOURCES = 50  # feeds of the synthetic stream; outlet n publishes in feed n % SOURCES
DEV_SIZE = 4  # articles per development in the bulk-made history
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # the simulated clock of the measurement
GENERATOR_VERSION = 3  # bump when the history changes, to rebuild cached stores

# Broad news terms: most articles of both corpora match, so nearly every article goes all
# the way through the engine (the stages after relevance are the ones that scale).
NEWS_TERMS = [
    "says", "said", "to", "in", "of", "on", "for", "new", "after", "over", "with", "as",
    "at", "by", "from", "US", "the", "a", "is", "be", "will", "killed", "police", "report*",
]


@dataclass(frozen=True, slots=True)
class Text:
    title: str
    text: str
    outlet: str


def load_texts() -> list[Text]:
    texts = []
    for name in ("uci-headlines.jsonl", "ecbplus.jsonl"):
        with open(corpus_file("clusters", name), encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    if row.get("title"):
                        texts.append(Text(row["title"].strip(), (row.get("text") or "").strip(), (row.get("source") or "").removeprefix("www.")))
    return texts


class Synth:
    """Deterministic copies of the corpus texts: copy v of text i is always the same."""

    def __init__(self, texts: list[Text], seed: int = 7) -> None:
        self.texts = texts
        self.seed = seed
        self.words = [w for t in texts for w in t.title.split() if len(w) > 3 and w.isalpha()]

    def item(self, serial: int, published: datetime) -> tuple[int, Any]:
        """(outlet index, monitor Item) for the serial-th synthetic article."""
        from monitor.models import Item

        i, v = serial % len(self.texts), serial // len(self.texts)
        base = self.texts[i]
        rng = random.Random(serial * 7919 + self.seed)
        title, text = base.title, base.text
        if v:
            words = title.split()
            if len(words) > 3:
                words[rng.randrange(len(words))] = rng.choice(self.words)
                k = rng.randrange(len(words) - 1)
                words[k], words[k + 1] = words[k + 1], words[k]
            title = " ".join(words)
            sentences = text.split("\n")
            if len(sentences) > 2:
                cut = rng.randrange(1, len(sentences))
                text = "\n".join(sentences[cut:] + sentences[:cut])
        outlet = rng.randrange(OUTLETS)
        guid = f"s{serial}"
        return outlet, Item(
            title=title,
            link=f"http://outlet{outlet}.example/news/{serial}.html",
            guid=guid,
            summary=text[:600],
            content=text,
            published=published,
        )


# -- the measured chain -----------------------------------------------------------------------


class Chain:
    """The pipeline stages after parse, timed one by one, on a real runtime and store."""

    STAGES = ("normalize", "relevance", "exact_dedup", "engine", "decide_store")

    def __init__(self, config: Path) -> None:
        from monitor.config.load import load_settings
        from monitor.run.app import open_store
        from monitor.run.pipeline import build_runtime

        self.settings = load_settings(config)
        self.store = open_store(self.settings, config)
        self.clock = NOW
        started = time.perf_counter()
        self.rt = build_runtime(self.settings, self.store, None, clock=lambda: self.clock)  # type: ignore[arg-type]
        self.restore_seconds = time.perf_counter() - started
        self.sources = list(self.rt.sources.values())
        self.stage_seconds = dict.fromkeys(self.STAGES, 0.0)
        self.counts = {"articles": 0, "relevant": 0, "fresh": 0, "alerts": 0}

    def batch(self, outlet: int, items: list[Any], now: datetime) -> None:
        from monitor.ingest import normalize
        from monitor.models import SourceHealth
        from monitor.run import pipeline

        self.clock = now
        source = self.sources[outlet % len(self.sources)]
        t0 = time.perf_counter()
        found = normalize.normalize_items(
            items, source_id=source.id, outlet=source.outlet, owner=source.owner, tier=source.tier, fetched_at=now, now=now
        )
        t1 = time.perf_counter()
        relevant = [a for a in found if pipeline.with_topics(a, source, self.rt).topics]
        t2 = time.perf_counter()
        fresh = pipeline.unseen(relevant, self.rt)
        t3 = time.perf_counter()
        outcomes = [self.rt.analyzer.add(article, now) for article in fresh]
        t4 = time.perf_counter()
        health = SourceHealth(source_id=source.id, last_status=200, last_ok=now, last_attempt=now)
        alerts = pipeline.save_results(self.rt, source, health, now, outcomes)
        t5 = time.perf_counter()
        for stage, seconds in zip(self.STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            self.stage_seconds[stage] += seconds
        self.counts["articles"] += len(items)
        self.counts["relevant"] += len(relevant)
        self.counts["fresh"] += len(fresh)
        self.counts["alerts"] += int(alerts or 0)

    def close(self) -> None:
        self.store.close()


def stream(synth: Synth, first: int, count: int, start: datetime, end: datetime) -> Iterator[tuple[int, list[Any], datetime]]:
    """Polls of up to BATCH new items from one outlet, published evenly between start and end.

    The synthetic articles are spread over SOURCES feeds, so a window of BATCH × SOURCES
    consecutive articles gives each feed about BATCH of them: one poll each. (Until
    2026-11-22 the window was BATCH articles, which made polls of about one article.)
    """
    step = (end - start) / max(1, count)
    window = BATCH * SOURCES
    for k in range(0, count, window):
        published = start + step * k
        group: dict[int, list[Any]] = {}
        for j in range(k, min(k + window, count)):
            outlet, item = synth.item(first + j, published)
            group.setdefault(outlet % SOURCES, []).append(item)
        for outlet, items in group.items():
            for n in range(0, len(items), BATCH):
                yield outlet, items[n : n + BATCH], published


# -- history ----------------------------------------------------------------------------------


def bench_config(directory: Path) -> Path:
    urls = [f"http://outlet{i}.example/feed.xml" for i in range(SOURCES)]
    return write_config(directory, urls, topics=[{"id": "news", "name": "News", "rules": {"any": NEWS_TERMS}, "min_sources": 2}])


def build(size: int, directory: Path) -> dict[str, Any]:
    """Make the store of `size` articles in `directory` (see the module docstring)."""
    from monitor.config.load import load_settings
    from monitor.run.app import open_store

    started = time.perf_counter()
    config = bench_config(directory)
    settings = load_settings(config)
    retention, window = settings.store.retention, settings.cluster.window
    in_window = max(1, round(size * window / retention))
    old = size - in_window
    synth = Synth(load_texts())
    store = open_store(settings, config)
    try:
        _bulk_history(store, synth, size, NOW - retention, NOW - timedelta(hours=1), open_after=NOW - window)
    finally:
        store.close()
    return {"size": size, "old": old, "in_window": in_window, "seconds": time.perf_counter() - started}


def _bulk_history(store: Any, synth: Synth, count: int, start: datetime, end: datetime, *, open_after: datetime) -> None:
    """Rows as the monitor leaves them: articles with signatures and origins, 4 to a
    development; developments last seen inside the window stay open (their cluster features
    are rebuilt from their members at start, as after a restart), older ones are closed."""
    from monitor.models import Article, Development, DevelopmentState
    from monitor.store import schema
    from monitor.store.articles import _row_from_article
    from monitor.store.developments import _row_from_development
    from monitor.story import dedup

    signatures: dict[int, bytes | None] = {}
    step = (end - start) / max(1, count)
    chunk = 20_000
    for first in range(0, count, chunk):
        arts, devs = [], []
        for serial in range(first, min(first + chunk, count)):
            published = start + step * serial
            outlet, item = synth.item(serial, published)
            base = serial % len(synth.texts)
            if base not in signatures:
                mh = dedup.signature(f"{item.title}\n{item.content}")
                signatures[base] = dedup.signature_bytes(mh) if mh is not None else None
            dev_id = serial // DEV_SIZE + 1
            if serial % DEV_SIZE == 0:
                state = DevelopmentState.CORROBORATED if serial % 3 == 0 else DevelopmentState.SINGLE_SOURCE
                if published < open_after:
                    state = DevelopmentState.CLOSED
                devs.append(_row_from_development(Development(
                    topic="news", headline=item.title, first_seen=published, last_seen=published + step * (DEV_SIZE - 1),
                    state=state, independent=2 if state is DevelopmentState.CORROBORATED else 1,
                    key_terms=tuple(w.lower() for w in item.title.split()[:4]), lead=item.summary[:200], id=dev_id,
                )))
            text = item.content  # corpus text is plain already
            arts.append(_row_from_article(Article(
                source_id=f"s{outlet % SOURCES:05d}", outlet=f"outlet{outlet}.example", url=item.link, canonical_url=item.link,
                title=item.title, summary=text[:600], text=text, published=published, fetched=published, guid=item.guid,
                content_hash=hashlib.sha256(f"{item.title}\n{text}".encode()).hexdigest(),
                signature=signatures[base], origin=f"outlet:outlet{outlet}.example", development_id=dev_id, id=serial + 1,
            )))
        with store.transaction() as conn:
            conn.execute(schema.development.insert(), devs)
            conn.execute(schema.article.insert(), arts)


# -- one size, in its own process ---------------------------------------------------------------


def measure(directory: Path, size: int, count: int, run: int = 0) -> dict[str, Any]:
    config = directory / "feeds.yaml"
    synth = Synth(load_texts())
    chain = Chain(config)
    rss_after_restore = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    try:
        # Serials no earlier run used (measured articles stay in the cached store): copies no
        # store row has, dated "now". Microseconds since the epoch never repeat between runs.
        first = 10**9 + time.time_ns() // 1000
        for outlet, items, published in stream(synth, first, count, NOW - timedelta(minutes=30), NOW):
            chain.batch(outlet, items, published)
    finally:
        chain.close()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "size": size,
        "articles": chain.counts["articles"],
        "counts": chain.counts,
        "wall": wall,
        "cpu": cpu,
        "articles_per_s": chain.counts["articles"] / wall,
        "ms_per_article": 1000 * wall / chain.counts["articles"],
        "stage_seconds": chain.stage_seconds,
        "restore_seconds": chain.restore_seconds,
        "peak_rss_after_restore": rss_after_restore,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE", "/tmp/exportwatch-bench-cache"))


def run_analysis(sizes: list[int], count: int, runs: int) -> dict[str, Any]:
    """Build (or reuse) each size's store, then measure each size `runs` times, alternating."""
    results: dict[str, Any] = {"sizes": sizes, "articles_per_run": count, "builds": [], "runs": []}
    dirs = {}
    for size in sizes:
        directory = cache_dir() / f"analysis-v{GENERATOR_VERSION}-{size}"
        dirs[size] = directory
        marker = directory / "built.json"
        if marker.exists():
            results["builds"].append({**json.loads(marker.read_text()), "cached": True})
            continue
        progress(f"analysis: building a store of {size:,} articles (cached for later runs)")
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        answer = run_timed([PYTHON, "-m", "bench.analysis", "build", str(directory), str(size)], timeout=3600)
        if "error" in answer:
            results["builds"].append({"size": size, "error": answer["error"]})
            progress(f"analysis: build of {size:,} failed: {answer['error']}")
            continue
        marker.write_text(json.dumps(answer))
        results["builds"].append(answer)
    for run in range(runs):
        for size in sizes if run % 2 == 0 else list(reversed(sizes)):
            if not (dirs[size] / "built.json").exists():
                continue
            progress(f"analysis: run {run + 1}/{runs}, {count:,} articles on a store of {size:,}")
            # A copy per measurement would cost minutes at 1M; the measured articles are new
            # serials each run, so reusing the store only makes it a little bigger.
            answer = run_timed(
                [PYTHON, "-m", "bench.analysis", "measure", str(dirs[size]), str(size), str(count), str(run)], timeout=3600
            )
            answer["run"] = run
            results["runs"].append(answer)
            if "error" in answer:
                progress(f"analysis:   failed: {answer['error']}")
            else:
                progress(f"analysis:   {answer['articles_per_s']:.0f} articles/s, peak RSS {answer['peak_rss'] / 1e6:.0f} MB")
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("directory", type=Path)
    b.add_argument("size", type=int)
    m = sub.add_parser("measure")
    m.add_argument("directory", type=Path)
    m.add_argument("size", type=int)
    m.add_argument("count", type=int)
    m.add_argument("run", type=int, nargs="?", default=0)
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    if args.command == "build":
        print(json.dumps(build(args.size, args.directory)))
        return 0
    # Single-threaded: one core's worth of work. Not pinned with taskset: on a shared machine a
    # pinned process waits for its one core while the other is idle; CPU seconds are reported
    # next to wall time for that reason.
    global NOW
    NOW = NOW + timedelta(hours=2 * args.run)  # each run's articles come later than the last's
    print(json.dumps(measure(args.directory, args.size, args.count, args.run)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
