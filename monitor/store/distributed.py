"""The distributed mode's SQL: the leader's schedule and claims, intake, role locks and their
holders, configuration versions, id sequences and politeness over every worker.

PostgreSQL only (the roles refuse SQLite before they get here). Each function takes a
`Connection` first, as the other query modules do, so the roles group them into one
transaction: a fetch worker's commit checks its claim token, writes the intake, the source's
health and its next due time and clears the claim; an analysis owner's commit checks its
fencing epoch, writes articles, developments and outbox rows and marks the intake done.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Insert, and_, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql

from monitor.models import Article, SourceHealth, TopicMatch
from monitor.store import sources
from monitor.store.schema import config_version, intake, intake_batch, role_holder, source_state

log = logging.getLogger(__name__)

# Advisory locks are named; the key is a hash of the database, the schema and the name, so
# monitors on different schemas of one server (and parallel test runs) never share a lock.
LEADER_LOCK = "leader"
SEQUENCES = {"article": "monitor_article_ids", "development": "monitor_development_ids"}


class ClaimLost(Exception):
    """A claim token that is no longer the source's: another dispatch owns the poll now."""


class Fenced(Exception):
    """The analysis owner's epoch moved on: another owner holds the shard, nothing is written."""


# -- the leader's schedule ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    source_id: str
    host: str
    interval: timedelta


def sync_schedule(conn: Connection, wanted: Sequence[Scheduled], now: datetime) -> None:
    """Make the schedule match the configuration in force: every source has a row (a new one is
    due now), sources no longer configured are not scheduled (their history stays)."""
    ids = [s.source_id for s in wanted]
    known = {row.source_id: row for row in conn.execute(select(source_state.c.source_id, source_state.c.next_check_at))}
    for entry in wanted:
        row = known.get(entry.source_id)
        if row is None:
            conn.execute(
                source_state.insert().values(
                    source_id=entry.source_id, host=entry.host, scheduled=True, next_check_at=now,
                    consecutive_failures=0, items_seen=0, health_alerted=False,
                )
            )
        else:
            values: dict[str, Any] = {"host": entry.host, "scheduled": True}
            if row.next_check_at is None:
                values["next_check_at"] = now
            conn.execute(update(source_state).where(source_state.c.source_id == entry.source_id).values(**values))
    conn.execute(update(source_state).where(source_state.c.source_id.not_in(ids)).values(scheduled=False))


@dataclass(frozen=True)
class Batch:
    """Due sources claimed under one token, for one `poll_batch` task: whole host groups (a
    host's due sources never split over two batches in flight), several hosts per batch."""

    hosts: tuple[str, ...]
    token: str
    source_ids: tuple[str, ...]


def pack_hosts(by_host: dict[str, list[str]], per_batch: int) -> list[tuple[list[str], tuple[str, ...]]]:
    """Host groups packed into batches of at most `per_batch` sources, in due order. A task
    then has work for the worker's whole `http.concurrency` (one source per host per task
    would leave a worker one request in flight); a host's group is never split."""
    packed: list[tuple[list[str], tuple[str, ...]]] = []
    hosts: list[str] = []
    ids: list[str] = []
    for host, group in by_host.items():
        if ids and len(ids) + len(group) > per_batch:
            packed.append((hosts, tuple(ids)))
            hosts, ids = [], []
        hosts.append(host)
        ids.extend(group)
    if ids:
        packed.append((hosts, tuple(ids)))
    return packed


