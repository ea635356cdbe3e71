"""The console's parcel and door pages: search, a parcel's chain of custody, a door's
timeline, the operators' actions on a parcel and the remote open of a door.

Security staff and operators read these pages; only operators (and admins) act. Every
action is a POST form with the session's CSRF token and goes through the same services as
the API, so it is checked and audited the same way (channel ``web``). A parcel or door
outside the viewer's sites answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from locker_server.api.deps import (
    AuditDep,
    ClientContext,
    ClientInfo,
    IdPath,
    KeysDep,
    LinkPublisherDep,
    SessionDep,
    record_refusal,
)
from locker_server.api.routes._domain import DomainDepsDep
from locker_server.audit import AuditLog
from locker_server.audit.export import EntryFilter
from locker_server.audit.service import Reader, browse_entries
from locker_server.auth.roles import Role
from locker_server.auth.users import usernames
from locker_server.errors import DomainError, PermissionDenied
from locker_server.models import CabinetUpdate, DoorUpdate, ParcelState, ServiceState
from locker_server.notifications.models import Status
from locker_server.notifications.outbox import RESENDABLE, MessageFilter, list_messages
from locker_server.services import Caller, DomainDeps, console, layout, notices, parcels
from locker_server.services.commands import issue_command
from locker_server.web.common import Viewer, csrf_refused, gate, render

router = APIRouter(include_in_schema=False)

READERS = (Role.operator, Role.security)
#: How much of a parcel's or a door's history one page shows.
TIMELINE_LIMIT = 500
PARCEL_ACTIONS = ("extend", "reissue", "cancel", "collect")
CsrfField = Annotated[str, Form(max_length=256)]
ReasonField = Annotated[str, Form(max_length=255)]


def _caller(viewer: Viewer, client: ClientInfo) -> Caller:
    return Caller(actor=viewer.principal.actor, channel=client.channel, source=client.source)


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render(request, "not_found.html", viewer=viewer, status_code=404)


def _timeline(
    session: Session,
    audit: AuditLog,
    viewer: Viewer,
    client: ClientInfo,
    *,
    parcel_id: int | None = None,
    door_id: int | None = None,
) -> dict[str, Any]:
    """Every audit entry about one parcel or door, oldest first, with names resolved; the
    look itself is recorded as ``audit.viewed``."""
    principal = viewer.principal
    reader = Reader(actor=principal.actor, channel=client.channel, source=client.source)
    entry_filter = EntryFilter(
        allowed_sites=principal.site_ids, parcel_id=parcel_id, door_id=door_id
    )
    page = browse_entries(audit, session, reader, entry_filter, before=None, limit=TIMELINE_LIMIT)
    entries = list(reversed(page.entries))
    user_ids = [int(e["actor_id"]) for e in entries if e["actor_type"] == "user"]
    return {
        "entries": entries,
        "truncated": page.older_than is not None,
        "names": console.entry_names(session, entries),
        "users": usernames(session, user_ids),
    }


# --- parcels -------------------------------------------------------------------------------


@router.get("/parcels")
def parcels_page(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = gate(request, session, keys, *READERS)
    if isinstance(viewer, Response):
        return viewer
    text = request.query_params.get("q", "").strip()[:64]
    state = request.query_params.get("state", "")
    state = state if state in ParcelState.__members__ else ""
    rows = console.find_parcels(
        session, viewer.principal.site_ids, text=text or None, state=state or None, limit=100
    )
    return render(
        request, "parcels.html", viewer=viewer, rows=rows, text=text, state=state,
        states=list(ParcelState),
    )  # fmt: skip


@router.get("/parcels/{parcel_id}")
def parcel_page(
    parcel_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
) -> Response:
    viewer = gate(request, session, keys, *READERS)
    if isinstance(viewer, Response):
        return viewer
    return _parcel_view(request, session, audit, viewer, client, parcel_id)


def _parcel_view(
    request: Request,
    session: Session,
    audit: AuditLog,
    viewer: Viewer,
    client: ClientInfo,
    parcel_id: int,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    parcel = console.visible_parcel(session, viewer.principal.site_ids, parcel_id)
    if parcel is None:
        return _not_found(request, viewer)
    names = console.entry_names(
        session,
        [{"site_id": parcel.site_id, "cabinet_id": parcel.cabinet_id, "door_id": parcel.door_id}],
    )
    return render(
        request,
        "parcel.html",
        viewer=viewer,
        parcel=parcel,
        place=names,
        can_act=viewer.principal.role in (Role.operator, Role.admin),
        done=request.query_params.get("done") if problem is None else None,
        problem=problem,
        status_code=status_code,
        **_timeline(session, audit, viewer, client, parcel_id=parcel_id),
    )


@router.post("/parcels/{parcel_id}/{action}")
def parcel_action(
    parcel_id: IdPath,
    action: str,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
    reason: ReasonField = "",
    hours: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    if action not in PARCEL_ACTIONS:
        return _not_found(request, viewer)
    if console.visible_parcel(session, viewer.principal.site_ids, parcel_id) is None:
        return _not_found(request, viewer)
    try:
        _act(session, deps, action, parcel_id, _caller(viewer, client), reason=reason, hours=hours)
    except DomainError as exc:
        session.rollback()
        if isinstance(exc, PermissionDenied):
            record_refusal(request, action="access.denied", reason=str(exc)[:200])
        return _parcel_view(
            request, session, audit, viewer, client, parcel_id,
            problem=str(exc), status_code=exc.http_status,
        )  # fmt: skip
    return RedirectResponse(f"/parcels/{parcel_id}?done={action}", status_code=303)


def _act(
    session: Session,
    deps: DomainDeps,
    action: str,
    parcel_id: int,
    caller: Caller,
    *,
    reason: str,
    hours: str,
) -> None:
    if action == "extend":
        hours_value = int(hours) if hours.isdigit() and len(hours) < 5 else 0
        parcels.extend_for_recipient(
            session, deps, parcel_id=parcel_id, hours=hours_value, caller=caller
        )
    elif action == "reissue":
        parcels.reissue_credentials(session, deps, parcel_id=parcel_id, caller=caller)
    elif action == "cancel":
        parcels.cancel(
            session, deps, parcel_id=parcel_id, caller=caller,
            reason=reason.strip() or None, as_operator=True,
        )  # fmt: skip
    else:
        parcels.collect_for_return(session, deps, parcel_id=parcel_id, caller=caller)


# --- doors ---------------------------------------------------------------------------------


@router.get("/doors/{door_id}")
def door_page(
    door_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
) -> Response:
    viewer = gate(request, session, keys, *READERS)
    if isinstance(viewer, Response):
        return viewer
    found = console.visible_door(session, viewer.principal.site_ids, door_id)
    if found is None:
        return _not_found(request, viewer)
    door, cabinet = found
    return render(
        request, "door.html", viewer=viewer, door=door, cabinet=cabinet,
        can_act=viewer.principal.role in (Role.operator, Role.admin),
        **_timeline(session, audit, viewer, client, door_id=door_id),
    )  # fmt: skip


@router.post("/doors/{door_id}/open")
def remote_open(
    door_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    publisher: LinkPublisherDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
    reason: ReasonField = "",
) -> Response:
    """A signed open command, with the operator's reason; the board shows the door open
    only when the cabinet's sensor reports it."""
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    found = console.visible_door(session, viewer.principal.site_ids, door_id)
    if found is None:
        return _not_found(request, viewer)
    door, cabinet = found
    problem: str | None = None
    if len(reason.strip()) < 3:
        problem = "reason: say why the door is opened (at least 3 characters)"
    else:
        try:
            command = issue_command(
                session, publisher, keys, cabinet_id=cabinet.id or 0, action="open_door",
                door=door.number, reason=reason.strip(), caller=_caller(viewer, client),
                audit=audit,
            )  # fmt: skip
        except DomainError as exc:
            session.rollback()
            problem = str(exc)
        else:
            return RedirectResponse(
                f"/doors/{door_id}?command={command.command_id}", status_code=303
            )
    return render(
        request, "door.html", viewer=viewer, door=door, cabinet=cabinet, can_act=True,
        problem=problem, status_code=422,
        **_timeline(session, audit, viewer, client, door_id=door_id),
    )  # fmt: skip


