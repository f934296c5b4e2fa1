"""Retention: old articles are pruned, then forgotten, and SQLite's file stays bounded.

Once a day (the scheduler's `retention` job) `prune()`:

1. *prunes* articles published before `now - store.retention`: text, summary and signature
   are cleared; dedup keys, title, URL and outlet stay, so a feed that still lists the item
   does not bring it back as news (see `monitor.store.articles`);
2. *forgets* articles published before `now - store.forget_after`: the rows are deleted. This
   is what bounds the database: everything else grows only with developments and alerts,
   which keep their summaries (headline, lead, counts, payloads) and are a few per day;
3. clears the clustering features (term centroids, a few KB each) of developments last seen
   before both cuts (`store.retention` and `cluster.window`): the cluster index is rebuilt
   only from developments seen within `cluster.window`, so nothing reads them again, and
   they would otherwise be the largest part of a development row kept forever;
4. on SQLite, checkpoints the write-ahead log and, rarely, compacts the file.

Why no routine VACUUM: SQLite reuses the pages that forgetting frees (they go on the
freelist), so with a steady intake the file reaches a plateau without one. VACUUM rewrites
the whole file, needs as much free disk again (in WAL mode the copy goes through the WAL) and
locks writers out while it runs, so it runs only when it wins a lot back: when the
*reclaimable* space — free pages plus the unused bytes inside pages — is both over
`COMPACT_FREE_FRACTION` of the file and over `COMPACT_MIN_FREE_BYTES`. Pruning is what makes
unused bytes inside pages: clearing an article's text shrinks its row in place, and SQLite
only gives that space to rows that land on the same page, which new articles (higher ids)
never do. Without compaction a pruned article keeps most of its page until it is forgotten,
so the plateau would be `forget_after` days of full-size rows; with it, roughly `retention`
days of full rows plus small pruned ones (measured by `bench/retention_month.py`). The
unused bytes come from SQLite's `dbstat` table (Debian's and the python image's SQLite have
it); without it only free pages count. (auto_vacuum=INCREMENTAL only returns free pages, not
space inside pages, and would need a VACUUM to switch on for existing files.)

A compaction blocks writers for its duration (seconds per hundred MB); a poll that waits
longer than the busy timeout fails and is retried at its next interval. That is why it is
rare, and runs in the 03:17 job.

The WAL is checkpointed with TRUNCATE after pruning: one day's prune is the largest write of
the day, and without a truncating checkpoint `monitor.db-wal` keeps that size on disk.

On PostgreSQL, autovacuum reuses the space; nothing extra is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from monitor.config.holder import ConfigHolder
from monitor.config.settings import Settings
from monitor.store import Store
from monitor.store.articles import count_articles, prune_articles
from monitor.store.developments import clear_features
from monitor.store.maintenance import checkpoint_wal, space, vacuum

log = logging.getLogger(__name__)

COMPACT_FREE_FRACTION = 0.25
COMPACT_MIN_FREE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PruneReport:
    """What one retention run did."""

    pruned: int  # articles whose text was cleared
    forgotten: int  # articles deleted outright
    features_cleared: int  # developments whose clustering features were dropped
    before: datetime  # articles published before this were pruned
    forget_before: datetime  # ... and before this, deleted
    file_bytes: int | None = None  # SQLite only: main file size after the run
    free_bytes: int | None = None  # SQLite only: reclaimable (free pages + unused in pages)
    compacted: bool = False  # SQLite only: VACUUM ran


def prune(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    compact_min_free_bytes: int = COMPACT_MIN_FREE_BYTES,
) -> PruneReport:
    """Apply `store.retention` and `store.forget_after` as of `now` (see the module doc)."""
    before = now - settings.store.retention
    forget_before = now - settings.store.forget_after
    with store.transaction() as conn:
        total_before = count_articles(conn)
        affected = prune_articles(conn, before, forget_before=forget_before)
        forgotten = total_before - count_articles(conn)
        cleared = clear_features(conn, min(before, now - settings.cluster.window))
    report = PruneReport(affected - forgotten, forgotten, cleared, before, forget_before)
    if store.dialect != "sqlite":
        return report
    return _maintain_sqlite(store, report, compact_min_free_bytes)


def _maintain_sqlite(store: Store, report: PruneReport, min_free_bytes: int) -> PruneReport:
    checkpoint_wal(store)
    file_bytes, reclaimable = space(store)
    compact = reclaimable >= min_free_bytes and reclaimable >= COMPACT_FREE_FRACTION * file_bytes
    if compact:
        log.info("retention: compacting the SQLite file", extra={"reclaimable_bytes": reclaimable, "file_bytes": file_bytes})
        vacuum(store)
        checkpoint_wal(store)
        file_bytes, reclaimable = space(store)
    return replace(report, file_bytes=file_bytes, free_bytes=reclaimable, compacted=compact)


def make_retention_job(
    store: Store, holder: ConfigHolder, clock: Callable[[], datetime]
) -> Callable[[], Awaitable[PruneReport | None]]:
    """The scheduler's daily job: `prune()` with the settings in force, off the event loop.

    Errors are logged and the job returns None; the next day's run tries again.
    """

    async def retention_job() -> PruneReport | None:
        settings, now = holder.settings, clock()
        try:
            report = await asyncio.to_thread(prune, store, settings, now)
        except Exception:  # never let retention take the scheduler down
            log.exception("retention failed; articles stay until the next run")
            return None
        log.info(
            "retention done",
            extra={
                "pruned": report.pruned,
                "forgotten": report.forgotten,
                "features_cleared": report.features_cleared,
                "file_bytes": report.file_bytes,
                "compacted": report.compacted,
            },
        )
        return report

    return retention_job


__all__ = ["PruneReport", "checkpoint_wal", "make_retention_job", "prune", "vacuum"]
