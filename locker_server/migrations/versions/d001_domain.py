"""Domain tables: sites, cabinets, doors, size classes, recipients, carriers, couriers,
parcels, parcel transitions, pickup credentials, pickup failures, door commands.

Revision ID: d001_domain
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d001_domain"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("domain",)
depends_on: str | Sequence[str] | None = None

#: Default door sizes (inner height x width x depth, mm), smallest first; operators may add more.
DEFAULT_SIZE_CLASSES = (
    {"code": "S", "rank": 1, "inner_height_mm": 90, "inner_width_mm": 380, "inner_depth_mm": 640},
    {"code": "M", "rank": 2, "inner_height_mm": 190, "inner_width_mm": 380, "inner_depth_mm": 640},
    {"code": "L", "rank": 3, "inner_height_mm": 410, "inner_width_mm": 380, "inner_depth_mm": 640},
    {"code": "XL", "rank": 4, "inner_height_mm": 600, "inner_width_mm": 500, "inner_depth_mm": 640},
)


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "recipients",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("department", sa.String(length=120), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("accessibility_need", sa.Boolean(), nullable=False),
        sa.Column("consent_locker_delivery", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sites",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "size_classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("inner_height_mm", sa.Integer(), nullable=False),
        sa.Column("inner_width_mm", sa.Integer(), nullable=False),
        sa.Column("inner_depth_mm", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint("rank"),
    )
    op.create_table(
        "cabinets",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("in_service", sa.Boolean(), nullable=False),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
        sa.Column("maintenance_reason", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index(op.f("ix_cabinets_site_id"), "cabinets", ["site_id"], unique=False)
    op.create_table(
        "couriers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"],
            ["carriers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index(op.f("ix_couriers_carrier_id"), "couriers", ["carrier_id"], unique=False)
    op.create_table(
        "doors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("size_class_id", sa.Integer(), nullable=False),
        sa.Column("board", sa.Integer(), nullable=False),
        sa.Column("lock", sa.Integer(), nullable=False),
        sa.Column("accessible_height", sa.Boolean(), nullable=False),
        sa.Column("service_state", sa.String(length=16), nullable=False),
        sa.Column("service_reason", sa.String(length=255), nullable=True),
        sa.Column("door_state", sa.String(length=16), nullable=False),
        sa.Column("door_state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occupancy", sa.String(length=16), nullable=False),
        sa.Column("occupant_recipient_id", sa.Integer(), nullable=True),
        sa.Column("held_parcels", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cabinet_id"],
            ["cabinets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["occupant_recipient_id"],
            ["recipients.id"],
        ),
        sa.ForeignKeyConstraint(
            ["size_class_id"],
            ["size_classes.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cabinet_id", "number", name="uq_doors_cabinet_number"),
    )
    op.create_index(op.f("ix_doors_cabinet_id"), "doors", ["cabinet_id"], unique=False)
    op.create_index(op.f("ix_doors_occupancy"), "doors", ["occupancy"], unique=False)
    op.create_table(
        "pickup_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("door_number", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cabinet_id"],
            ["cabinets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_pickup_failures_cabinet_at", "pickup_failures", ["cabinet_id", "at"], unique=False
    )
    op.create_table(
        "door_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("requested_by_type", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["door_id"],
            ["doors.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_door_commands_door_id"), "door_commands", ["door_id"], unique=False)
    op.create_table(
        "parcels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("size_class_id", sa.Integer(), nullable=True),
        sa.Column("length_mm", sa.Integer(), nullable=True),
        sa.Column("width_mm", sa.Integer(), nullable=True),
        sa.Column("height_mm", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("cabinet_id", sa.Integer(), nullable=True),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deposited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pickup_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extensions_used", sa.Integer(), nullable=False),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("picked_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cabinet_id"],
            ["cabinets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"],
            ["carriers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["door_id"],
            ["doors.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
        ),
        sa.ForeignKeyConstraint(
            ["size_class_id"],
            ["size_classes.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("carrier_id", "tracking_number", name="uq_parcels_carrier_tracking"),
    )
    op.create_index("ix_parcels_door_state", "parcels", ["door_id", "state"], unique=False)
    op.create_index(op.f("ix_parcels_recipient_id"), "parcels", ["recipient_id"], unique=False)
    op.create_index(op.f("ix_parcels_site_id"), "parcels", ["site_id"], unique=False)
    op.create_index(op.f("ix_parcels_state"), "parcels", ["state"], unique=False)
    op.create_table(
        "parcel_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcels.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_parcel_transitions_parcel_id"), "parcel_transitions", ["parcel_id"], unique=False
    )
    op.create_table(
        "pickup_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("cabinet_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cabinet_id"],
            ["cabinets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcels.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_pickup_credentials_cabinet_kind",
        "pickup_credentials",
        ["cabinet_id", "kind"],
        unique=False,
    )
    op.create_index(
        op.f("ix_pickup_credentials_parcel_id"), "pickup_credentials", ["parcel_id"], unique=False
    )
    size_classes = sa.table(
        "size_classes",
        sa.column("code", sa.String),
        sa.column("rank", sa.Integer),
        sa.column("inner_height_mm", sa.Integer),
        sa.column("inner_width_mm", sa.Integer),
        sa.column("inner_depth_mm", sa.Integer),
    )
    op.bulk_insert(size_classes, list(DEFAULT_SIZE_CLASSES))


def downgrade() -> None:
    op.drop_table("pickup_credentials")
    op.drop_table("parcel_transitions")
    op.drop_table("parcels")
    op.drop_table("door_commands")
    op.drop_table("pickup_failures")
    op.drop_table("doors")
    op.drop_table("couriers")
    op.drop_table("cabinets")
    op.drop_table("size_classes")
    op.drop_table("sites")
    op.drop_table("recipients")
    op.drop_table("carriers")