@router.post("/doors/{door_id}/service")
def door_service(
    door_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
    service_state: Annotated[str, Form(max_length=32)] = "",
    reason: ReasonField = "",
) -> Response:
    """Take a door out of service (with a reason) or back in."""
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    found = console.visible_door(session, viewer.principal.site_ids, door_id)
    if found is None or service_state not in ServiceState.__members__:
        return _not_found(request, viewer)
    door, cabinet = found
    change = DoorUpdate(
        service_state=ServiceState(service_state), service_reason=reason.strip() or None
    )
    try:
        layout.update_door(
            session, deps, cabinet.id or 0, door_id, change, caller=_caller(viewer, client),
            site_ids=viewer.principal.site_ids,
        )  # fmt: skip
    except DomainError as exc:
        session.rollback()
        return render(request, "door.html", viewer=viewer, door=door, cabinet=cabinet,
                      can_act=True, problem=str(exc), status_code=exc.http_status,
                      entries=[], names=None, users={})  # fmt: skip
    return RedirectResponse(f"/doors/{door_id}", status_code=303)


@router.post("/cabinets/{cabinet_id}/maintenance")
def cabinet_maintenance(
    cabinet_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
    maintenance: Annotated[str, Form(max_length=8)] = "",
    reason: ReasonField = "",
) -> Response:
    """Start (with a reason) or end a cabinet's maintenance mode."""
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    if maintenance not in ("on", "off"):
        return _not_found(request, viewer)
    starting = maintenance == "on"
    change = CabinetUpdate(
        maintenance=starting, maintenance_reason=reason.strip() or None if starting else None
    )
    try:
        layout.update_cabinet(
            session, deps, cabinet_id, change, caller=_caller(viewer, client),
            site_ids=viewer.principal.site_ids,
        )  # fmt: skip
    except DomainError as exc:
        session.rollback()
        if exc.http_status == 404:
            return _not_found(request, viewer)
        raise
    return RedirectResponse("/cabinets", status_code=303)