def claim_due(conn: Connection, now: datetime, *, per_batch: int, ttl: timedelta, limit: int = 5000) -> list[Batch]:
    """Claim due sources, grouped by host (at most `per_batch` of a host, none of a host with a
    batch already in flight), host groups packed into batches of at most `per_batch`. Rows another transaction holds are skipped (FOR UPDATE SKIP LOCKED)."""
    busy = select(source_state.c.host).where(source_state.c.claim_token.is_not(None), source_state.c.host.is_not(None))
    due = (
        select(source_state.c.source_id, source_state.c.host)
        .where(
            source_state.c.scheduled.is_(True),
            source_state.c.next_check_at <= now,
            source_state.c.claim_token.is_(None),
            source_state.c.host.not_in(busy),
        )
        .order_by(source_state.c.next_check_at, source_state.c.source_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    by_host: dict[str, list[str]] = {}
    for row in conn.execute(due):
        taken = by_host.setdefault(row.host or "", [])
        if len(taken) < per_batch:
            taken.append(row.source_id)
    batches = [Batch(tuple(hosts), secrets.token_hex(16), ids) for hosts, ids in pack_hosts(by_host, per_batch)]
    for batch in batches:
        conn.execute(
            update(source_state)
            .where(source_state.c.source_id.in_(batch.source_ids))
            .values(claim_token=batch.token, claim_expires=now + ttl)
        )
    return batches


def release_expired(conn: Connection, now: datetime) -> list[str]:
    """The sweeper: claims whose batch did not finish in time are dropped, so the next claim
    dispatches their sources again under a new token (the old one can commit nothing)."""
    rows = conn.execute(
        update(source_state)
        .where(source_state.c.claim_token.is_not(None), source_state.c.claim_expires < now)
        .values(claim_token=None, claim_expires=None)
        .returning(source_state.c.source_id)
    )
    return sorted(row.source_id for row in rows)


def release_claim(conn: Connection, source_ids: Sequence[str], token: str) -> None:
    """Give a batch's claims back (its task could not be published)."""
    conn.execute(
        update(source_state)
        .where(source_state.c.source_id.in_(list(source_ids)), source_state.c.claim_token == token)
        .values(claim_token=None, claim_expires=None)
    )


def claims_in_flight(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(source_state.c.claim_token.is_not(None))).scalar() or 0)


def due_count(conn: Connection, now: datetime) -> int:
    return int(
        conn.execute(
            select(func.count()).where(source_state.c.scheduled.is_(True), source_state.c.next_check_at <= now)
        ).scalar()
        or 0
    )


def make_due(conn: Connection, source_ids: Iterable[str], now: datetime) -> None:
    """Every listed source due now (`run --once` polls each once)."""
    conn.execute(update(source_state).where(source_state.c.source_id.in_(list(source_ids))).values(next_check_at=now))


CLAIM_CHECK_LOCK_TIMEOUT = "30s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's error when lock_timeout ran out


def claims(conn: Connection, source_ids: Sequence[str], *, wait: str = CLAIM_CHECK_LOCK_TIMEOUT) -> dict[str, str | None]:
    """The sources' claim tokens, as a worker checks its batch before polling. The leader sends
    a batch before its claim commits, so this waits (a share lock, at most `wait`, then
    PostgreSQL's lock_timeout error 55P03) for a claiming transaction that holds the rows: it
    sees the claims as that ends — the token, or none when the leader died first — never the
    state before it. One query for the whole batch."""
    conn.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait})
    rows = conn.execute(
        select(source_state.c.source_id, source_state.c.claim_token)
        .where(source_state.c.source_id.in_(list(source_ids)))
        .with_for_update(read=True)
    )
    found: dict[str, str | None] = {source_id: None for source_id in source_ids}
    found.update({row.source_id: row.claim_token for row in rows})
    return found


# -- a fetch worker's commit -------------------------------------------------------------------


@dataclass
class IntakeItem:
    article: Article
    near_topics: tuple[str, ...] | None  # None: matched a topic; else a near miss


INTAKE_ROWS_PER_STATEMENT = 1000


