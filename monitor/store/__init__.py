"""The store: the only package that speaks SQL.

`Store` (in `db`) owns the engine, transactions and migrations; the query modules are plain
functions taking a `Connection` first, grouped by what they are about:

- `sources`: source health (conditional-GET validators, failures, the "failing" flag)
- `articles`: exact-dedup lookups, inserts, reads by development, retention
- `developments`: upsert with cluster features, digests' reads, storylines, merges
- `meta`: small named JSON values
- `outbox`, `silences`: the alert outbox / notification log, and silences

Timestamps go in and come out as aware UTC datetimes on every engine (`schema.UtcDateTime`).
"""

from monitor.store.db import Store, max_ids, upsert

__all__ = ["Store", "max_ids", "upsert"]
