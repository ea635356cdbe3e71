"""Operators' handling of the notification outbox: reading what failed, sending it again.

The outbox rules are in ``locker_server.notifications.outbox``; this adds who may touch
which message (a site-limited operator: only messages about their sites' parcels) and the
audit entry of a resend, for the API and the console alike.
"""

from __future__ import annotations

from sqlmodel import Session

from locker_server.audit import AuditEvent, AuditLog
from locker_server.errors import PermissionDenied
from locker_server.notifications.models import NotificationMessage
from locker_server.notifications.outbox import get_message, resend, site_of
from locker_server.services.cabinets import Scope
from locker_server.services.context import Caller


def visible_message(session: Session, message_id: int, site_ids: Scope) -> NotificationMessage:
    """The message, if the caller's sites cover its parcel (``PermissionDenied`` if not)."""
    message = get_message(session, message_id)
    if site_ids is not None:
        site_id = site_of(session, message)
        if site_id is None or site_id not in site_ids:
            raise PermissionDenied(f"no access to notification {message_id}")
    return message


def resend_message(
    session: Session, audit: AuditLog, message_id: int, *, caller: Caller, site_ids: Scope
) -> NotificationMessage:
    """Queue a failed or cancelled message again, audited as ``notification.resent``."""
    visible_message(session, message_id, site_ids)
    message = resend(session, message_id)
    audit.record(
        session,
        AuditEvent(
            action="notification.resent",
            actor=caller.actor,
            outcome="success",
            channel=caller.channel,
            source=caller.source,
            parcel_id=message.parcel_id,
            recipient_id=message.recipient_id,
            details={"message_id": message.id, "kind": message.kind, "event": message.event},
        ),
    )
    return message
