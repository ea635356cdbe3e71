"""On a Kerong cabinet whose compartment has an item sensor wired, a pickup needs the door
closed AND the compartment read empty; the state message reports what the sensor read.

The real agent (``SimulatedCabinet``: runtime, desk, journal, door layer) on simulated
Kerong boards served on a pty, and the machine's Mosquitto. Door 5 has ``item_sensor =
true`` in agent.toml; door 6 has not, though its board reports an item bit for it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from locker_agent.config import parse_settings
from locker_agent.journal import DoorRecord, JournalEvent
from locker_contract.bodies import DoorSnapshot
from simulators.cabinet import CabinetTuning, SimulatedCabinet, with_item_sensors
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

CODE = "31415926"
PLAIN_CODE = "27182818"
SENSOR_DOOR = 5
PLAIN_DOOR = 6


@pytest.fixture
def cabinet(cabinet_id: str, tmp_path: Path) -> Iterator[SimulatedCabinet]:
    """A started Kerong cabinet: parcel 21 behind door 5 (item sensor), parcel 22 behind
    door 6 (no sensor), both compartments holding their parcel."""
    signer = Signer(cabinet_id)
    document = agent_document(cabinet_id, tmp_path / "journal.sqlite3", signer.public_key)
    document["serial"]["protocol"] = "kerong"
    settings = with_item_sensors(parse_settings(document), [SENSOR_DOOR])
    tuning = CabinetTuning(
        timing=Timing.fast(),
        link=FAST_LINK,
        controller=FAST_CONTROL,
        mqtt=fast_settings(cabinet_id),
    )
    simulated = SimulatedCabinet(settings, tuning)
    for door in (SENSOR_DOOR, PLAIN_DOOR):
        simulated.door(door).put_item()  # the courier's parcels, there before the agent
    with simulated as running:
        entries = [entry(21, SENSOR_DOOR, CODE), entry(22, PLAIN_DOOR, PLAIN_CODE)]
        body = messages.allow_list_sync(version=1, entries=entries).body
        assert running.runtime.allow_list.apply(body)
        yield running


def journaled(cabinet: SimulatedCabinet, event_type: str) -> list[JournalEvent]:
    return [e for e in cabinet.runtime.journal.pending(limit=1000) if e.type == event_type]


def snapshot_of(cabinet: SimulatedCabinet, door: int) -> DoorRecord | None:
    return cabinet.runtime.journal.snapshot().doors.get(door)


def opened_for_pickup(cabinet: SimulatedCabinet, code: str, door: int) -> None:
    outcome = cabinet.runtime.local_pickup(code=code)
    assert (outcome.opened, outcome.door) == (True, door)
    assert wait_until(lambda: snapshot_of(cabinet, door) == DoorRecord("open", True))


def test_a_door_closed_on_the_parcel_is_no_pickup_and_the_code_works_again(
    cabinet: SimulatedCabinet, observe: ObserverFactory
) -> None:
    server = ServerStandIn(observe(), cabinet.runtime.cabinet_id)
    assert wait_until(lambda: snapshot_of(cabinet, SENSOR_DOOR) == DoorRecord("closed", True))
    opened_for_pickup(cabinet, CODE, SENSOR_DOOR)

    cabinet.door(SENSOR_DOOR).close()  # the recipient left the parcel inside

    [alarm] = wait_until(lambda: journaled(cabinet, "alarm"))
    assert (alarm.door, alarm.data["kind"]) == (SENSOR_DOOR, "parcel_not_taken")
    assert journaled(cabinet, "pickup") == []
    assert snapshot_of(cabinet, SENSOR_DOOR) == DoorRecord("closed", True)
    occupied = DoorSnapshot(state="closed", occupied=True)
    assert server.wait(lambda s: s.states and s.states[-1].door(SENSOR_DOOR) == occupied)

    opened_for_pickup(cabinet, CODE, SENSOR_DOOR)  # the code was given back
    cabinet.door(SENSOR_DOOR).remove_item()
    cabinet.door(SENSOR_DOOR).close()

    [pickup] = wait_until(lambda: journaled(cabinet, "pickup"))
    assert (pickup.door, pickup.data["parcel_ids"]) == (SENSOR_DOOR, [21])
    assert snapshot_of(cabinet, SENSOR_DOOR) == DoorRecord("closed", False)
    empty = DoorSnapshot(state="closed", occupied=False)
    assert server.wait(lambda s: s.states and s.states[-1].door(SENSOR_DOOR) == empty)
    assert not cabinet.runtime.local_pickup(code=CODE).opened  # used up now


def test_a_parcel_taken_out_is_one_pickup_at_the_close(cabinet: SimulatedCabinet) -> None:
    opened_for_pickup(cabinet, CODE, SENSOR_DOOR)
    assert journaled(cabinet, "pickup") == []  # not before the door is closed

    cabinet.door(SENSOR_DOOR).remove_item()
    cabinet.door(SENSOR_DOOR).close()

    [pickup] = wait_until(lambda: journaled(cabinet, "pickup"))
    [closed] = journaled(cabinet, "door.closed")
    assert pickup.seq == closed.seq + 1  # the same transaction as the close
    assert journaled(cabinet, "alarm") == []


def test_a_door_without_item_sensor_is_a_pickup_at_the_close_whatever_its_bit_says(
    cabinet: SimulatedCabinet, observe: ObserverFactory
) -> None:
    server = ServerStandIn(observe(), cabinet.runtime.cabinet_id)
    outcome = cabinet.runtime.local_pickup(code=PLAIN_CODE)
    assert (outcome.opened, outcome.door) == (True, PLAIN_DOOR)
    assert wait_until(lambda: snapshot_of(cabinet, PLAIN_DOOR) == DoorRecord("open", None))

    cabinet.door(PLAIN_DOOR).close()  # the board's item bit still says "inside"

    [pickup] = wait_until(lambda: journaled(cabinet, "pickup"))
    assert (pickup.door, pickup.data["parcel_ids"]) == (PLAIN_DOOR, [22])
    assert journaled(cabinet, "alarm") == []
    assert snapshot_of(cabinet, PLAIN_DOOR) == DoorRecord("closed", None)
    unknown = DoorSnapshot(state="closed", occupied=None)
    assert server.wait(lambda s: s.states and s.states[-1].door(PLAIN_DOOR) == unknown)
