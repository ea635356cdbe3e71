"""Tables of the audit log.

* ``audit_entries``: the append-only, hash-chained log (gapless ``seq`` from 1).
* ``audit_checkpoints``: Ed25519-signed ``(seq, entry_hash, signed_at)`` anchors, append-only.
* ``audit_head``: one row (id 1) naming the chain's tip. Appenders lock it first (row lock
  on PostgreSQL, the database write lock on SQLite), which serialises appends and keeps the
  sequence gapless. It is a cache and a lock, never trusted by verification — except that a
  head that disagrees with the entries is itself reported.

On PostgreSQL the migration adds triggers refusing UPDATE, DELETE and TRUNCATE on the two
append-only tables; on SQLite, triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

HEAD_ID = 1


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entries"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger(), primary_key=True, autoincrement=False))
    recorded_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True)
    )
    device_time: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    actor_type: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64, index=True)
    outcome: str = Field(max_length=32)
    site_id: int | None = Field(default=None, sa_type=sa.BigInteger(), index=True)
    cabinet_id: int | None = Field(default=None, sa_type=sa.BigInteger(), index=True)
    door_id: int | None = Field(default=None, sa_type=sa.BigInteger())
    parcel_id: int | None = Field(default=None, sa_type=sa.BigInteger(), index=True)
    recipient_id: int | None = Field(default=None, sa_type=sa.BigInteger())
    channel: str = Field(max_length=16)
    source: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    #: Canonical JSON text (sorted keys), hashed exactly as stored.
    details: str = Field(sa_type=sa.Text())
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64, unique=True, index=True)


class AuditCheckpoint(SQLModel, table=True):
    __tablename__ = "audit_checkpoints"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger(), primary_key=True, autoincrement=False))
    entry_hash: str = Field(max_length=64)
    signed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class AuditHead(SQLModel, table=True):
    __tablename__ = "audit_head"

    id: int = Field(sa_column=sa.Column(sa.Integer(), primary_key=True, autoincrement=False))
    seq: int = Field(sa_type=sa.BigInteger())
    entry_hash: str = Field(max_length=64)
    last_checkpoint_seq: int = Field(sa_type=sa.BigInteger())
    last_checkpoint_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


entries_table: sa.Table = SQLModel.metadata.tables[AuditEntry.__tablename__]
checkpoints_table: sa.Table = SQLModel.metadata.tables[AuditCheckpoint.__tablename__]
head_table: sa.Table = SQLModel.metadata.tables[AuditHead.__tablename__]
