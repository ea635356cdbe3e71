"""link: ingested cabinet events (idempotency) and cabinet presence

Revision ID: l001_link
Revises:
Create Date: 2026-11-26 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "l001_link"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("link",)
depends_on: str | Sequence[str] | None = "d001_domain"


def upgrade() -> None:
    op.create_table(
        "link_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("link_events") as batch:
        batch.create_index("ix_link_events_event_id", ["event_id"], unique=True)
        batch.create_index("ix_link_events_cabinet_id", ["cabinet_id"], unique=False)
    op.create_table(
        "cabinet_links",
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("connection", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.PrimaryKeyConstraint("cabinet_id"),
    )


def downgrade() -> None:
    op.drop_table("cabinet_links")
    op.drop_table("link_events")