def _commit_poll_statement() -> Insert:
    """`commit_poll`'s statement, built once (a worker runs it for every poll): an UPDATE of the
    source's row, only while the claim is ours, in a CTE that the intake row selects from."""
    health_columns = [*sources.health_values(SourceHealth("")).keys()]
    held = (
        update(source_state)
        .where(source_state.c.source_id == bindparam("p_source"), source_state.c.claim_token == bindparam("p_token"))
        .values(
            claim_token=None, claim_expires=None, next_check_at=bindparam("p_next", type_=source_state.c.next_check_at.type),
            **{name: bindparam(f"h_{name}", type_=source_state.c[name].type) for name in health_columns},
        )
        .returning(source_state.c.source_id)
        .cte("held")
    )
    opened = select(
        held.c.source_id,
        bindparam("b_token", type_=intake_batch.c.claim_token.type),
        bindparam("b_shard", type_=intake_batch.c.shard.type),
        bindparam("b_polled", type_=intake_batch.c.polled_at.type),
        bindparam("b_report", type_=intake_batch.c.report.type),
    )
    columns = ["source_id", "claim_token", "shard", "polled_at", "report"]
    return intake_batch.insert().from_select(columns, opened).returning(intake_batch.c.id)


_COMMIT_POLL = _commit_poll_statement()


def commit_poll(
    conn: Connection,
    *,
    source_id: str,
    token: str,
    shard: int,
    polled_at: datetime,
    report: Mapping[str, Any],
    items: Sequence[IntakeItem],
    health: SourceHealth,
    next_check_at: datetime,
) -> int:
    """A worker's writes for one polled source, in the caller's transaction: check the claim,
    write the intake, the health and the next due time, clear the claim. Raises `ClaimLost`
    when the token is no longer the source's, having written nothing (the transaction can go
    on with other sources' polls). Returns how many items were new to the intake."""
    # One statement checks the token; writes health, schedule and the cleared claim; and opens
    # the poll's intake row (it waits for a claiming transaction that holds the source's row,
    # then checks the token again). No row back: the claim moved on and nothing was written.
    values = {f"h_{name}": value for name, value in sources.health_values(health).items()}
    batch_id = conn.execute(
        _COMMIT_POLL,
        {
            "p_source": source_id, "p_token": token, "p_next": next_check_at,
            "b_token": token, "b_shard": shard, "b_polled": polled_at, "b_report": dict(report), **values,
        },
    ).scalar_one_or_none()
    if batch_id is None:
        raise ClaimLost(source_id)
    if not items:
        return 0
    rows = [
        {
            "batch_id": batch_id, "source_id": source_id, "item_key": item_key(item.article), "position": position,
            "near_topics": list(item.near_topics) if item.near_topics is not None else None,
            "article": article_to_json(item.article),
        }
        for position, item in enumerate(items)
    ]
    # Multi-row statements (within PostgreSQL's 65,535 parameters); an item already in the
    # intake (a task run twice) is skipped.
    added = 0
    for start in range(0, len(rows), INTAKE_ROWS_PER_STATEMENT):
        chunk = rows[start : start + INTAKE_ROWS_PER_STATEMENT]
        added += conn.execute(postgresql.insert(intake).values(chunk).on_conflict_do_nothing(constraint="uq_intake_source_item")).rowcount
    return added


def item_key(article: Article) -> str:
    """An item of a source, as the intake knows it: its GUID, else its page, else its content."""
    identity = article.guid or article.canonical_url or article.content_hash
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


_ARTICLE_FIELDS = tuple(f.name for f in fields(Article))


