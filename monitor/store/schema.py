"""Tables, in SQLAlchemy Core. The one description of the schema; migrations are made from it.

Timestamps are `UtcDateTime` (UTC in, aware UTC out, on every engine); JSON columns hold
small lists and dicts (topic matches, impact reasons, alert payloads).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import false

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that always stores UTC and always returns aware UTC.

    SQLite has no time zone type: SQLAlchemy writes the wall-clock digits and drops the
    offset, and reads back naive values. Converting to UTC on the way in keeps SQLite's
    string comparisons (`published < :since`) correct; attaching UTC on the way out gives
    every engine the same aware values. Naive input is taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def as_utc(value: datetime) -> datetime:
    """Aware UTC, as every store column of UTC_DATETIME reads back (naive is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_DATETIME = UtcDateTime()

# References are checked at commit, not per statement: one transaction inserts articles
# that point at a development it upserts a moment later (and merges repoint both ways).
DEFERRED: dict[str, Any] = {"deferrable": True, "initially": "DEFERRED"}

source_state = Table(
    "source_state",
    metadata,
    Column("source_id", String(200), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("last_status", Integer),
    Column("last_ok", UTC_DATETIME),
    Column("last_attempt", UTC_DATETIME),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_error_kind", String(40)),
    Column("last_error", Text),
    Column("next_due", UTC_DATETIME),
    Column("items_seen", Integer, nullable=False, default=0),
    # Set while a "source failing" alert is outstanding, so we alert once, not every cycle.
    Column("health_alerted", Boolean, nullable=False, default=False),
    # The distributed mode's schedule (the leader's; one process uses APScheduler instead):
    # whether the source is in the configuration in force, its host (one batch per host in
    # flight), when it is next due, and the claim of the batch that polls it now.
    Column("scheduled", Boolean, nullable=False, server_default=false()),
    Column("host", String(255)),
    Column("next_check_at", UTC_DATETIME),
    Column("claim_token", String(64)),
    Column("claim_expires", UTC_DATETIME),
    Index("ix_source_state_due", "scheduled", "next_check_at"),
    Index("ix_source_state_claim", "claim_token"),
)

development = Table(
    "development",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("headline", Text, nullable=False),
    Column("lead", Text, nullable=False, default=""),
    Column("first_seen", UTC_DATETIME, nullable=False),
    Column("last_seen", UTC_DATETIME, nullable=False),
    Column("state", String(20), nullable=False),
    Column("independent", Integer, nullable=False, default=1),
    Column("decision_reason", Text, nullable=False, default=""),
    Column("key_terms", JSON, nullable=False, default=list),
    Column("impact", Integer),
    Column("impact_reasons", JSON, nullable=False, default=list),
    Column("sentiment", String(20)),
    Column("storyline_id", Integer),
    # The kind of action (impact rubric): storylines link developments of one kind.
    Column("kind", String(60), nullable=False, server_default=""),
    # The corroboration decision (origins, reason), decided once per change by the pipeline.
    Column("decision", JSON),
    Column("merged_into", Integer, ForeignKey("development.id", **DEFERRED)),
    Column("features", JSON),  # whatever cluster needs to rebuild its index after a restart
    Column("updated", UTC_DATETIME),
    Index("ix_development_last_seen", "last_seen"),
    Index("ix_development_storyline", "storyline_id"),
    Index("ix_development_topic_kind", "topic", "kind", "last_seen"),
)

article = Table(
    "article",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_id", String(200), nullable=False),
    Column("outlet", Text, nullable=False),
    Column("owner", Text, nullable=False, default=""),
    Column("tier", String(20), nullable=False, default="outlet"),
    Column("guid", Text, nullable=False, default=""),
    Column("url", Text, nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("published", UTC_DATETIME, nullable=False),
    Column("fetched", UTC_DATETIME, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("signature", LargeBinary),
    Column("credit", Text, nullable=False, default=""),
    Column("canonical_link", Text, nullable=False, default=""),
    Column("origin", Text, nullable=False, default=""),
    Column("reprint_of", Integer, ForeignKey("article.id", **DEFERRED)),
    Column("topics", JSON, nullable=False, default=list),  # [{topic_id, score, explanation}]
    Column("development_id", Integer, ForeignKey("development.id", **DEFERRED)),
    Column("pruned", Boolean, nullable=False, default=False),
    Index("ix_article_canonical_url", "canonical_url"),
    Index("ix_article_source_guid", "source_id", "guid"),
    Index("ix_article_content_hash", "content_hash"),
    Index("ix_article_development", "development_id"),
    Index("ix_article_published", "published"),
    # Deleting an article makes the database look for rows that name it in reprint_of.
    Index("ix_article_reprint_of", "reprint_of"),
)

alert = Table(
    "alert",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("channel", Text, nullable=False),
    # One parent per development per channel, one post per digest period: enforced here.
    Column("dedup_key", Text, nullable=False, unique=True),
    Column("development_id", Integer, ForeignKey("development.id", **DEFERRED)),
    Column("payload", JSON, nullable=False, default=dict),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("not_before", UTC_DATETIME),
    Column("slack_channel_id", Text, nullable=False, default=""),
    Column("slack_ts", Text, nullable=False, default=""),
    Column("thread_ts", Text, nullable=False, default=""),
    Column("created", UTC_DATETIME, nullable=False),
    Column("sent", UTC_DATETIME),
    Column("updated", UTC_DATETIME),
    Index("ix_alert_state_not_before", "state", "not_before"),
    Index("ix_alert_development", "development_id"),
)

silence = Table(
    "silence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matcher", String(20), nullable=False),  # topic | development | source | match
    Column("value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", UTC_DATETIME, nullable=False),
    Column("expires", UTC_DATETIME, nullable=False),
    Column("removed", UTC_DATETIME),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON),
)

# -- the distributed mode (README "Running on several machines") ------------------------------

# One poll of one source by a fetch worker, waiting for its analysis owner: what the fetch
# side found (`pipeline.Gathered` without its articles) and when the owner was done with it.
intake_batch = Table(
    "intake_batch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_id", String(200), nullable=False),
    Column("claim_token", String(64), nullable=False),
    Column("shard", Integer, nullable=False, server_default="0"),
    Column("polled_at", UTC_DATETIME, nullable=False),
    Column("report", JSON, nullable=False, default=dict),
    Column("done_at", UTC_DATETIME),
    Index("ix_intake_batch_pending", "shard", "done_at", "id"),
)

# The articles of those polls; an item of a source is taken in once, however often its
# poll runs (a re-executed task, a feed that lists it for weeks).
intake = Table(
    "intake",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("intake_batch.id", ondelete="CASCADE"), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("item_key", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("near_topics", JSON),  # set for a near miss: the topics it partly matched
    Column("article", JSON, nullable=False),
    UniqueConstraint("source_id", "item_key", name="uq_intake_source_item"),
    Index("ix_intake_batch", "batch_id"),
)

# Who holds each role's lock (the lock itself is a PostgreSQL advisory lock), and the epoch
# that fences the analysis owner: each new holder raises it, and a write that finds another
# epoch than its own commits nothing.
role_holder = Table(
    "role_holder",
    metadata,
    Column("role", String(100), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("epoch", Integer, nullable=False, default=0),
    Column("since", UTC_DATETIME, nullable=False),
    Column("heartbeat", UTC_DATETIME, nullable=False),
)

# The leader's validated feeds.yaml, as text (placeholders such as ${SLACK_BOT_TOKEN} are not
# expanded, so no secret is stored); every task names the version it was dispatched under.
config_version = Table(
    "config_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created", UTC_DATETIME, nullable=False),
)

# Article-page politeness over every worker: the earliest time the next page of a host may go.
host_pace = Table(
    "host_pace",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("next_at", UTC_DATETIME, nullable=False),
)
