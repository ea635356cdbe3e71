"""The transactional outbox: one row per message to deliver on one channel.

Rows are written in the caller's transaction (so a rolled-back parcel change never
notifies anyone) and delivered later by :class:`~locker_server.notifications.worker.
NotificationWorker`. Pickup secrets are kept only sealed (AES-256-GCM) in
``sealed_secret`` and wiped once the message is delivered.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from locker_server.models.types import UTCDateTime, utcnow


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    webhook = "webhook"


class Status(StrEnum):
    pending = "pending"
    sending = "sending"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"


class RecipientEvent(StrEnum):
    pickup_ready = "pickup_ready"
    reminder = "reminder"
    expired = "expired"


class NotificationMessage(SQLModel, table=True):
    """One message on one channel (email, sms or webhook) and its delivery state."""

    __tablename__ = "notification_outbox"
    __table_args__ = (sa.Index("ix_notification_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    #: Stable across retries: webhook id, idempotency key and email Message-ID.
    event_id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        sa_type=sa.String(36),
        unique=True,
        index=True,
        nullable=False,
    )
    kind: str = Field(sa_type=sa.String(16), nullable=False)
    event: str = Field(sa_type=sa.String(64), nullable=False)
    parcel_id: int | None = Field(default=None, foreign_key="parcels.id", index=True)
    # Plain ids, no foreign keys: the delivery record outlives directory changes.
    recipient_id: int | None = Field(default=None)
    carrier_id: int | None = Field(default=None)
    language: str = Field(default="en", sa_type=sa.String(16), nullable=False)
    #: Email address, phone number or webhook URL: personal data, kept only here.
    destination: str = Field(sa_type=sa.String(2048), nullable=False)
    #: Template parameters (or the webhook payload); never a code or a token.
    params: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    #: AES-256-GCM nonce + ciphertext of the pickup code and QR token; wiped on delivery.
    sealed_secret: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    status: str = Field(default=Status.pending, sa_type=sa.String(16), nullable=False)
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    #: Why the last attempt failed, without secrets or addresses.
    last_error: str | None = Field(default=None, sa_type=sa.String(500))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