def article_to_json(article: Article) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _ARTICLE_FIELDS:
        value = getattr(article, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        elif name == "topics":
            value = [[t.topic_id, t.score, t.explanation] for t in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def article_from_json(data: Mapping[str, Any]) -> Article:
    values = dict(data)
    for name in ("published", "fetched"):
        values[name] = datetime.fromisoformat(values[name])
    if values.get("signature") is not None:
        values["signature"] = base64.b64decode(values["signature"])
    values["topics"] = tuple(TopicMatch(t[0], float(t[1]), t[2]) for t in values.get("topics") or ())
    values["warnings"] = tuple(values.get("warnings") or ())
    return Article(**{k: v for k, v in values.items() if k in _ARTICLE_FIELDS})


# -- the analysis owner ------------------------------------------------------------------------


@dataclass
class PendingPoll:
    batch_id: int
    source_id: str
    polled_at: datetime
    report: dict[str, Any]
    items: list[IntakeItem]


def pending_polls(conn: Connection, shard: int, *, limit: int = 200) -> list[PendingPoll]:
    """Polls of this shard not yet analysed, in the order they were committed."""
    batches = conn.execute(
        select(intake_batch)
        .where(intake_batch.c.shard == shard, intake_batch.c.done_at.is_(None))
        .order_by(intake_batch.c.id)
        .limit(limit)
    ).all()
    if not batches:
        return []
    rows = conn.execute(
        select(intake.c.batch_id, intake.c.near_topics, intake.c.article)
        .where(intake.c.batch_id.in_([b.id for b in batches]))
        .order_by(intake.c.batch_id, intake.c.position)
    )
    items: dict[int, list[IntakeItem]] = {}
    for row in rows:
        near = tuple(row.near_topics) if row.near_topics is not None else None
        items.setdefault(row.batch_id, []).append(IntakeItem(article_from_json(row.article), near))
    return [PendingPoll(b.id, b.source_id, b.polled_at, dict(b.report or {}), items.get(b.id, [])) for b in batches]


def mark_done(conn: Connection, batch_ids: Sequence[int], now: datetime) -> None:
    conn.execute(update(intake_batch).where(intake_batch.c.id.in_(list(batch_ids))).values(done_at=now))


# The notification channel of a schema's intake is this prefix and the schema's name
# (several deployments may share a database, one schema each).
INTAKE_CHANNEL = "monitor_intake_"


def intake_channel(conn: Connection) -> str:
    """The notification channel of this schema's intake."""
    return INTAKE_CHANNEL + str(conn.execute(text("SELECT current_schema()")).scalar_one())


def notify_intake(conn: Connection) -> None:
    """Tell the analysis owner that polls wait (sent when the caller's transaction commits)."""
    conn.execute(text("SELECT pg_notify(:prefix || current_schema(), '')"), {"prefix": INTAKE_CHANNEL})


class IntakeListener:
    """The analysis owner's wake-up: waits for `notify_intake` on a connection of its own, so
    a poll is analysed as soon as it is committed instead of at the owner's next look. A
    broken connection is only a slower owner: `wait` then sleeps out its timeout and the next
    call connects again."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def wait(self, timeout: float) -> bool:
        """True when a notification came within `timeout` seconds."""
        try:
            if self._conn is None:
                self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self._conn.exec_driver_sql(f'LISTEN "{intake_channel(self._conn)}"')
            driver = self._conn.connection.driver_connection
            return any(True for _ in driver.notifies(timeout=timeout, stop_after=1))  # type: ignore[union-attr]
        except Exception as exc:
            log.warning("intake notifications unavailable (%s); polling instead", type(exc).__name__)
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            self._conn = None


def intake_lag(conn: Connection, now: datetime) -> tuple[int, float]:
    """(polls waiting for analysis, age in seconds of the oldest), for the backlog gauges."""
    row = conn.execute(
        select(func.count(), func.min(intake_batch.c.polled_at)).where(intake_batch.c.done_at.is_(None))
    ).one()
    oldest = row[1]
    return int(row[0] or 0), max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def oldest_due_age(conn: Connection, now: datetime) -> float:
    oldest = conn.execute(
        select(func.min(source_state.c.next_check_at)).where(
            source_state.c.scheduled.is_(True), source_state.c.claim_token.is_(None)
        )
    ).scalar()
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def purge_intake(conn: Connection, before: datetime) -> int:
    """Retention: analysed polls older than `before` go, with their items (their keys then no
    longer stop a feed's old item: the store's exact dedup does)."""
    result = conn.execute(intake_batch.delete().where(and_(intake_batch.c.done_at.is_not(None), intake_batch.c.done_at < before)))
    return int(result.rowcount or 0)


# -- role locks and their holders --------------------------------------------------------------


def _key_of(name: str) -> str:
    """The lock key of a lock name (an SQL expression), unique per database and schema."""
    return f"hashtextextended(current_database() || '/' || current_schema() || '/' || {name}, 0)"


_KEY = _key_of(":name")


def try_advisory_lock(conn: Connection, name: str) -> bool:
    """A session advisory lock on this connection (held until it is unlocked or the session
    ends: a dead process's lock goes with its connection)."""
    return bool(conn.execute(text(f"SELECT pg_try_advisory_lock({_KEY})"), {"name": name}).scalar())


def advisory_unlock(conn: Connection, name: str) -> None:
    conn.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": name})


def try_advisory_locks(conn: Connection, names: Sequence[str]) -> list[str]:
    """`try_advisory_lock` for many names in one statement: the names taken."""
    if not names:
        return []
    found = conn.execute(
        text(f"SELECT n FROM unnest(CAST(:names AS text[])) AS n WHERE pg_try_advisory_lock({_key_of('n')})"), {"names": list(names)}
    )
    return [row[0] for row in found]


def advisory_unlock_many(conn: Connection, names: Sequence[str]) -> None:
    if names:
        conn.execute(text(f"SELECT pg_advisory_unlock({_key_of('n')}) FROM unnest(CAST(:names AS text[])) AS n"), {"names": list(names)})


def owner_lock(shard: int) -> str:
    return f"analysis:{shard}"


def take_role(conn: Connection, role: str, holder: str, now: datetime) -> int:
    """Record the new holder of `role` and raise its epoch; returns the holder's epoch."""
    row = conn.execute(select(role_holder.c.epoch).where(role_holder.c.role == role).with_for_update()).first()
    epoch = (row.epoch if row is not None else 0) + 1
    values = {"holder": holder, "epoch": epoch, "since": now, "heartbeat": now}
    if row is None:
        conn.execute(role_holder.insert().values(role=role, **values))
    else:
        conn.execute(update(role_holder).where(role_holder.c.role == role).values(**values))
    return epoch


def check_epoch(conn: Connection, role: str, epoch: int) -> None:
    """The fence, first in an owner's write: the row is shared-locked to the commit, so a new
    owner (who raises the epoch) waits for this write or makes it fail."""
    current = conn.execute(select(role_holder.c.epoch).where(role_holder.c.role == role).with_for_update(read=True)).scalar()
    if current != epoch:
        raise Fenced(f"{role}: epoch {epoch} is no longer current ({current})")


def heartbeat(conn: Connection, role: str, holder: str, now: datetime) -> None:
    conn.execute(update(role_holder).where(role_holder.c.role == role, role_holder.c.holder == holder).values(heartbeat=now))


@dataclass(frozen=True)
class LockSession:
    """The PostgreSQL session holding a role's advisory lock now (pg_locks, pg_stat_activity)."""

    pid: int  # the server process of the session, not the holder's own pid
    client: str  # the client's address ("local" for a Unix socket)
    application: str
    connected: datetime | None


@dataclass(frozen=True)
class RoleState:
    """A role as `monitor status` shows it: its last recorded holder (`role_holder`) and the
    session holding its lock right now, if any. A holder without a session is stale: that
    process is gone (or lost its connection) and a standby takes the lock within a second."""

    role: str
    holder: str  # "host:pid" as the holder recorded itself; "" when none ever did
    epoch: int
    since: datetime | None
    heartbeat: datetime | None
    session: LockSession | None
    standbys: tuple[LockSession, ...] = ()  # processes waiting to take the role

    @property
    def locked(self) -> bool:
        return self.session is not None


def lock_session(conn: Connection, name: str) -> LockSession | None:
    """The session holding the named advisory lock in this database and schema, or None."""
    sessions = lock_sessions(conn, name)
    return sessions[0] if sessions else None


def lock_sessions(conn: Connection, name: str) -> list[LockSession]:
    """Every session holding the named advisory lock (a shared one has several), oldest first."""
    rows = conn.execute(
        text(
            "SELECT l.pid, COALESCE(host(a.client_addr), 'local') AS client,"
            " COALESCE(a.application_name, '') AS application, a.backend_start"
            " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" AND ((l.classid::bigint << 32) | l.objid::bigint) = ({_KEY})"
            " ORDER BY a.backend_start, l.pid"
        ),
        {"name": name},
    )
    return [LockSession(int(row.pid), str(row.client), str(row.application), row.backend_start) for row in rows]


def standby_lock(name: str) -> str:
    """The shared lock a role's standbys hold while they wait (so `monitor status` sees them)."""
    return f"standby:{name}"


def try_advisory_lock_shared(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text(f"SELECT pg_try_advisory_lock_shared({_KEY})"), {"name": name}).scalar())


def advisory_unlock_shared(conn: Connection, name: str) -> None:
    conn.execute(text(f"SELECT pg_advisory_unlock_shared({_KEY})"), {"name": name})


def role_states(conn: Connection, expected: Sequence[str] = ()) -> list[RoleState]:
    """Every recorded role, and each `expected` one never recorded, with the session holding
    its lock now and the sessions of its standbys. Sorted by role."""
    rows = {row.role: row for row in conn.execute(select(role_holder))}
    states = []
    for role in sorted(set(rows) | set(expected)):
        row = rows.get(role)
        session = lock_session(conn, role)
        standbys = tuple(lock_sessions(conn, standby_lock(role)))
        if row is None:
            states.append(RoleState(role, "", 0, None, None, session, standbys))
        else:
            states.append(RoleState(role, row.holder, int(row.epoch), row.since, row.heartbeat, session, standbys))
    return states


@dataclass(frozen=True)
class Backlog:
    """What waits, for `monitor status`: the leader's schedule and claims, the intake, the
    configuration in force. Ages are seconds (0 when nothing waits)."""

    scheduled: int  # sources in the configuration in force
    due: int  # due and not claimed: waiting for the leader
    oldest_due_seconds: float  # how long the longest-waiting of those is overdue
    claimed: int  # being polled now (claimed, batch dispatched)
    claims_expired: int  # claimed past claim_timeout: the sweeper dispatches them again
    intake_waiting: int  # polls committed by workers, not yet analysed
    intake_lag_seconds: float  # age of the oldest of those
    polls_recent: int  # polls committed in the last `recent`
    last_poll: datetime | None  # the newest committed poll
    config_version: int | None  # the leader's latest published configuration
    config_published: datetime | None

    @property
    def empty(self) -> bool:
        """Nothing of the distributed mode was ever here (a one-process store)."""
        return not (self.scheduled or self.claimed or self.intake_waiting or self.last_poll or self.config_version)


def backlog(conn: Connection, now: datetime, *, recent: timedelta = timedelta(minutes=5)) -> Backlog:
    s, b = source_state.c, intake_batch.c
    unclaimed = and_(s.scheduled.is_(True), s.claim_token.is_(None))
    schedule = conn.execute(
        select(
            func.count().filter(s.scheduled.is_(True)),
            func.count().filter(unclaimed, s.next_check_at <= now),
            func.min(s.next_check_at).filter(unclaimed),
            func.count().filter(s.claim_token.is_not(None)),
            func.count().filter(s.claim_token.is_not(None), s.claim_expires < now),
        )
    ).one()
    polls = conn.execute(
        select(
            func.count().filter(b.done_at.is_(None)),
            func.min(b.polled_at).filter(b.done_at.is_(None)),
            func.count().filter(b.polled_at >= now - recent),
            func.max(b.polled_at),
        )
    ).one()
    config = conn.execute(
        select(config_version.c.version, config_version.c.created).order_by(config_version.c.version.desc()).limit(1)
    ).first()

    def age(moment: datetime | None) -> float:
        return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0

    return Backlog(
        scheduled=int(schedule[0] or 0), due=int(schedule[1] or 0), oldest_due_seconds=age(schedule[2]),
        claimed=int(schedule[3] or 0), claims_expired=int(schedule[4] or 0),
        intake_waiting=int(polls[0] or 0), intake_lag_seconds=age(polls[1]),
        polls_recent=int(polls[2] or 0), last_poll=polls[3],
        config_version=int(config.version) if config is not None else None,
        config_published=config.created if config is not None else None,
    )


# -- configuration versions --------------------------------------------------------------------


def publish_config(conn: Connection, text_: str, now: datetime) -> int:
    """Store the leader's file as a new version unless it is the latest already; the version."""
    digest = hashlib.sha256(text_.encode()).hexdigest()
    latest = conn.execute(select(config_version.c.version, config_version.c.digest).order_by(config_version.c.version.desc()).limit(1)).first()
    if latest is not None and latest.digest == digest:
        return int(latest.version)
    return int(conn.execute(config_version.insert().values(digest=digest, text=text_, created=now).returning(config_version.c.version)).scalar_one())


def latest_config_version(conn: Connection) -> int | None:
    """The newest published version's number (what a role checks before each round)."""
    return conn.execute(select(func.max(config_version.c.version))).scalar()


def config_text(conn: Connection, version: int | None = None) -> tuple[int, str] | None:
    """(version, text): the one asked for, or the latest; None when the leader published none."""
    query = select(config_version.c.version, config_version.c.text)
    query = query.where(config_version.c.version == version) if version is not None else query.order_by(config_version.c.version.desc()).limit(1)
    row = conn.execute(query).first()
    return (int(row.version), str(row.text)) if row is not None else None


# -- ids from sequences ------------------------------------------------------------------------


def ensure_sequences(conn: Connection) -> None:
    """The owner's id sequences, moved past every stored id (a store the one-process monitor
    filled, or copied in, keeps its ids)."""
    for kind, name in SEQUENCES.items():
        conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name}"))
        conn.execute(
            text(
                f"SELECT setval('{name}', GREATEST((SELECT COALESCE(max(id), 0) FROM {kind}), "
                f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {name}), 1), "
                f"(SELECT COALESCE(max(id), 0) FROM {kind}) > 0 OR (SELECT is_called FROM {name}))"
            )
        )


