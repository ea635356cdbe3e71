"""The console's account pages, for admins: users (create, deactivate, reset a password,
which ends that user's sessions at once) and couriers (register with their cabinet code,
deactivate). Everything goes through the same services as the API and is audited there.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from locker_server.api.deps import (
    AuditDep,
    ClientContext,
    ClientInfo,
    IdPath,
    KeysDep,
    SessionDep,
)
from locker_server.api.routes._domain import DomainDepsDep
from locker_server.auth.origin import Origin
from locker_server.auth.roles import USER_ROLES, Role
from locker_server.auth.users import NewUser, UserChange, create_user, list_users, update_user
from locker_server.errors import DomainError
from locker_server.models import Carrier, CourierCreate
from locker_server.services import Caller, directory
from locker_server.web.common import Viewer, csrf_refused, gate, render

router = APIRouter(include_in_schema=False)

CsrfField = Annotated[str, Form(max_length=256)]


def _origin(viewer: Viewer, client: ClientInfo) -> Origin:
    return Origin(viewer.principal.actor, client.channel, client.source)


# --- users ---------------------------------------------------------------------------------


@router.get("/users")
def users_page(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = gate(request, session, keys, Role.admin)
    if isinstance(viewer, Response):
        return viewer
    return _users_view(request, session, viewer)


def _users_view(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    problem: str | None = None,
    new_password: str | None = None,
    status_code: int = 200,
) -> Response:
    users, _total = list_users(session, limit=500, offset=0)
    return render(
        request, "users.html", viewer=viewer, users=users,
        roles=sorted(role.value for role in USER_ROLES if role is not Role.courier),
        problem=problem, new_password=new_password, status_code=status_code,
    )  # fmt: skip


@router.post("/users")
def user_create(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
    username: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    viewer = gate(request, session, keys, Role.admin)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    if role not in {r.value for r in USER_ROLES}:
        return _users_view(request, session, viewer, problem="role: choose one", status_code=422)
    try:
        create_user(
            session, audit, _origin(viewer, client),
            NewUser(username=username.strip(), password=password, role=Role(role)),
        )  # fmt: skip
    except DomainError as exc:
        session.rollback()
        return _users_view(request, session, viewer, problem=str(exc), status_code=exc.http_status)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/{change}")
def user_change(
    user_id: IdPath,
    change: str,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
) -> Response:
    """``deactivate``, ``activate`` or ``reset-password`` (a new random password, shown
    once; every session and token of that user ends)."""
    viewer = gate(request, session, keys, Role.admin)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    new_password = secrets.token_urlsafe(12) if change == "reset-password" else None
    changes = {
        "deactivate": UserChange(active=False),
        "activate": UserChange(active=True),
        "reset-password": UserChange(password=new_password),
    }
    if change not in changes:
        return render(request, "not_found.html", viewer=viewer, status_code=404)
    try:
        update_user(session, audit, _origin(viewer, client), user_id, changes[change])
    except DomainError as exc:
        session.rollback()
        return _users_view(request, session, viewer, problem=str(exc), status_code=exc.http_status)
    if new_password is not None:
        return _users_view(request, session, viewer, new_password=new_password)
    return RedirectResponse("/users", status_code=303)


# --- couriers ------------------------------------------------------------------------------


@router.get("/couriers")
def couriers_page(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = gate(request, session, keys, Role.admin)
    if isinstance(viewer, Response):
        return viewer
    return _couriers_view(request, session, viewer)


def _couriers_view(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    carriers = {c.id: c.name for c in session.exec(select(Carrier).order_by(col(Carrier.name)))}
    return render(
        request, "couriers.html", viewer=viewer, couriers=directory.list_couriers(session),
        carriers=carriers, problem=problem, status_code=status_code,
    )  # fmt: skip


@router.post("/couriers")
def courier_create(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
    carrier_id: Annotated[str, Form(max_length=12)] = "",
    name: Annotated[str, Form(max_length=120)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    viewer = gate(request, session, keys, Role.admin)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    caller = Caller(actor=viewer.principal.actor, channel=client.channel, source=client.source)
    try:
        body = CourierCreate.model_validate(
            {"carrier_id": int(carrier_id) if carrier_id.isdigit() else 0, "name": name.strip(),
             "code": code.strip()}
        )  # fmt: skip
        directory.create_courier(session, deps, body, caller=caller)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        return _couriers_view(
            request, session, viewer, problem=_first_problem(exc), status_code=422
        )
    except DomainError as exc:
        session.rollback()
        return _couriers_view(
            request, session, viewer, problem=str(exc), status_code=exc.http_status
        )
    return RedirectResponse("/couriers", status_code=303)


def _first_problem(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return str(exc)


@router.post("/couriers/{courier_id}/{change}")
def courier_change(
    courier_id: IdPath,
    change: str,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
) -> Response:
    viewer = gate(request, session, keys, Role.admin)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    if change not in ("deactivate", "activate"):
        return render(request, "not_found.html", viewer=viewer, status_code=404)
    caller = Caller(actor=viewer.principal.actor, channel=client.channel, source=client.source)
    try:
        directory.set_courier_active(
            session, deps, courier_id, active=change == "activate", caller=caller
        )
    except DomainError as exc:
        session.rollback()
        return _couriers_view(
            request, session, viewer, problem=str(exc), status_code=exc.http_status
        )
    return RedirectResponse("/couriers", status_code=303)
