"""Operator actions on the outbox: list messages, resend failed ones, cancel stale ones.

Used by the API routes and the CLI; each takes the caller's session (the caller commits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from locker_server.models import Parcel
from locker_server.models.types import utcnow as utc_now
from locker_server.notifications.errors import MessageNotFound, NotResendable
from locker_server.notifications.models import (
    Channel,
    NotificationMessage,
    RecipientEvent,
    Status,
)

T = TypeVar("T")

RESENDABLE = frozenset({Status.failed, Status.cancelled})
_OPEN = (Status.pending, Status.sending, Status.failed)


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which messages to list. ``site_ids`` limits to parcels of those sites (None = all)."""

    status: Status | None = None
    parcel_id: int | None = None
    site_ids: frozenset[int] | None = None

    def apply(self, statement: SelectOfScalar[T]) -> SelectOfScalar[T]:
        if self.status is not None:
            statement = statement.where(NotificationMessage.status == self.status)
        if self.parcel_id is not None:
            statement = statement.where(NotificationMessage.parcel_id == self.parcel_id)
        if self.site_ids is not None:
            in_sites = select(Parcel.id).where(col(Parcel.site_id).in_(self.site_ids))
            statement = statement.where(col(NotificationMessage.parcel_id).in_(in_sites))
        return statement


def list_messages(
    session: Session, where: MessageFilter = MessageFilter(), *, limit: int = 100, offset: int = 0
) -> Sequence[NotificationMessage]:
    """Newest first, e.g. ``MessageFilter(status=Status.failed)`` for what needs a look."""
    statement = where.apply(select(NotificationMessage))
    statement = statement.order_by(col(NotificationMessage.id).desc()).offset(offset).limit(limit)
    return session.exec(statement).all()


def count_messages(session: Session, where: MessageFilter = MessageFilter()) -> int:
    statement = where.apply(select(func.count()).select_from(NotificationMessage))
    return int(session.exec(statement).one())


def site_of(session: Session, message: NotificationMessage) -> int | None:
    """The site of the message's parcel, for site-scoped operators (None: no parcel/site)."""
    if message.parcel_id is None:
        return None
    parcel = session.get(Parcel, message.parcel_id)
    return parcel.site_id if parcel is not None else None


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
