"""link: per-cabinet MQTT credentials (Mosquitto password hashes)

Revision ID: p001_link_credentials
Revises:
Create Date: 2026-11-26 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p001_link_credentials"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("link_credentials",)
depends_on: str | Sequence[str] | None = "d001_domain"


def upgrade() -> None:
    op.create_table(
        "cabinet_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cabinet_credentials") as batch:
        batch.create_index("ix_cabinet_credentials_cabinet_id", ["cabinet_id"], unique=False)


def downgrade() -> None:
    op.drop_table("cabinet_credentials")
