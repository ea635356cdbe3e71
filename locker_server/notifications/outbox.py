"""Operator actions on the outbox: list messages, resend failed ones, cancel stale ones.

Used by the API routes and the CLI; each takes the caller's session (the caller commits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from locker_server.notifications.errors import MessageNotFound, NotResendable
from locker_server.notifications.models import (
    Channel,
    NotificationMessage,
    RecipientEvent,
    Status,
    utc_now,
)

RESENDABLE = frozenset({Status.failed, Status.cancelled})
_OPEN = (Status.pending, Status.sending, Status.failed)


def list_messages(
    session: Session,
    *,
    status: Status | None = None,
    parcel_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[NotificationMessage]:
    """Newest first, optionally only one status (e.g. ``failed``) or one parcel."""
    statement = select(NotificationMessage)
    if status is not None:
        statement = statement.where(NotificationMessage.status == status)
    if parcel_id is not None:
        statement = statement.where(NotificationMessage.parcel_id == parcel_id)
    statement = statement.order_by(col(NotificationMessage.id).desc()).offset(offset).limit(limit)
    return session.exec(statement).all()


def get_message(session: Session, message_id: int) -> NotificationMessage:
    message = session.get(NotificationMessage, message_id)
    if message is None:
        raise MessageNotFound(f"notification {message_id} not found")
    return message


def resend(
    session: Session, message_id: int, *, clock: Callable[[], datetime] = utc_now
) -> NotificationMessage:
    """Queue a failed (or cancelled) message again, with a fresh round of attempts.

    It works because the pickup secret is wiped only after a successful delivery. The
    event id stays the same, so a receiver that did get an earlier try can deduplicate.
    """
    message = get_message(session, message_id)
    if message.status not in RESENDABLE:
        raise NotResendable(f"notification {message_id} is {message.status}, not failed")
    if message.event == RecipientEvent.pickup_ready and message.sealed_secret is None:
        raise NotResendable(f"the pickup code of notification {message_id} was voided")
    message.status = Status.pending
    message.attempts = 0
    message.next_attempt_at = clock()
    session.add(message)
    session.flush()
    return message


def cancel_pending(session: Session, *, parcel_id: int, events: Sequence[str] = ()) -> int:
    """Cancel undelivered messages of a parcel (picked up, cancelled, code re-issued).

    Their sealed secrets are wiped: a voided code must not be sent later. Returns how
    many messages were cancelled.
    """
    statement = select(NotificationMessage).where(
        NotificationMessage.parcel_id == parcel_id, col(NotificationMessage.status).in_(_OPEN)
    )
    if events:
        statement = statement.where(col(NotificationMessage.event).in_(events))
    messages = session.exec(statement.with_for_update()).all()
    for message in messages:
        message.status = Status.cancelled
        message.sealed_secret = None
        session.add(message)
    session.flush()
    return len(messages)


def mask_destination(kind: str, destination: str) -> str:
    """What operators may see: enough to recognise a destination, not to harvest it."""
    if kind == Channel.email:
        local, _, domain = destination.rpartition("@")
        return f"{local[:1]}***@{domain}" if local else "***"
    if kind == Channel.sms:
        digits = destination.strip()
        return f"{digits[:3]}{'*' * max(len(digits) - 5, 3)}{digits[-2:]}"
    parts = urlsplit(destination)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "***"
