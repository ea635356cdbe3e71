"""``locker-demo``: the Quick-start story, end to end on a real pty.

A simulated cabinet (two 24-door 8A/80 boards) serves a pty; the agent's door
controller drives it through that pty exactly as it would drive a USB-RS485 adapter.
It opens door 7, confirms it by the door sensor, lets a simulated person close it,
and prints a door summary. Exit status 0 only if every step happened as told.

It lives with the simulators because it needs both sides: the simulated boards and the
real agent's door layer (the agent itself never imports a simulator).
"""

from __future__ import annotations

import logging
import queue
import sys
import time
from collections import Counter
from typing import Final

from locker_agent.cabinet import Cabinet, protocol_named
from locker_agent.doors import ControllerSettings, DoorEvent, DoorEventKind, OpenOutcome
from locker_agent.layout import BoardConfig, CabinetLayout
from simulators.board import BoardConfig as SimulatedBoardConfig
from simulators.bus import SimulatedBus
from simulators.timing import Timing

DOOR: Final = 7
BOARDS: Final = (1, 2)
LOCKS_PER_BOARD: Final = 24
STEP_TIMEOUT: Final = 5.0


class DemoFailed(Exception):
    """A step of the story did not happen."""


def _say(text: str) -> None:
    print(text, flush=True)


def _wait_for(events: queue.Queue[DoorEvent], kind: DoorEventKind, door: int) -> DoorEvent:
    deadline = time.monotonic() + STEP_TIMEOUT
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            break
        if event.kind is kind and event.door == door:
            return event
    raise DemoFailed(f"no '{kind.value}' event for door {door} within {STEP_TIMEOUT} s")


def _story(bus: SimulatedBus, cabinet: Cabinet) -> None:
    events: queue.Queue[DoorEvent] = queue.Queue()
    cabinet.doors.subscribe(events.put)
    if not cabinet.doors.wait_first_poll(STEP_TIMEOUT):
        raise DemoFailed("the agent could not read the boards")
    _say(f"The agent reads every board: {_summary(cabinet)}.")
    address = cabinet.layout.address_of(DOOR)
    _say(f"Opening door {DOOR} ({address}) through the agent...")
    result = cabinet.doors.open_door(DOOR)
    if result.frame is not None:
        _say(f"  unlock frame sent: {result.frame.hex(' ').upper()}")
    if result.outcome is not OpenOutcome.CONFIRMED or result.seconds_to_open is None:
        raise DemoFailed(f"door {DOOR} was not confirmed open: {result.outcome.value}")
    _say(f"door {DOOR} opened — confirmed by the door sensor after {result.seconds_to_open:.2f} s")
    _say(f"A person takes the parcel and closes door {DOOR}...")
    bus.schedule_close(address.board, address.lock, after=0.5)
    _wait_for(events, DoorEventKind.CLOSED, DOOR)
    _say(f"door {DOOR} closed")
    pulses = bus.board(address.board).door(address.lock).unlock_pulses
    _say(f"Door summary: {_summary(cabinet)}; unlock pulses sent to door {DOOR}: {pulses}.")
    if pulses != 1:
        raise DemoFailed(f"door {DOOR} got {pulses} unlock pulses, expected exactly 1")


def _summary(cabinet: Cabinet) -> str:
    counts = Counter(state.value for state in cabinet.doors.states().values())
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def run() -> None:
    protocol = protocol_named("8a80")
    simulated = [SimulatedBoardConfig(address=a, locks=LOCKS_PER_BOARD) for a in BOARDS]
    with SimulatedBus(protocol="8a80", boards=simulated, timing=Timing()) as bus:
        port = bus.start_pty()
        _say(
            f"Simulated cabinet: {len(BOARDS)} lock boards x {LOCKS_PER_BOARD} doors "
            f"(8A/80, {bus.baudrate} baud) on {port}"
        )
        boards = [BoardConfig(address, LOCKS_PER_BOARD) for address in BOARDS]
        layout = CabinetLayout.sequential(protocol, boards)
        settings = ControllerSettings(poll_interval=0.1)
        with Cabinet(port, protocol, layout, controller_settings=settings) as cabinet:
            _story(bus, cabinet)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.monotonic()
    try:
        run()
    except Exception as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    _say(f"Demo finished in {time.monotonic() - started:.1f} s.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
