"""``/api/v1/recipients``: the recipient directory (staff only; personal data stays here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from locker_server.api.deps import IdPath, SessionDep, require_roles
from locker_server.api.routes._domain import STAFF, CallerDep, DomainDepsDep
from locker_server.auth.principal import Principal
from locker_server.models import RecipientCreate, RecipientPublic, RecipientUpdate
from locker_server.services import directory

router = APIRouter(prefix="/api/v1/recipients", tags=["recipients"])

Staff = Annotated[Principal, Depends(require_roles(*STAFF))]


@router.get("")
def list_recipients(
    session: SessionDep, _principal: Staff, active_only: bool = False
) -> list[RecipientPublic]:
    recipients = directory.list_recipients(session, active_only=active_only)
    return [RecipientPublic.model_validate(recipient) for recipient in recipients]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_recipient(
    body: RecipientCreate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    _principal: Staff,
) -> RecipientPublic:
    recipient = directory.create_recipient(session, deps, body, caller=caller)
    return RecipientPublic.model_validate(recipient)


@router.get("/{recipient_id}")
def get_recipient(recipient_id: IdPath, session: SessionDep, _principal: Staff) -> RecipientPublic:
    return RecipientPublic.model_validate(directory.get_recipient(session, recipient_id))


@router.patch("/{recipient_id}")
def update_recipient(
    recipient_id: IdPath,
    body: RecipientUpdate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    _principal: Staff,
) -> RecipientPublic:
    recipient = directory.update_recipient(session, deps, recipient_id, body, caller=caller)
    return RecipientPublic.model_validate(recipient)
