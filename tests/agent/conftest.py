"""Fixtures of the door-layer tests: a simulated bus on a real pty, driven by the agent.

Every rig is the real thing end to end: ``SimulatedBus`` serves a raw pty, the agent's
``SerialLink`` opens the slave path with pyserial, and the door controller polls it.
Timing constants are shrunk (simulator ``Timing.fast()``, short agent timeouts and
windows) instead of sleeping long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import pytest

from firmware_protocol.base import Request, RequestKind
from locker_agent.boards import DoorState
from locker_agent.cabinet import Cabinet, protocol_named
from locker_agent.doors import ControllerSettings, DoorEvent, DoorEventKind
from locker_agent.layout import BoardConfig, CabinetLayout, Polarity
from locker_agent.serial_link import LinkSettings
from simulators.board import DoorChange, SimulatedDoor
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests.waiting import wait_until as wait_until

PROTOCOLS = ("8a80", "kerong")
LOCKS = 8
#: a door that moved less than this long ago may not have been polled yet
SETTLE_TIME = 0.3

#: Short agent timeouts: the simulator answers within a few ms (Timing.fast()).
FAST_LINK = {
    "unlock_timeout": 0.3,
    "query_timeout": 0.15,
    "settle_after_error": 0.04,
    "late_reply_horizon": 0.6,
}
FAST_CONTROL = ControllerSettings(
    poll_interval=0.05,
    confirm_window=0.6,
    left_open_after=30.0,
    unanswered_poll_interval=0.2,
)


def fast_link(protocol: str, **changes: object) -> LinkSettings:
    settings = LinkSettings(baudrate=protocol_named(protocol).default_baud, **FAST_LINK)  # type: ignore[arg-type]
    return replace(settings, **changes)


@dataclass
class Rig:
    """A simulated cabinet and the agent driving it; doors 1..8 board 1, 9..16 board 2."""

    bus: SimulatedBus
    cabinet: Cabinet
    events: list[DoorEvent] = field(default_factory=list)
    changed_at: dict[tuple[int, int], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: DoorEvent) -> None:
        with self._lock:
            self.events.append(event)

    def door(self, number: int) -> SimulatedDoor:
        address = self.cabinet.layout.address_of(number)
        return self.bus.board(address.board).door(address.lock)

    def unlocks_on_the_wire(self) -> list[Request]:
        """Every unlock request the simulated boards received."""
        return [
            frame
            for _, frame in self.bus.received
            if isinstance(frame, Request) and frame.kind is RequestKind.UNLOCK
        ]

    def polls_of(self, board: int) -> int:
        """Status requests ``board`` has received: one per poll round of the agent."""
        return sum(
            1
            for _, frame in self.bus.received
            if isinstance(frame, Request)
            and frame.kind in (RequestKind.QUERY_ALL, RequestKind.QUERY_LOCK)
            and frame.board == board
        )

    def wait_polls(self, door: int, rounds: int, timeout: float = 5.0) -> None:
        """Wait until the agent has polled ``door``'s board ``rounds`` more times: a
        negative ("no second report") is checked after the agent has looked, not after
        a guess at how long looking takes."""
        board = self.cabinet.layout.address_of(door).board
        target = self.polls_of(board) + rounds
        polled = wait_until(lambda: self.polls_of(board) >= target, timeout)
        assert polled, f"board {board} polled {self.polls_of(board)} times, never {target}"

    def events_of(self, kind: DoorEventKind, door: int | None = None) -> list[DoorEvent]:
        with self._lock:
            return [e for e in self.events if e.kind is kind and door in (None, e.door)]

    def wait_event(self, kind: DoorEventKind, door: int, timeout: float = 3.0) -> DoorEvent:
        found = wait_until(lambda: self.events_of(kind, door), timeout)
        assert found, f"no {kind.value} event for door {door} within {timeout} s"
        return found[0]

    def wait_state(self, door: int, state: DoorState, timeout: float = 3.0) -> None:
        reached = wait_until(lambda: self.cabinet.doors.state(door) is state, timeout)
        assert reached, f"door {door} is {self.cabinet.doors.state(door)}, never {state}"

    def true_state(self, number: int) -> DoorState:
        return DoorState.OPEN if self.door(number).is_open else DoorState.CLOSED

    def note_change(self, change: DoorChange) -> None:
        with self._lock:
            self.changed_at[(change.board, change.lock)] = change.at

    def settled(self, number: int, now: float) -> bool:
        """True when the door has not moved for long enough to have been polled since."""
        address = self.cabinet.layout.address_of(number)
        with self._lock:
            moved = self.changed_at.get((address.board, address.lock), float("-inf"))
        return now - moved > SETTLE_TIME

    def assert_never_wrong(self) -> None:
        """Every door that has had time to be polled since it last moved is reported as it
        physically is, or as unknown; never the opposite."""
        now = time.monotonic()
        for number, state in self.cabinet.doors.states().items():
            if not self.settled(number, now):
                continue
            assert state in (self.true_state(number), DoorState.UNKNOWN), (
                f"door {number} reported {state} but is {self.true_state(number)}"
            )


MakeRig = Callable[..., Rig]


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_rig() -> Iterator[MakeRig]:
    """``make_rig(protocol, boards=(1, 2), polarity={}, link={}, control={},
    item_sensors=())`` → Rig."""
    rigs: list[Rig] = []

    def _make(
        protocol: str,
        boards: Sequence[int] = (1, 2),
        polarity: dict[int, Polarity] | None = None,
        link: dict[str, object] | None = None,
        control: dict[str, object] | None = None,
        timing: Timing | None = None,
        start: bool = True,
        item_sensors: Sequence[int] = (),
    ) -> Rig:
        bus = SimulatedBus(
            protocol, [SimBoardConfig(a, LOCKS) for a in boards], timing or Timing.fast()
        )
        port = bus.start_pty()
        codec = protocol_named(protocol)
        layout = CabinetLayout.sequential(
            codec,
            [BoardConfig(a, LOCKS, (polarity or {}).get(a, Polarity.NORMAL)) for a in boards],
            item_sensors,
        )
        cabinet = Cabinet(
            port,
            codec,
            layout,
            fast_link(protocol, **(link or {})),
            replace(FAST_CONTROL, **(control or {})),  # type: ignore[arg-type]
        )
        rig = Rig(bus, cabinet)
        bus.subscribe(rig.note_change)
        cabinet.doors.subscribe(rig.record)
        rigs.append(rig)
        if start:
            cabinet.start()
            assert cabinet.doors.wait_first_poll(3.0)
        return rig

    yield _make
    for rig in rigs:
        rig.cabinet.stop()
        rig.bus.stop()
