"""``/api/v1/api-keys``: API keys of carrier integrations (admin only).

The full key is in the creation answer only; afterwards only its prefix is shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from locker_server.api.deps import (
    MAX_ID,
    AuditDep,
    ClientContext,
    IdPath,
    KeysDep,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.auth.api_key_admin import create_api_key, list_api_keys, revoke_api_key
from locker_server.auth.models import ApiKey
from locker_server.auth.origin import Origin
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])

AdminOnly = Annotated[Principal, Depends(require_roles(Role.admin))]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier_id: int = Field(ge=1, le=MAX_ID, strict=True, description="The carrier it acts for")
    name: str = Field(min_length=1, max_length=100, pattern=r"\S", description="Who uses the key")


class ApiKeyPublic(BaseModel):
    id: int
    prefix: str
    name: str
    role: Role
    carrier_id: int
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The full key: shown this once, store it now")


def _public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(row, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a carrier API key")
def create(
    body: ApiKeyCreate,
    session: SessionDep,
    audit: AuditDep,
    keys: KeysDep,
    client: ClientContext,
    principal: AdminOnly,
) -> ApiKeyCreated:
    origin = Origin(principal.actor, client.channel, client.source)
    created = create_api_key(
        session,
        audit,
        keys,
        origin,
        carrier_id=body.carrier_id,
        name=body.name,
        created_by=principal.id if principal.kind == "user" else None,
    )
    return ApiKeyCreated(**_public(created.row).model_dump(), key=created.key)


@router.get("", summary="List API keys (without their secrets)")
def list_(
    session: SessionDep,
    page: PageDep,
    _admin: AdminOnly,
    carrier_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[ApiKeyPublic]:
    rows, total = list_api_keys(
        session, carrier_id=carrier_id, limit=page.limit, offset=page.offset
    )
    items = [_public(row) for row in rows]
    return Page[ApiKeyPublic](items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/{api_key_id}/revoke", summary="Revoke an API key (it stops working at once)")
def revoke(
    api_key_id: IdPath,
    session: SessionDep,
    audit: AuditDep,
    client: ClientContext,
    principal: AdminOnly,
) -> ApiKeyPublic:
    origin = Origin(principal.actor, client.channel, client.source)
    return _public(revoke_api_key(session, audit, origin, api_key_id))
