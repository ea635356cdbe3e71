"""The serial adapter unplugged and plugged back under the running agent: it reconnects
by itself, raises and clears "board not answering", reports the door that moved in the
gap as a move nobody observed, and opens nothing nobody asked for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from firmware_protocol.base import Request, RequestKind
from locker_agent.boards import DoorState
from locker_contract import AlarmData, DoorMoveData, Event
from tests.agent_link.conftest import RigFactory
from tests.agent_link.rig import FAST_CONTROL, FAST_LINK, AgentRig, entry, wait_until

CODE = "27182818"
REOPENING_FAST = replace(FAST_LINK, reopen_backoff_initial=0.05, reopen_backoff_max=0.2)
ALARM_SOON = replace(FAST_CONTROL, board_alarm_after=0.4)


def board_alarms(rig: AgentRig) -> list[AlarmData]:
    found = []
    for event in rig.server.events_of("alarm"):
        data = event.typed_data()
        if isinstance(data, AlarmData) and data.kind == "board_not_answering":
            found.append(data)
    return found


def unlocks_on_the_wire(rig: AgentRig) -> list[Request]:
    return [
        frame
        for _, frame in rig.bus.received
        if isinstance(frame, Request) and frame.kind is RequestKind.UNLOCK
    ]


def moves_of(rig: AgentRig, door: int) -> list[Event]:
    return rig.server.events_of("door.opened", door) + rig.server.events_of("door.closed", door)


def test_replugged_adapter_reconnects_by_itself_and_reports_the_move_it_missed(
    cabinet_id: str, make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = make_rig(
        cabinet_id,
        stable_port=tmp_path / "usb-adapter-if00-port0",
        link_settings=REOPENING_FAST,
        controller_settings=ALARM_SOON,
    )
    rig.server.send_allow_list(1, [entry(41, 4, CODE)])
    assert wait_until(lambda: rig.runtime.allow_list.version == 1)

    rig.bus.unplug()
    assert rig.server.wait(lambda s: board_alarms(rig)), "no alarm while the adapter is away"
    assert rig.runtime.door_state(2) is DoorState.UNKNOWN
    rig.door(2).force_open()  # moved while nobody could see it

    # a remote and a local open while the board is away: both refused now, not queued
    command_id, payload = rig.signer.command("open_door", door=3)
    rig.send(payload)
    result = rig.server.result(command_id)
    assert (result.status, result.outcome) == ("failed", None)
    assert str(result.reason).startswith("board_unavailable: no unlock sent")
    pickup = rig.runtime.local_pickup(code=CODE)
    assert (pickup.opened, pickup.reason) == (False, "board_unavailable")

    rig.bus.replug()

    assert rig.server.wait(lambda s: len(board_alarms(rig)) == 2, timeout=10)
    raised, cleared = board_alarms(rig)
    assert (raised.cleared, cleared.cleared) == (False, True)
    assert wait_until(lambda: rig.runtime.door_state(2) is DoorState.OPEN)
    assert rig.server.wait(lambda s: moves_of(rig, 2))
    (move,) = moves_of(rig, 2)
    assert move.type == "door.opened"
    assert isinstance(move.typed_data(), DoorMoveData)
    assert move.data["observed"] is False
    moved = [
        e for e in rig.server.events_of("alarm", 2) if e.data["kind"] == "door_moved_unobserved"
    ]
    assert len(moved) == 1
    assert not rig.server.events_of("door.forced_open", 2)  # a break-in is not claimed as seen
    rig.server.ping(rig.signer)  # everything the agent had to say before is out now
    assert unlocks_on_the_wire(rig) == []
    assert (rig.door(3).unlock_pulses, rig.door(4).unlock_pulses) == (0, 0)
    assert len(board_alarms(rig)) == 2  # raised once, cleared once
    # the pickup refused while the board was away did not use the code up
    not_opened = [
        e for e in rig.server.events_of("alarm", 4) if e.data["kind"].startswith("pickup")
    ]
    assert [e.data["kind"] for e in not_opened] == ["pickup_door_not_opened"]
    assert rig.runtime.local_pickup(code=CODE).opened
    assert rig.door(4).unlock_pulses == 1