# --- notifications -------------------------------------------------------------------------


@router.get("/notifications")
def notifications_page(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    """Failed notifications first (or all), newest first, each with a resend button."""
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    return _notifications_view(request, session, viewer)


def _notifications_view(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    wanted = request.query_params.get("status", "failed")
    status = None if wanted == "all" else Status.failed
    where = MessageFilter(status=status, site_ids=viewer.principal.site_ids)
    return render(
        request, "notifications.html", viewer=viewer,
        messages=list_messages(session, where, limit=200),
        resendable={state.value for state in RESENDABLE}, problem=problem,
        status_code=status_code,
    )  # fmt: skip


@router.post("/notifications/{message_id}/resend")
def notification_resend(
    message_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
    csrf_token: CsrfField = "",
) -> Response:
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    try:
        notices.resend_message(
            session, audit, message_id, caller=_caller(viewer, client),
            site_ids=viewer.principal.site_ids,
        )  # fmt: skip
    except PermissionDenied:
        session.rollback()
        record_refusal(request, action="access.denied", reason="notification of another site")
        return _not_found(request, viewer)
    except DomainError as exc:
        session.rollback()
        if exc.http_status == 404:
            return _not_found(request, viewer)
        return _notifications_view(
            request, session, viewer, problem=str(exc), status_code=exc.http_status
        )
    return RedirectResponse("/notifications?resent=1", status_code=303)
