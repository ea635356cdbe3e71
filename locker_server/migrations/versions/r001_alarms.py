"""alarms: what went wrong at a cabinet, raised, cleared and acknowledged

Revision ID: r001_alarms
Revises:
Depends on: d001_domain (alarms.site_id, alarms.cabinet_id)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r001_alarms"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("alarms",)
depends_on: str | Sequence[str] | None = "d001_domain"

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("door_number", sa.Integer(), nullable=True),
        sa.Column("raised_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("cleared_at", _TS, nullable=True),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("open_key", sa.String(length=240), nullable=True),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    op.create_index("ix_alarms_site_raised", "alarms", ["site_id", "raised_at"], unique=False)
    op.create_index("ix_alarms_cabinet_kind", "alarms", ["cabinet_id", "kind"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alarms_cabinet_kind", table_name="alarms")
    op.drop_index("ix_alarms_site_raised", table_name="alarms")
    op.drop_table("alarms")
