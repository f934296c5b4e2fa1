"""development.kind: the kind of action a development reports, and who took it

The impact rubric classifies each development ("us:rule", "us:entity-list", "ally:control",
"china:control", ...); storylines link developments of one kind, so the kind is stored and
indexed with the topic (the latest developments of a kind are looked up by it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("development") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=60), nullable=False, server_default=""))
    op.create_index("ix_development_topic_kind", "development", ["topic", "kind", "last_seen"])


def downgrade() -> None:
    op.drop_index("ix_development_topic_kind", table_name="development")
    with op.batch_alter_table("development") as batch:
        batch.drop_column("kind")
