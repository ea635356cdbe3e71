"""link: signed door commands, per-cabinet counters and kill switches, offline allow-lists

Revision ID: c001_link_commands
Revises:
Create Date: 2026-11-26 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c001_link_commands"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("link_commands",)
depends_on: str | Sequence[str] | None = "d001_domain"

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "link_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("command_id", sa.String(length=32), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("door", sa.Integer(), nullable=True),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("issued_by_type", sa.String(length=16), nullable=False),
        sa.Column("issued_by_id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result_reason", sa.String(length=64), nullable=True),
        sa.Column("result_outcome", sa.String(length=32), nullable=True),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("command_id"),
        sa.UniqueConstraint("cabinet_id", "counter", name="uq_link_commands_cabinet_counter"),
    )
    op.create_index(
        op.f("ix_link_commands_cabinet_id"), "link_commands", ["cabinet_id"], unique=False
    )
    op.create_index(
        "ix_link_commands_status_issued", "link_commands", ["status", "issued_at"], unique=False
    )
    op.create_table(
        "link_cabinet_controls",
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("last_counter", sa.Integer(), nullable=False),
        sa.Column("sync_version", sa.Integer(), nullable=False),
        sa.Column("allow_list_resync", sa.Boolean(), nullable=False),
        sa.Column("remote_open_enabled", sa.Boolean(), nullable=False),
        sa.Column("remote_open_reason", sa.String(length=255), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.PrimaryKeyConstraint("cabinet_id"),
    )
    op.create_table(
        "link_site_controls",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("remote_open_enabled", sa.Boolean(), nullable=False),
        sa.Column("remote_open_reason", sa.String(length=255), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("site_id"),
    )
    op.create_table(
        "link_allow_list_entries",
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("door", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("qr_hash", sa.String(length=64), nullable=True),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hashes_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["cabinet_id"], ["cabinets.id"]),
        sa.ForeignKeyConstraint(["parcel_id"], ["parcels.id"]),
        sa.PrimaryKeyConstraint("cabinet_id", "parcel_id"),
    )


def downgrade() -> None:
    op.drop_table("link_allow_list_entries")
    op.drop_table("link_site_controls")
    op.drop_table("link_cabinet_controls")
    op.drop_index("ix_link_commands_status_issued", table_name="link_commands")
    op.drop_index(op.f("ix_link_commands_cabinet_id"), table_name="link_commands")
    op.drop_table("link_commands")