def take_ids(conn: Connection, kind: str, count: int) -> list[int]:
    """`count` fresh ids (sequences are not transactional: a rollback leaves a gap, never a
    reuse)."""
    name = SEQUENCES[kind]
    rows = conn.execute(text(f"SELECT nextval('{name}') FROM generate_series(1, :n)"), {"n": count})
    return sorted(int(r[0]) for r in rows)


# -- politeness over every worker --------------------------------------------------------------


def host_slot_key(host: str, slot: int) -> str:
    return f"host:{host}#{slot}"


def reserve_article_slot(conn: Connection, host: str, interval: timedelta) -> float:
    """Reserve the next article-page time of `host` over every worker; seconds to wait for it."""
    row = conn.execute(
        text(
            "INSERT INTO host_pace (host, next_at) VALUES (:host, clock_timestamp() + :gap) "
            "ON CONFLICT (host) DO UPDATE SET next_at = GREATEST(host_pace.next_at, clock_timestamp()) + :gap "
            "RETURNING EXTRACT(EPOCH FROM (next_at - :gap - clock_timestamp()))"
        ),
        {"host": host, "gap": interval},
    ).scalar()
    return max(0.0, float(row or 0.0))


def next_check(health: SourceHealth, polled_at: datetime, interval: timedelta, jitter: float) -> datetime:
    """When a polled source is next due: its interval (plus jitter) later, or its backoff."""
    due = polled_at + interval + timedelta(seconds=jitter)
    if health.consecutive_failures and health.next_due is not None:
        return max(due, health.next_due)
    return due
