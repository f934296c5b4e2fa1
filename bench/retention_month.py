"""A month of the feed farm's volume through the store, with the daily retention job: does the
SQLite file reach a plateau, and at what size?

    python -m bench.retention_month                       # 2,000 feeds × 50 items/day × 30 days
    python -m bench.retention_month --feeds 200 --days 10 # quicker
    python -m bench.retention_month --json out.json

Each simulated day inserts that day's articles through the store API
(`monitor.store.articles.insert_articles`, `developments.upsert_development`,
`outbox.enqueue`) in per-batch transactions as the pipeline does, then runs
`monitor.run.retention.prune` as the 03:17 job would, and records the size of `monitor.db` and
its WAL.

Every item is stored as if it were relevant, which is the worst case: the monitor stores only
articles that match a topic. Sizes are deliberately on the large side of what the farm serves:
a 500-character summary, a 2,000-character full text, a 64-value MinHash signature, a topic
match with its explanation. One development per `--articles-per-development` articles carries
clustering features (~2 KB, as `monitor.story.cluster` stores them), one alert per five developments
carries a payload. Text is random words, so nothing is smaller than real text would be.

Developments and alerts are kept forever by design (their summaries outlive the articles), so
they grow linearly; the report gives their share separately from the articles'.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.config.settings import Settings
from monitor.models import (
    Alert,
    AlertKind,
    Article,
    Development,
    DevelopmentState,
    NewPayload,
    TopicMatch,
)
from monitor.run.retention import COMPACT_MIN_FREE_BYTES, prune
from monitor.store import Store, articles, developments, outbox
from monitor.store.maintenance import checkpoint_wal

START = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 2_000  # articles per transaction (a busy minute of polls)


@dataclass
class Day:
    day: int
    articles: int  # rows in `article`
    full: int  # rows still with text
    developments: int
    alerts: int
    pruned: int
    forgotten: int
    db_mb: float  # monitor.db
    wal_mb: float  # monitor.db-wal after the day's retention run
    free_mb: float  # free pages inside monitor.db (reused by new rows)
    compacted: bool
    insert_s: float
    prune_s: float


class Words:
    """Random words from a fixed vocabulary: text of realistic length that compresses badly."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.vocab = [
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))) for _ in range(5_000)
        ]

    def text(self, chars: int) -> str:
        out: list[str] = []
        size = 0
        while size < chars:
            word = self.rng.choice(self.vocab)
            out.append(word)
            size += len(word) + 1
        return " ".join(out)[:chars]

    def centroid(self, terms: int) -> dict[str, float]:
        return {self.rng.choice(self.vocab): round(self.rng.random(), 4) for _ in range(terms)}


def simulate(args: argparse.Namespace, workdir: Path) -> list[Day]:
    path = workdir / "monitor.db"
    store = Store.open(f"sqlite:///{path}")
    store.upgrade()
    settings = Settings.model_validate(
        {"store": {"retention": args.retention, "forget_after": args.forget_after}}
    )
    rng = random.Random(7)
    words = Words(rng)
    per_day = args.feeds * args.items_per_day
    next_article, next_dev, alert_count = 1, 1, 0
    days: list[Day] = []
    try:
        for day in range(1, args.days + 1):
            day_start = START + timedelta(days=day - 1)
            started = time.perf_counter()
            made = 0
            while made < per_day:
                size = min(BATCH, per_day - made)
                batch, devs = make_batch(words, rng, day_start, next_article, next_dev, size, args)
                with store.transaction() as conn:
                    articles.insert_articles(conn, batch)
                    for dev, features in devs:
                        developments.upsert_development(conn, dev, features)
                        if dev.id is not None and dev.id % 5 == 0:
                            alert_count += 1
                            outbox.enqueue(conn, make_alert(words, dev, alert_count))
                next_article += size
                next_dev += len(devs)
                made += size
            inserted = time.perf_counter() - started
            now = day_start + timedelta(days=1, hours=3, minutes=17)
            started = time.perf_counter()
            report = prune(store, settings, now, compact_min_free_bytes=int(args.compact_min_mb * 1e6))
            checkpoint_wal(store)
            pruned_s = time.perf_counter() - started
            days.append(measure(store, path, day, report, inserted, pruned_s))
            print(format_day(days[-1]), flush=True)
    finally:
        store.close()
    return days


def make_batch(
    words: Words,
    rng: random.Random,
    day_start: datetime,
    first_id: int,
    first_dev: int,
    size: int,
    args: argparse.Namespace,
) -> tuple[list[Article], list[tuple[Development, dict[str, object]]]]:
    batch: list[Article] = []
    devs: list[tuple[Development, dict[str, object]]] = []
    dev_id = first_dev - 1
    for offset in range(size):
        n = first_id + offset
        published = day_start + timedelta(seconds=rng.uniform(0, 86_400))
        if offset % args.articles_per_development == 0:
            dev_id += 1
            devs.append(make_development(words, dev_id, published))
        feed = rng.randrange(args.feeds)
        batch.append(
            Article(
                id=n,
                source_id=f"farm-{feed}",
                outlet=f"Outlet {feed}",
                url=f"http://127.0.{1 + feed // 250}.{1 + feed % 250}/h/{feed}/item/{n}?utm_source=rss",
                canonical_url=f"http://127.0.{1 + feed // 250}.{1 + feed % 250}/h/{feed}/item/{n}",
                title=words.text(rng.randint(50, 110)),
                summary=words.text(args.summary_chars),
                text=words.text(args.text_chars),
                published=published,
                fetched=published + timedelta(minutes=rng.randint(1, 30)),
                guid=f"urn:farm:{feed}:{n}",
                content_hash=f"{rng.getrandbits(256):064x}",
                signature=rng.randbytes(64 * 8),
                origin=f"outlet:outlet{feed}",
                topics=(TopicMatch("ai-export-controls", 3.0, "'export controls' in title; 'BIS' in summary"),),
                development_id=dev_id,
            )
        )
    return batch, devs


