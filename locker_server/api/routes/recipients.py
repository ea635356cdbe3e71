"""``/api/v1/recipients``: the recipient directory (staff only; personal data stays here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from locker_server.api.deps import IdPath, Page, PageDep, SessionDep, require_roles
from locker_server.api.paging import page_of
from locker_server.api.routes._domain import STAFF, CallerDep, DomainDepsDep
from locker_server.auth.principal import Principal
from locker_server.models import RecipientCreate, RecipientPublic, RecipientUpdate
from locker_server.services import directory
from locker_server.services.listing import paged

router = APIRouter(prefix="/api/v1/recipients", tags=["recipients"])

Staff = Annotated[Principal, Depends(require_roles(*STAFF))]


@router.get("", summary="List or search recipients")
def list_recipients(
    session: SessionDep,
    _principal: Staff,
    page: PageDep,
    active_only: Annotated[bool, Query(description="Only active recipients")] = False,
    search: Annotated[
        str | None,
        Query(min_length=1, max_length=120, description="A part of the name or e-mail (any case)"),
    ] = None,
) -> Page[RecipientPublic]:
    """The recipient directory (operators, admins), searched by a part of the name or e-mail."""
    query = directory.recipients_query(active_only=active_only, search=search)
    rows, total = paged(session, query, limit=page.limit, offset=page.offset)
    return page_of(rows, total, page, RecipientPublic.model_validate)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_recipient(
    body: RecipientCreate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    _principal: Staff,
) -> RecipientPublic:
    """Add a recipient; parcels may be announced for them only with `consent_locker_delivery`."""
    recipient = directory.create_recipient(session, deps, body, caller=caller)
    return RecipientPublic.model_validate(recipient)


@router.get("/{recipient_id}")
def get_recipient(recipient_id: IdPath, session: SessionDep, _principal: Staff) -> RecipientPublic:
    """One recipient (operators, admins)."""
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
    """Change a recipient: only the fields sent change; contact fields are cleared with null."""
    recipient = directory.update_recipient(session, deps, recipient_id, body, caller=caller)
    return RecipientPublic.model_validate(recipient)
