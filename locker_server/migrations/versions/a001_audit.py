"""audit: append-only hash-chained log, signed checkpoints, chain head

Revision ID: a001_audit
Revises:
Create Date: 2026-11-26 09:30:00

On PostgreSQL, statement-level triggers refuse UPDATE, DELETE and TRUNCATE on
``audit_entries`` and ``audit_checkpoints`` for every role, the owner included (only a
superuser's ``session_replication_role = replica`` or the owner's ``ALTER TABLE ... DISABLE
TRIGGER`` gets past them, which is why production runs the app as a non-owner role: see
docs/audit.md). On SQLite, row triggers refuse UPDATE and DELETE (defence in depth).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a001_audit"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("audit",)
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("audit_entries", "audit_checkpoints")
GENESIS_HASH = "0" * 64

PG_REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    _create_tables()
    _create_indexes()
    op.execute(
        sa.text(
            "INSERT INTO audit_head (id, seq, entry_hash, last_checkpoint_seq) "
            "VALUES (1, 0, :genesis, 0)"
        ).bindparams(genesis=GENESIS_HASH)
    )
    if op.get_bind().dialect.name == "postgresql":
        _protect_postgresql()
    else:
        _protect_sqlite()


def _create_tables() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("cabinet_id", sa.BigInteger(), nullable=True),
        sa.Column("door_id", sa.BigInteger(), nullable=True),
        sa.Column("parcel_id", sa.BigInteger(), nullable=True),
        sa.Column("recipient_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("last_checkpoint_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_checkpoint_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def _create_indexes() -> None:
    with op.batch_alter_table("audit_entries") as batch:
        batch.create_index("ix_audit_entries_recorded_at", ["recorded_at"], unique=False)
        batch.create_index("ix_audit_entries_action", ["action"], unique=False)
        batch.create_index("ix_audit_entries_site_id", ["site_id"], unique=False)
        batch.create_index("ix_audit_entries_cabinet_id", ["cabinet_id"], unique=False)
        batch.create_index("ix_audit_entries_parcel_id", ["parcel_id"], unique=False)
        batch.create_index("ix_audit_entries_entry_hash", ["entry_hash"], unique=True)


def _protect_postgresql() -> None:
    op.execute(PG_REFUSE_FUNCTION)
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")


def _protect_sqlite() -> None:
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
    op.drop_table("audit_head")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_entries")