def make_development(words: Words, dev_id: int, seen: datetime) -> tuple[Development, dict[str, object]]:
    dev = Development(
        id=dev_id,
        topic="ai-export-controls",
        headline=words.text(90),
        lead=words.text(300),
        first_seen=seen,
        last_seen=seen + timedelta(hours=6),
        state=DevelopmentState.CORROBORATED,
        independent=3,
        key_terms=tuple(words.text(60).split()[:8]),
        decision_reason="3 independent: Reuters (+4 reprints), Politico, BIS press release",
    )
    features: dict[str, object] = {
        "topic": dev.topic,
        "headline": dev.headline,
        "headline_score": 1.0,
        "first_seen": dev.first_seen.isoformat(),
        "last_seen": dev.last_seen.isoformat(),
        "size": 5,
        "centroid": words.centroid(60),
        "title_centroid": words.centroid(12),
        "name_centroid": words.centroid(6),
        "numbers": {"140": 1.0},
        "years": {"2026": 1.0},
        "recent": [],
    }
    return dev, features


def make_alert(words: Words, dev: Development, n: int) -> Alert:
    return Alert(
        AlertKind.NEW,
        "#export-controls",
        f"new:{dev.id}:#export-controls",
        development_id=dev.id,
        # A long reason stands in for the text a row carries, so the alert table has a realistic size.
        payload=NewPayload(
            reason=f"{dev.headline}: {words.text(1_200)}", independent=2, impact=5, oncall=False, article_ids=()
        ),
        created=dev.last_seen,
    )


def measure(store: Store, path: Path, day: int, report, inserted: float, pruned: float) -> Day:
    from sqlalchemy import func, select

    from monitor.store.schema import alert, article, development

    with store.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(article)).scalar() or 0
        full = conn.execute(select(func.count()).select_from(article).where(article.c.pruned.is_(False))).scalar() or 0
        devs = conn.execute(select(func.count()).select_from(development)).scalar() or 0
        alerts = conn.execute(select(func.count()).select_from(alert)).scalar() or 0
    wal = Path(str(path) + "-wal")
    return Day(
        day=day,
        articles=int(rows),
        full=int(full),
        developments=int(devs),
        alerts=int(alerts),
        pruned=report.pruned,
        forgotten=report.forgotten,
        db_mb=round(path.stat().st_size / 1e6, 1),
        wal_mb=round((wal.stat().st_size if wal.exists() else 0) / 1e6, 1),
        free_mb=round((report.free_bytes or 0) / 1e6, 1),
        compacted=report.compacted,
        insert_s=round(inserted, 1),
        prune_s=round(pruned, 1),
    )


HEADER = f"{'day':>3} {'articles':>9} {'with text':>9} {'devs':>7} {'alerts':>6} {'pruned':>7} {'forgot':>7} {'db MB':>8} {'wal MB':>6} {'free MB':>7}  insert/prune s"


def format_day(d: Day) -> str:
    return (
        f"{d.day:>3} {d.articles:>9} {d.full:>9} {d.developments:>7} {d.alerts:>6} {d.pruned:>7} "
        f"{d.forgotten:>7} {d.db_mb:>8} {d.wal_mb:>6} {d.free_mb:>7}  {d.insert_s}/{d.prune_s}"
        + ("  (compacted)" if d.compacted else "")
    )


def summary(days: list[Day], args: argparse.Namespace) -> dict[str, object]:
    """Plateau: the peak size of the last week against the week before (compaction makes the
    size a sawtooth, so peaks compare like with like)."""
    sizes = [d.db_mb for d in days]
    last_peak = max(sizes[-7:])
    previous_peak = max(sizes[-14:-7]) if len(sizes) > 7 else 0.0
    return {
        "feeds": args.feeds,
        "items_per_day": args.feeds * args.items_per_day,
        "days": len(days),
        "retention": args.retention,
        "forget_after": args.forget_after,
        "compactions": sum(d.compacted for d in days),
        "final_db_mb": sizes[-1],
        "peak_db_mb": max(sizes),
        "last_week_min_mb": min(sizes[-7:]),
        "last_week_peak_mb": last_peak,
        "peak_growth_over_last_week_mb": round(last_peak - previous_peak, 1),
        "final_wal_mb": days[-1].wal_mb,
        "developments_and_alerts_kept": (days[-1].developments, days[-1].alerts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention_month", description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2_000)
    parser.add_argument("--items-per-day", type=int, default=50, help="new items per feed per day")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--retention", default="7d")
    parser.add_argument("--forget-after", default="14d")
    parser.add_argument("--summary-chars", type=int, default=500)
    parser.add_argument("--text-chars", type=int, default=2_000)
    parser.add_argument("--articles-per-development", type=int, default=20)
    parser.add_argument(
        "--compact-min-mb", type=float, default=COMPACT_MIN_FREE_BYTES / 1e6,
        help="reclaimable MB before a VACUUM (default: the monitor's); a huge value shows the size without compaction",
    )
    parser.add_argument("--dir", help="keep the database in this directory (default: a temporary one)")
    parser.add_argument("--json", help="write the per-day table and the summary here")
    args = parser.parse_args(argv)

    print(
        f"{args.feeds} feeds × {args.items_per_day} items/day × {args.days} days, "
        f"retention {args.retention}, forget_after {args.forget_after}",
        flush=True,
    )
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="retention-month-") as tmp:
        workdir = Path(args.dir) if args.dir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        days = simulate(args, workdir)
    result = summary(days, args)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": result, "days": [asdict(d) for d in days]}, indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
