"""``/api/v1/notifications``: the outbox as operators see it, and resending failures.

Destinations are masked (``a***@example.org``); codes are never in the outbox in
plaintext, and nothing sealed leaves the server. Site-limited operators see only messages
about parcels at their sites.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlmodel import Session

from locker_server.api.deps import (
    MAX_ID,
    AuditDep,
    ClientContext,
    IdPath,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.notifications.models import NotificationMessage, Status
from locker_server.notifications.outbox import (
    MessageFilter,
    count_messages,
    list_messages,
    mask_destination,
)
from locker_server.services.context import Caller
from locker_server.services.notices import resend_message, visible_message

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

Operator = Annotated[Principal, Depends(require_roles(Role.operator))]


class NotificationPublic(BaseModel):
    id: int
    event_id: str
    kind: str
    event: str
    parcel_id: int | None
    recipient_id: int | None
    carrier_id: int | None
    language: str
    destination: str  # masked
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _public(message: NotificationMessage) -> NotificationPublic:
    assert message.id is not None
    return NotificationPublic(
        id=message.id,
        event_id=message.event_id,
        kind=message.kind,
        event=message.event,
        parcel_id=message.parcel_id,
        recipient_id=message.recipient_id,
        carrier_id=message.carrier_id,
        language=message.language,
        destination=mask_destination(message.kind, message.destination),
        status=Status(message.status),
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at,
        last_error=message.last_error,
        created_at=message.created_at,
        delivered_at=message.delivered_at,
    )


def _visible(session: Session, principal: Principal, message_id: int) -> NotificationMessage:
    return visible_message(session, message_id, principal.site_ids)


@router.get("", summary="List notifications (e.g. ?status=failed), newest first")
def list_(
    session: SessionDep,
    page: PageDep,
    principal: Operator,
    status: Status | None = None,
    parcel_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[NotificationPublic]:
    where = MessageFilter(status=status, parcel_id=parcel_id, site_ids=principal.site_ids)
    items = list_messages(session, where, limit=page.limit, offset=page.offset)
    return Page[NotificationPublic](
        items=[_public(m) for m in items],
        total=count_messages(session, where),
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{notification_id}", summary="Read one notification")
def read(notification_id: IdPath, session: SessionDep, principal: Operator) -> NotificationPublic:
    return _public(_visible(session, principal, notification_id))


@router.post(
    "/{notification_id}/resend",
    summary="Queue a failed notification again (same event id, fresh attempts)",
)
def resend_(
    notification_id: IdPath,
    session: SessionDep,
    audit: AuditDep,
    client: ClientContext,
    principal: Operator,
) -> NotificationPublic:
    caller = Caller(actor=principal.actor, channel=client.channel, source=client.source)
    message = resend_message(
        session, audit, notification_id, caller=caller, site_ids=principal.site_ids
    )
    return _public(message)
