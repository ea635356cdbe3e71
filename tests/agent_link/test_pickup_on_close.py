"""A parcel counts as picked up when its door has opened and closed again.

The real agent (``SimulatedCabinet``: runtime, desk, journal, door layer) on simulated
pty boards and the machine's Mosquitto; the simulated person opens nothing by hand: the
unlock springs the door, the test closes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from locker_agent.boards import DoorState
from locker_agent.config import parse_settings
from locker_agent.doors import OpenOutcome
from locker_agent.journal import JournalEvent
from locker_agent.pickup import Granted, TypedCode
from simulators.cabinet import CabinetTuning, SimulatedCabinet
from simulators.timing import Timing
from tests.agent_link.conftest import ObserverFactory, fast_settings
from tests.agent_link.rig import (
    FAST_CONTROL,
    FAST_LINK,
    ServerStandIn,
    Signer,
    agent_document,
    entry,
    wait_until,
)
from tests.contract import messages

CODE = "27182818"
DOOR = 5


@pytest.fixture
def cabinet(cabinet_id: str, tmp_path: Path) -> Iterator[SimulatedCabinet]:
    """A started cabinet whose allow-list holds parcels 11 and 12 behind door 5."""
    signer = Signer(cabinet_id)
    document = agent_document(cabinet_id, tmp_path / "journal.sqlite3", signer.public_key)
    tuning = CabinetTuning(
        timing=Timing.fast(),
        link=FAST_LINK,
        controller=FAST_CONTROL,
        mqtt=fast_settings(cabinet_id),
    )
    with SimulatedCabinet(parse_settings(document), tuning) as running:
        supply(running)
        yield running


def supply(cabinet: SimulatedCabinet) -> None:
    entries = [entry(11, DOOR, CODE), entry(12, DOOR, CODE)]
    body = messages.allow_list_sync(version=1, entries=entries).body
    assert cabinet.runtime.allow_list.apply(body)


def journaled(cabinet: SimulatedCabinet, event_type: str) -> list[JournalEvent]:
    return [e for e in cabinet.runtime.journal.pending(limit=1000) if e.type == event_type]


def door_seen(cabinet: SimulatedCabinet, state: DoorState) -> bool:
    return cabinet.runtime.door_state(DOOR) is state


def test_no_pickup_is_journaled_until_the_person_closes_the_door_then_exactly_one(
    cabinet: SimulatedCabinet, observe: ObserverFactory
) -> None:
    server = ServerStandIn(observe(), cabinet.runtime.cabinet_id)

    outcome = cabinet.runtime.local_pickup(code=CODE)

    assert (outcome.opened, outcome.parcel_ids) == (True, (11, 12))
    assert wait_until(lambda: journaled(cabinet, "door.open_confirmed"))
    assert cabinet.door(DOOR).is_open
    assert journaled(cabinet, "pickup") == []  # the recipient has not closed the door yet
    assert not cabinet.runtime.local_pickup(code=CODE).opened  # the code is used up meanwhile

    cabinet.door(DOOR).close()

    [pickup] = wait_until(lambda: journaled(cabinet, "pickup"))
    [closed] = journaled(cabinet, "door.closed")
    assert pickup.seq == closed.seq + 1  # the same transaction as the close
    assert pickup.device_time == closed.device_time
    assert dict(pickup.data) == {
        "mode": "offline",
        "parcel_ids": [11, 12],
        "credential": "code",
        "allow_list_version": 1,
    }
    assert server.wait(lambda s: s.events_of("pickup", DOOR))
    assert {e.event_id for e in server.events_of("pickup")} == {pickup.event_id}
    assert cabinet.door(DOOR).unlock_pulses == 1


def test_a_jammed_lock_records_no_pickup_and_the_same_code_works_once_it_is_fixed(
    cabinet: SimulatedCabinet,
) -> None:
    cabinet.door(DOOR).faults.jammed = True

    outcome = cabinet.runtime.local_pickup(code=CODE)

    assert (outcome.opened, outcome.door_outcome) == (False, OpenOutcome.JAMMED)
    [alarm] = journaled(cabinet, "alarm")
    assert (alarm.door, alarm.data["kind"]) == (DOOR, "pickup_door_not_opened")
    assert "the credential works again" in alarm.data["detail"]
    assert journaled(cabinet, "pickup") == []

    cabinet.door(DOOR).faults.jammed = False
    again = cabinet.runtime.local_pickup(code=CODE)

    assert (again.opened, again.parcel_ids) == (True, (11, 12))
    assert cabinet.door(DOOR).unlock_pulses == 2
    cabinet.door(DOOR).close()
    assert wait_until(lambda: journaled(cabinet, "pickup"))
    assert [e.data["parcel_ids"] for e in journaled(cabinet, "pickup")] == [[11, 12]]


def test_a_door_closed_while_the_agent_was_down_is_one_pickup_after_the_restart(
    cabinet: SimulatedCabinet,
) -> None:
    assert cabinet.runtime.local_pickup(code=CODE).opened
    assert wait_until(lambda: journaled(cabinet, "door.open_confirmed"))
    cabinet.stop_agent()

    cabinet.door(DOOR).close()  # nobody watching
    cabinet.start()  # the same journal, the same boards

    [pickup] = wait_until(lambda: journaled(cabinet, "pickup"))
    assert pickup.data["parcel_ids"] == [11, 12]
    # the close is reported as found, not as seen
    [closed] = journaled(cabinet, "door.closed")
    assert (closed.data["observed"], pickup.seq) == (False, closed.seq + 2)
    kinds = [e.data["kind"] for e in journaled(cabinet, "alarm")]
    assert kinds == ["door_moved_unobserved"]
    cabinet.door(DOOR).force_open()  # someone opens it again later: no second pickup
    assert wait_until(lambda: door_seen(cabinet, DoorState.OPEN))
    cabinet.door(DOOR).close()
    assert wait_until(lambda: len(journaled(cabinet, "door.closed")) == 2)
    assert len(journaled(cabinet, "pickup")) == 1


def test_a_door_still_open_at_the_restart_is_one_pickup_when_it_closes(
    cabinet: SimulatedCabinet,
) -> None:
    assert cabinet.runtime.local_pickup(code=CODE).opened
    assert wait_until(lambda: journaled(cabinet, "door.open_confirmed"))
    cabinet.stop_agent()
    cabinet.start()
    assert wait_until(lambda: door_seen(cabinet, DoorState.OPEN))
    assert journaled(cabinet, "pickup") == []

    cabinet.door(DOOR).close()

    [pickup] = wait_until(lambda: journaled(cabinet, "pickup"))
    assert pickup.data["parcel_ids"] == [11, 12]
    closed = journaled(cabinet, "door.closed")
    assert [e.data.get("observed", True) for e in closed] == [True]


def test_an_agent_that_died_before_the_door_was_seen_open_gives_the_code_back(
    cabinet: SimulatedCabinet,
) -> None:
    # the grant is on record, the unlock never went out (the agent died in between)
    assert isinstance(cabinet.runtime.pickup_desk.decide(TypedCode(CODE)), Granted)
    cabinet.stop_agent()
    cabinet.start()

    [alarm] = journaled(cabinet, "alarm")
    assert (alarm.door, alarm.data["kind"]) == (DOOR, "pickup_door_not_opened")
    assert cabinet.door(DOOR).unlock_pulses == 0
    assert cabinet.runtime.local_pickup(code=CODE).opened
