"""Door moves a cabinet did not observe as they happened (found after a gap): recorded
with their marker, and never taken as the confirmation of anything."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.db import session_scope
from locker_server.models import Door, DoorState
from locker_server.models.commands import LinkCommand
from locker_server.services import DomainDeps, commands
from tests.link_bridge.conftest import (
    OPERATOR,
    Bridges,
    CabinetClient,
    CabinetWorld,
    audit_entries,
    event,
    wait_for,
)


def door_state(engine: Engine, cabinet_id: int, number: int) -> str:
    with Session(engine) as session:
        query = select(Door).where(Door.cabinet_id == cabinet_id, Door.number == number)
        return session.exec(query).one().door_state


def command_status(engine: Engine, command_id: str) -> str:
    with Session(engine) as session:
        query = select(LinkCommand).where(LinkCommand.command_id == command_id)
        return session.exec(query).one().status


def test_an_unobserved_opening_is_audited_as_such_and_confirms_no_pending_remote_open(
    engine: Engine,
    deps: DomainDeps,
    bridges: Bridges,
    cabinet: CabinetWorld,
    cabinet_client: CabinetClient,
) -> None:
    bridge, _ = bridges.start()
    with session_scope(engine) as session:
        command = commands.issue_command(
            session, bridge, deps.keys, cabinet_id=cabinet.cabinet_id, action="open_door",
            door=2, reason="courier stuck", caller=OPERATOR, audit=deps.audit,
        )  # fmt: skip
        command_id = command.command_id
    found_open = event("door.opened", door=2, observed=False, detail="found open after a gap")
    alarm = event("alarm", door=2, kind="door_moved_unobserved", detail="door 2 found open")

    cabinet_client.send_events([found_open, alarm])

    assert wait_for(lambda: alarm.event_id in cabinet_client.acked_ids())
    [entry] = audit_entries(engine, "door.opened", cabinet.cabinet_id)
    assert json.loads(entry.details)["observed"] is False
    [raised] = audit_entries(engine, "door.alarm", cabinet.cabinet_id)
    assert (raised.reason, raised.outcome) == ("door_moved_unobserved", "alarm")
    assert door_state(engine, cabinet.cabinet_id, 2) == DoorState.open  # the state it found
    assert command_status(engine, command_id) == "sent"  # still waiting for its cmd/res


def test_an_observed_opening_carries_no_marker_and_a_cleared_alarm_is_audited_as_cleared(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    opened = event("door.opened", door=1)
    raised = event("alarm", door=None, kind="board_not_answering", detail="port gone")
    cleared = event("alarm", door=None, kind="board_not_answering", cleared=True)

    cabinet_client.send_events([opened, raised, cleared])

    assert wait_for(lambda: cleared.event_id in cabinet_client.acked_ids())
    [entry] = audit_entries(engine, "door.opened", cabinet.cabinet_id)
    assert "observed" not in json.loads(entry.details)
    alarms = audit_entries(engine, "cabinet.alarm", cabinet.cabinet_id)
    assert [(a.reason, a.outcome) for a in alarms] == [
        ("board_not_answering", "alarm"),
        ("board_not_answering", "cleared"),
    ]
    assert [json.loads(a.details)["cleared"] for a in alarms] == [False, True]
