"""Cabinet layout and settings validation: bad configuration fails at start-up, clearly."""

from __future__ import annotations

import re

import pytest

from firmware_protocol import get_protocol
from locker_agent.boards import DoorState, door_state
from locker_agent.cabinet import protocol_named
from locker_agent.doors import ControllerSettings
from locker_agent.errors import ConfigError, UnknownDoorError
from locker_agent.layout import BoardConfig, CabinetLayout, DoorAddress, Polarity
from locker_agent.serial_link import LinkSettings

XOR = get_protocol("8a80")
KERONG = get_protocol("kerong")


def test_sequential_layout_numbers_doors_board_after_board() -> None:
    layout = CabinetLayout.sequential(XOR, [BoardConfig(1, 24), BoardConfig(2, 12)])

    assert len(layout.doors) == 36
    assert layout.address_of(7) == DoorAddress(1, 7)
    assert layout.address_of(25) == DoorAddress(2, 1)
    assert layout.door_at(DoorAddress(2, 12)) == 36
    assert layout.doors_on(2) == {lock: 24 + lock for lock in range(1, 13)}


@pytest.mark.parametrize(
    ("boards", "doors", "message"),
    [
        ([BoardConfig(1, 8), BoardConfig(1, 8)], {}, "board address 1 is configured twice"),
        ([BoardConfig(40, 8)], {}, "board address 40 is outside 8a80's range 1..31"),
        ([BoardConfig(1, 40)], {}, "board 1 has 40 locks; 8a80 boards have 1..32"),
        ([BoardConfig(1, 8)], {1: DoorAddress(1, 9)}, "lock 9 is outside board 1's locks 1..8"),
        ([BoardConfig(1, 8)], {1: DoorAddress(3, 1)}, "board 3, which is not configured"),
        (
            [BoardConfig(1, 8)],
            {1: DoorAddress(1, 2), 2: DoorAddress(1, 2)},
            "doors 1 and 2 are both on board 1 lock 2",
        ),
        ([BoardConfig(1, 8)], {0: DoorAddress(1, 1)}, "door number 0 must be 1 or more"),
        ([], {}, "the cabinet has no boards"),
    ],
)
def test_invalid_layouts_are_refused_with_a_clear_message(
    boards: list[BoardConfig], doors: dict[int, DoorAddress], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        CabinetLayout.build(XOR, boards, doors)


def test_kerong_layout_refuses_the_broadcast_board_and_a_seventeenth_lock() -> None:
    with pytest.raises(ConfigError, match="outside kerong's range"):
        CabinetLayout.sequential(KERONG, [BoardConfig(15, 16)])
    with pytest.raises(ConfigError, match=re.escape("kerong boards have 1..16")):
        CabinetLayout.sequential(KERONG, [BoardConfig(0, 17)])


def test_unknown_door_and_unknown_protocol_are_clear_errors() -> None:
    layout = CabinetLayout.sequential(XOR, [BoardConfig(1, 4)])

    with pytest.raises(UnknownDoorError, match="door 5 is not in the cabinet layout"):
        layout.address_of(5)
    with pytest.raises(ConfigError, match="unknown board protocol"):
        protocol_named("modbus")


@pytest.mark.parametrize(
    ("signal", "polarity", "state"),
    [
        (True, Polarity.NORMAL, DoorState.CLOSED),
        (False, Polarity.NORMAL, DoorState.OPEN),
        (True, Polarity.INVERTED, DoorState.OPEN),
        (False, Polarity.INVERTED, DoorState.CLOSED),
    ],
)
def test_feedback_polarity_maps_the_signal_to_the_door_state(
    signal: bool, polarity: Polarity, state: DoorState
) -> None:
    assert door_state(signal, polarity) is state


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigError, match="at most once"):
        LinkSettings(baudrate=9600, query_retries=2)
    with pytest.raises(ConfigError, match="positive"):
        LinkSettings(baudrate=9600, query_timeout=0)
    with pytest.raises(ConfigError, match="baud rate"):
        LinkSettings(baudrate=0)
    with pytest.raises(ConfigError, match="rate limit"):
        ControllerSettings(max_opens_per_door=0)
    with pytest.raises(ConfigError, match="positive"):
        ControllerSettings(confirm_window=0)
