"""development.decision: the corroboration decision, kept with the development

The pipeline decides once per change (from all the development's articles) and stores the
decision; alerts, digests and `monitor developments` read it instead of deciding again.
Rows written before have none: readers decide for those.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("development") as batch:
        batch.add_column(sa.Column("decision", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("development") as batch:
        batch.drop_column("decision")
