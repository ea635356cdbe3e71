"""The door layer reads the Kerong boards' item sensors, on the doors that have one wired.

Real pty boards through the simulator: the Kerong dialect reports the item bit of every
compartment in each status reply; the agent attaches it to a door's events only where
the layout says a sensor is wired, and only from the reply the event came from.
"""

from __future__ import annotations

import re

import pytest

from firmware_protocol import get_protocol
from locker_agent.boards import DoorState
from locker_agent.doors import DoorEvent, DoorEventKind, DoorObservation
from locker_agent.errors import ConfigError
from locker_agent.layout import BoardConfig, CabinetLayout, reports_items
from tests.agent.conftest import MakeRig, Rig, wait_until

SENSOR_DOOR = 3
PLAIN_DOOR = 4


@pytest.fixture
def rig(make_rig: MakeRig) -> Rig:
    """A Kerong cabinet whose door 3 has an item sensor wired; door 4 has none."""
    return make_rig("kerong", item_sensors=(SENSOR_DOOR,))


def closes(rig: Rig, door: int) -> list[DoorEvent]:
    return rig.events_of(DoorEventKind.CLOSED, door)


def test_a_close_carries_what_the_sensor_read_in_the_reply_that_showed_the_door_shut(
    rig: Rig,
) -> None:
    door = rig.door(SENSOR_DOOR)
    door.force_open()
    rig.wait_event(DoorEventKind.OPENED, SENSOR_DOOR)
    door.put_item()
    door.close()

    assert wait_until(lambda: closes(rig, SENSOR_DOOR), 3.0)
    assert [e.occupied for e in closes(rig, SENSOR_DOOR)] == [True]
    assert rig.cabinet.doors.occupied(SENSOR_DOOR) is True

    door.force_open()
    assert wait_until(lambda: len(rig.events_of(DoorEventKind.OPENED, SENSOR_DOOR)) == 2, 3.0)
    door.remove_item()
    door.close()

    assert wait_until(lambda: len(closes(rig, SENSOR_DOOR)) == 2, 3.0)
    assert [e.occupied for e in closes(rig, SENSOR_DOOR)] == [True, False]
    assert rig.cabinet.doors.occupied(SENSOR_DOOR) is False


def test_a_close_never_reports_the_reading_from_before_the_door_opened(rig: Rig) -> None:
    door = rig.door(SENSOR_DOOR)
    door.put_item()
    assert wait_until(lambda: rig.cabinet.doors.occupied(SENSOR_DOOR) is True, 3.0)
    door.force_open()
    opened = rig.wait_event(DoorEventKind.OPENED, SENSOR_DOOR)
    assert opened.occupied is True  # the reply that showed it open still saw the parcel

    door.remove_item()
    door.close()

    assert wait_until(lambda: closes(rig, SENSOR_DOOR), 3.0)
    assert [e.occupied for e in closes(rig, SENSOR_DOOR)] == [False]


def test_a_door_without_a_wired_sensor_says_nothing_of_its_compartment(rig: Rig) -> None:
    door = rig.door(PLAIN_DOOR)
    door.put_item()  # the board reports the bit all the same
    door.force_open()
    rig.wait_event(DoorEventKind.OPENED, PLAIN_DOOR)
    door.close()

    assert wait_until(lambda: closes(rig, PLAIN_DOOR), 3.0)
    assert [e.occupied for e in closes(rig, PLAIN_DOOR)] == [None]
    assert all(e.occupied is None for e in rig.events if e.door == PLAIN_DOOR)
    assert rig.cabinet.doors.occupied(PLAIN_DOOR) is None
    reading = rig.cabinet.boards.read_board(1)
    assert reading.items is not None
    assert reading.items[PLAIN_DOOR] is True  # read, but not used: no sensor is wired


def test_a_board_that_stops_answering_leaves_the_compartment_unknown(rig: Rig) -> None:
    rig.door(SENSOR_DOOR).put_item()
    assert wait_until(lambda: rig.cabinet.doors.occupied(SENSOR_DOOR) is True, 3.0)

    rig.bus.board(1).faults.offline = True

    rig.wait_event(DoorEventKind.UNKNOWN, SENSOR_DOOR)
    assert rig.cabinet.doors.observations()[SENSOR_DOOR] == DoorObservation(DoorState.UNKNOWN, None)


def test_8a80_replies_carry_no_item_readings(make_rig: MakeRig) -> None:
    rig = make_rig("8a80")
    rig.door(2).put_item()

    reading = rig.cabinet.boards.read_board(1)

    assert reading.doors[2] is DoorState.CLOSED
    assert reading.items is None
    assert rig.cabinet.doors.occupied(2) is None


def test_only_kerong_boards_report_items() -> None:
    assert reports_items(get_protocol("kerong"))
    assert not reports_items(get_protocol("8a80"))


def test_an_item_sensor_on_an_8a80_board_is_refused() -> None:
    with pytest.raises(ConfigError, match=re.escape("item_sensor is set on door 2, but 8a80")):
        CabinetLayout.sequential(get_protocol("8a80"), [BoardConfig(1, 8)], item_sensors=[2])


def test_an_item_sensor_on_a_door_not_in_the_layout_is_refused() -> None:
    with pytest.raises(ConfigError, match="item_sensor is set on door 9, which is not"):
        CabinetLayout.sequential(get_protocol("kerong"), [BoardConfig(1, 8)], item_sensors=[9])
