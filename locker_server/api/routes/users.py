"""``/api/v1/users``: user accounts (admin), and ``/me`` for whoever is calling."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlmodel import Session

from locker_server.api.deps import (
    MAX_ID,
    AuditDep,
    ClientContext,
    ClientInfo,
    CurrentPrincipal,
    IdPath,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.auth.models import User
from locker_server.auth.origin import Origin
from locker_server.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from locker_server.auth.principal import Principal, PrincipalKind
from locker_server.auth.roles import Role
from locker_server.auth.users import (
    USERNAME_PATTERN,
    NewUser,
    UserChange,
    create_user,
    get_user,
    list_users,
    site_ids_of,
    update_user,
)
from locker_server.models.people import EMAIL_PATTERN
from locker_server.models.types import NotNull

router = APIRouter(prefix="/api/v1/users", tags=["users"])

AdminOnly = Annotated[Principal, Depends(require_roles(Role.admin))]
SiteId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
Email = Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description="Login name")
    password: Password
    role: Role
    site_ids: list[SiteId] = Field(
        default_factory=list, max_length=1000, description="Sites it is limited to; [] = all"
    )
    courier_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, strict=True, description="For a courier: its courier"
    )
    email: Email | None = Field(default=None, description="Where alarms are sent (operators)")


class UserUpdate(BaseModel):
    """Only the fields sent change (none may be null). ``site_ids: []`` gives access to all
    sites. A new password ends every access token issued before it."""

    model_config = ConfigDict(extra="forbid")

    role: NotNull[Role] = None
    active: NotNull[StrictBool] = None
    site_ids: NotNull[list[SiteId]] = Field(default=None, max_length=1000)
    courier_id: NotNull[StrictInt] = Field(default=None, ge=1, le=MAX_ID)
    password: NotNull[Password] = None
    email: Email | None = Field(default=None, description="null removes it")


class UserPublic(BaseModel):
    id: int
    username: str
    role: Role
    active: bool
    all_sites: bool
    site_ids: list[int]
    courier_id: int | None
    email: str | None
    created_at: datetime


class Me(BaseModel):
    kind: PrincipalKind
    id: int
    name: str
    role: Role
    site_ids: list[int] | None = Field(description="null: all sites")
    carrier_id: int | None
    courier_id: int | None


def _public(session: Session, user: User) -> UserPublic:
    assert user.id is not None
    return UserPublic(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        active=user.active,
        all_sites=user.all_sites,
        site_ids=list(site_ids_of(session, user)),
        courier_id=user.courier_id,
        email=user.email,
        created_at=user.created_at,
    )


def _origin(principal: Principal, client: ClientInfo) -> Origin:
    return Origin(principal.actor, client.channel, client.source)


@router.get("/me", summary="Who am I (role, site scope, carrier)")
def read_me(principal: CurrentPrincipal) -> Me:
    sites = None if principal.site_ids is None else sorted(principal.site_ids)
    return Me(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        site_ids=sites,
        carrier_id=principal.carrier_id,
        courier_id=principal.courier_id,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user account")
def create(
    body: UserCreate,
    session: SessionDep,
    audit: AuditDep,
    client: ClientContext,
    principal: AdminOnly,
) -> UserPublic:
    new = NewUser(
        username=body.username,
        password=body.password,
        role=body.role,
        site_ids=tuple(body.site_ids),
        courier_id=body.courier_id,
        email=body.email,
    )
    user = create_user(session, audit, _origin(principal, client), new)
    return _public(session, user)


@router.get("", summary="List user accounts")
def list_(session: SessionDep, page: PageDep, _admin: AdminOnly) -> Page[UserPublic]:
    users, total = list_users(session, limit=page.limit, offset=page.offset)
    items = [_public(session, user) for user in users]
    return Page[UserPublic](items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{user_id}", summary="Read a user account")
def read(user_id: IdPath, session: SessionDep, _admin: AdminOnly) -> UserPublic:
    return _public(session, get_user(session, user_id))


@router.patch("/{user_id}", summary="Change role, site scope, activity or password")
def update(
    user_id: IdPath,
    body: UserUpdate,
    session: SessionDep,
    audit: AuditDep,
    client: ClientContext,
    principal: AdminOnly,
) -> UserPublic:
    change = UserChange(
        role=body.role,
        active=body.active,
        site_ids=None if body.site_ids is None else tuple(body.site_ids),
        courier_id=body.courier_id,
        password=body.password,
        email=body.email,
        change_email="email" in body.model_fields_set,
    )
    user = update_user(session, audit, _origin(principal, client), user_id, change)
    return _public(session, user)
