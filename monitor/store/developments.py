"""Developments: upsert with the cluster's features, reads for digests, storylines, merges.

A merged development stays as a row (alerts and old links point at it) with state MERGED
and `merged_into` set; reads that list developments leave it out unless asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, null, select, update
from sqlalchemy.engine import RowMapping

from monitor.config.settings import DEFAULT_MIN_SOURCES
from monitor.models import Decision, Development, DevelopmentState, Impact, Origin, Sentiment
from monitor.store.db import max_ids, sync_id_sequence, upsert
from monitor.store.schema import as_utc, development

log = logging.getLogger(__name__)

OPEN_STATES = (DevelopmentState.SINGLE_SOURCE, DevelopmentState.CORROBORATED)
STREAM_BATCH = 200  # developments per fetch when streamed (each may carry ~20 KB of features)


def upsert_development(
    conn: Connection, dev: Development, features: Mapping[str, Any] | None = None
) -> None:
    """Insert or update a development; one without an id is given the next one.

    `features=None` keeps whatever features are stored (new rows get none).
    """
    if dev.id is None:
        dev.id = max_ids(conn)[1] + 1
    values = _row_from_development(dev)
    if features is not None:
        values["features"] = dict(features)
    upsert(conn, development, values, ["id"])
    sync_id_sequence(conn, "development")


# Everything but the cluster features, which can be large and only the index rebuild reads.
_SUMMARY_COLUMNS = [c for c in development.c if c.name != "features"]


def get_development(conn: Connection, development_id: int) -> Development | None:
    row = conn.execute(select(*_SUMMARY_COLUMNS).where(development.c.id == development_id)).first()
    return _development_from_row(row._mapping) if row is not None else None


def as_stored(dev: Development) -> Development:
    """The development as `get_development` would read it back after `upsert_development`.

    For callers that keep what they wrote instead of reading it again in the same process.
    """
    stored = _development_from_row(_row_from_development(dev))  # type: ignore[arg-type]
    stored.first_seen, stored.last_seen = as_utc(stored.first_seen), as_utc(stored.last_seen)
    return stored



def developments_seen_since(
    conn: Connection,
    since: datetime,
    *,
    topics: Iterable[str] | None = None,
    states: Iterable[DevelopmentState] | None = None,
    limit: int | None = None,
) -> list[Development]:
    """Developments reported at or after `since`, most recently seen first (at most `limit`).

    `states=None` means every state except MERGED (a merged row is an alias of another).
    """
    query = _filtered(select(*_SUMMARY_COLUMNS), topics, states).where(development.c.last_seen >= since)
    query = query.order_by(development.c.last_seen.desc(), development.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_development_from_row(row._mapping) for row in conn.execute(query)]


# What a storyline comparison reads (`timeline.storyline_for`): no decision, impact or
# sentiment, whose JSON and conversions cost more than the query itself.
_STORYLINE_COLUMNS = [
    development.c[name]
    for name in (
        "id", "topic", "headline", "lead", "first_seen", "last_seen", "state", "key_terms",
        "storyline_id", "kind", "merged_into", "independent",
    )
]


def storyline_candidates(
    conn: Connection, since: datetime | None, *, topic: str, limit: int
) -> list[Development]:
    """`developments_seen_since(conn, since, topics=[topic], limit=limit)` with only the
    columns storylines compare filled in (the rest keep their defaults); `since=None`: any."""
    query = _filtered(select(*_STORYLINE_COLUMNS), [topic], None)
    if since is not None:
        query = query.where(development.c.last_seen >= since)
    query = query.order_by(development.c.last_seen.desc(), development.c.id.desc()).limit(limit)
    return [_storyline_row(row) for row in conn.execute(query)]


def _storyline_row(row: Any) -> Development:
    return Development(
        id=row.id,
        topic=row.topic,
        headline=row.headline,
        lead=row.lead,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        state=_state(row.state),
        key_terms=tuple(str(t) for t in row.key_terms or ()),
        storyline_id=row.storyline_id,
        kind=row.kind or "",
        merged_into=row.merged_into,
        independent=row.independent,
    )


def latest_of_kind(
    conn: Connection, since: datetime, *, topic: str, kind: str, limit: int
) -> list[Development]:
    """The newest developments of one kind (not merged), seen since `since`, newest first,
    with the columns storylines compare: a storyline's earlier developments may be years
    and thousands of developments back."""
    query = (
        _filtered(select(*_STORYLINE_COLUMNS), [topic], None)
        .where(development.c.kind == kind, development.c.last_seen >= since)
        .order_by(development.c.last_seen.desc(), development.c.id.desc())
        .limit(limit)
    )
    return [_storyline_row(row) for row in conn.execute(query)]


def open_developments(
    conn: Connection, since: datetime
) -> list[tuple[Development, dict[str, Any] | None]]:
    """Single-source and corroborated developments seen since `since`, with their features,
    in id order: what the cluster index is rebuilt from on start."""
    return list(iter_open_developments(conn, since))


def iter_open_developments(
    conn: Connection, since: datetime
) -> Iterator[tuple[Development, dict[str, Any] | None]]:
    """`open_developments`, streamed: each one's features (tens of KB of JSON) are parsed
    when it is reached, not all at once. Consume it while `conn` is open."""
    query = (
        _filtered(select(development), None, OPEN_STATES)
        .where(development.c.last_seen >= since)
        .order_by(development.c.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for row in conn.execute(query):
        yield _development_from_row(row._mapping), dict(row.features) if row.features else None


def storyline(
    conn: Connection, storyline_id: int, before: datetime | None = None
) -> list[Development]:
    """The developments of a storyline, oldest first; only those first seen before `before`."""
    query = _filtered(select(development), None, None).where(
        development.c.storyline_id == storyline_id
    )
    if before is not None:
        query = query.where(development.c.first_seen < before)
    query = query.order_by(development.c.first_seen, development.c.id)
    return [_development_from_row(row._mapping) for row in conn.execute(query)]


def _filtered(
    query: Select[Any],
    topics: Iterable[str] | None,
    states: Iterable[DevelopmentState] | None,
) -> Select[Any]:
    if topics is not None:
        query = query.where(development.c.topic.in_(list(topics)))
    if states is None:
        return query.where(development.c.state != DevelopmentState.MERGED.value)
    return query.where(development.c.state.in_([DevelopmentState(s).value for s in states]))


def _row_from_development(dev: Development) -> dict[str, Any]:
    return {
        "id": dev.id,
        "topic": dev.topic,
        "headline": dev.headline,
        "lead": dev.lead,
        "first_seen": dev.first_seen,
        "last_seen": dev.last_seen,
        "state": DevelopmentState(dev.state).value,
        "independent": dev.independent,
        "decision_reason": dev.decision_reason,
        "key_terms": list(dev.key_terms),
        "impact": dev.impact.score if dev.impact else None,
        "impact_reasons": list(dev.impact.reasons) if dev.impact else [],
        "sentiment": Sentiment(dev.sentiment).value if dev.sentiment else None,
        "storyline_id": dev.storyline_id,
        "kind": dev.kind,
        "merged_into": dev.merged_into,
        "decision": _decision_json(dev.decision) if dev.decision is not None else None,
        # Bookkeeping only (when the row last changed); no decision reads it.
        "updated": datetime.now(UTC),
    }


def _development_from_row(row: RowMapping) -> Development:
    impact = None
    if row["impact"] is not None:
        impact = Impact(int(row["impact"]), tuple(str(r) for r in row["impact_reasons"] or ()))
    return Development(
        id=row["id"],
        topic=row["topic"],
        headline=row["headline"],
        lead=row["lead"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        state=_state(row["state"]),
        independent=row["independent"],
        decision_reason=row["decision_reason"],
        key_terms=tuple(str(t) for t in row["key_terms"] or ()),
        impact=impact,
        sentiment=_sentiment(row["sentiment"]),
        storyline_id=row["storyline_id"],
        kind=row["kind"] or "",
        merged_into=row["merged_into"],
        decision=_decision_from_json(row["decision"]) if row["decision"] else None,
    )


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "state": decision.state.value,
        "independent": decision.independent,
        "reason": decision.reason,
        "required": decision.required,
        "origins": [
            {"key": o.key, "label": o.label, "article_ids": list(o.article_ids), "outlets": list(o.outlets),
             "reprints": o.reprints, "primary": o.primary}
            for o in decision.origins
        ],
    }


def _decision_from_json(value: Mapping[str, Any]) -> Decision:
    return Decision(
        state=_state(str(value.get("state", ""))),
        independent=int(value.get("independent", 0)),
        reason=str(value.get("reason", "")),
        required=int(value.get("required", DEFAULT_MIN_SOURCES)),
        origins=tuple(
            Origin(
                key=str(o.get("key", "")), label=str(o.get("label", "")),
                article_ids=tuple(int(i) for i in o.get("article_ids") or ()),
                outlets=tuple(str(x) for x in o.get("outlets") or ()),
                reprints=int(o.get("reprints", 0)), primary=bool(o.get("primary", False)),
            )
            for o in value.get("origins") or ()
        ),
    )


def _state(value: str) -> DevelopmentState:
    try:
        return DevelopmentState(value)
    except ValueError:
        log.warning("unknown development state %r; reading it as closed", value)
        return DevelopmentState.CLOSED


def _sentiment(value: str | None) -> Sentiment | None:
    try:
        return Sentiment(value) if value else None
    except ValueError:
        log.warning("unknown sentiment %r; reading it as none", value)
        return None


def clear_features(conn: Connection, before: datetime) -> int:
    """Drop the clustering features of developments last seen before `before`: a closed
    development is never matched again, and its features are most of its row."""
    query = (
        update(development)
        .where(development.c.last_seen < before, development.c.features.is_not(None))
        .values(features=null())
    )
    return int(conn.execute(query).rowcount)


def active_between(
    conn: Connection, since: datetime, until: datetime, *, topics: Sequence[str] | None = None
) -> list[Development]:
    """Developments (not merged) with a report in [since, until): what a digest covers."""
    query = select(development).where(
        development.c.last_seen >= since, development.c.first_seen < until, development.c.merged_into.is_(None)
    )
    if topics:
        query = query.where(development.c.topic.in_(list(topics)))
    return [_development_from_row(row._mapping) for row in conn.execute(query)]
