"""The console's alarms: open ones first, each with its place and what was seen, and an
acknowledge form with a note (security staff and operators, ``ALARM_ACKNOWLEDGERS``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from locker_server.api.deps import ClientContext, IdPath, KeysDep, SessionDep
from locker_server.api.routes._domain import DomainDepsDep
from locker_server.auth.roles import ALARM_ACKNOWLEDGERS, Role
from locker_server.errors import DomainError
from locker_server.models.alarms import AlarmState
from locker_server.services import Caller, alarms, console
from locker_server.web.common import Viewer, csrf_refused, gate, render

router = APIRouter(include_in_schema=False)

READERS = (Role.operator, Role.security)
PAGE_SIZE = 200


@router.get("/alarms")
def alarms_page(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = gate(request, session, keys, *READERS)
    if isinstance(viewer, Response):
        return viewer
    return _alarms_view(request, session, viewer)


def _alarms_view(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    wanted = request.query_params.get("state", "open")
    state = AlarmState(wanted) if wanted in AlarmState.__members__ else None
    rows, total = alarms.list_alarms(
        session, alarms.AlarmFilter(state=state), site_ids=viewer.principal.site_ids,
        limit=PAGE_SIZE, offset=0,
    )  # fmt: skip
    places = [{"site_id": a.site_id, "cabinet_id": a.cabinet_id} for a in rows]
    return render(
        request, "alarms.html", viewer=viewer, alarms=rows, total=total,
        state=wanted, names=console.entry_names(session, places),
        can_acknowledge=viewer.principal.role in (*ALARM_ACKNOWLEDGERS, Role.admin),
        problem=problem, status_code=status_code,
    )  # fmt: skip


@router.post("/alarms/{alarm_id}/acknowledge")
def alarm_acknowledge(
    alarm_id: IdPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    viewer = gate(request, session, keys, *ALARM_ACKNOWLEDGERS)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    if len(note.strip()) < 3:
        return _alarms_view(
            request, session, viewer, problem="note: say what was done (at least 3 characters)",
            status_code=422,
        )  # fmt: skip
    principal = viewer.principal
    caller = Caller(actor=principal.actor, channel=client.channel, source=client.source)
    try:
        alarms.acknowledge(
            session, deps, alarm_id, note=note.strip(), user_id=principal.id, caller=caller,
            site_ids=principal.site_ids,
        )  # fmt: skip
    except DomainError as exc:
        session.rollback()
        if exc.http_status == 404:
            return render(request, "not_found.html", viewer=viewer, status_code=404)
        return _alarms_view(request, session, viewer, problem=str(exc), status_code=exc.http_status)
    return RedirectResponse("/alarms", status_code=303)
