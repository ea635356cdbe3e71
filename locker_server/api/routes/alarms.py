"""``/api/v1/alarms``: alarms raised at cabinets, listed, read and acknowledged with a note.

Operators and security staff read them; both may acknowledge (the one change security
staff may make: ``ALARM_ACKNOWLEDGERS``). A site-limited principal sees and acknowledges
only its sites' alarms; another site's alarm answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from locker_server.api.deps import MAX_ID, IdPath, Page, PageDep, SessionDep, require_roles
from locker_server.api.paging import page_of
from locker_server.api.routes._domain import READERS, CallerDep, DomainDepsDep, site_scope
from locker_server.auth.principal import Principal
from locker_server.auth.roles import ALARM_ACKNOWLEDGERS
from locker_server.models import Alarm, AlarmAcknowledge, AlarmPublic, AlarmState
from locker_server.models.alarms import MAX_KIND
from locker_server.services import alarms

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

Reader = Annotated[Principal, Depends(require_roles(*READERS))]
Acknowledger = Annotated[Principal, Depends(require_roles(*ALARM_ACKNOWLEDGERS))]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Kind = Annotated[
    str | None, Query(min_length=1, max_length=MAX_KIND, description="e.g. `door_forced_open`")
]
State = Annotated[
    AlarmState | None,
    Query(
        description="`open`: neither acknowledged nor cleared; `cleared`: its condition "
        "ended, not yet acknowledged; `acknowledged`: handled"
    ),
]


def _public(alarm: Alarm) -> AlarmPublic:
    return AlarmPublic.model_validate(alarm, update={"state": alarm.state})


@router.get("", summary="List alarms, newest first")
def list_alarms(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    state: State = None,
    site_id: OptionalId = None,
    cabinet_id: OptionalId = None,
    kind: Kind = None,
) -> Page[AlarmPublic]:
    """Alarms of the caller's sites matching the filters, newest first."""
    where = alarms.AlarmFilter(state=state, site_id=site_id, cabinet_id=cabinet_id, kind=kind)
    rows, total = alarms.list_alarms(
        session, where, site_ids=site_scope(principal), limit=page.limit, offset=page.offset
    )
    return page_of(rows, total, page, _public)


@router.get("/{alarm_id}", summary="Read an alarm")
def read_alarm(alarm_id: IdPath, session: SessionDep, principal: Reader) -> AlarmPublic:
    return _public(alarms.get_alarm(session, alarm_id, site_ids=site_scope(principal)))


@router.post("/{alarm_id}/acknowledge", summary="Acknowledge an alarm with a note")
def acknowledge_alarm(
    alarm_id: IdPath,
    body: AlarmAcknowledge,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Acknowledger,
) -> AlarmPublic:
    """Once per alarm: a second acknowledgement is `409 alarm_already_acknowledged`."""
    alarm = alarms.acknowledge(
        session, deps, alarm_id, note=body.note, user_id=principal.id, caller=caller,
        site_ids=site_scope(principal),
    )  # fmt: skip
    return _public(alarm)
