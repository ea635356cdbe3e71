"""The request manager and board API on their own, over a real pty (the demo: tests/demo)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_protocol import get_protocol
from firmware_protocol.base import Request, RequestKind
from locker_agent.boards import BoardClient, DoorState
from locker_agent.errors import BoardTimeout, LinkClosedError, TransportError
from locker_agent.layout import Polarity
from locker_agent.serial_link import SerialLink
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests.agent.conftest import LOCKS, fast_link


@pytest.fixture
def bus(protocol: str) -> Iterator[SimulatedBus]:
    with SimulatedBus(protocol, [SimBoardConfig(1, LOCKS)], Timing.fast()) as bus:
        bus.start_pty()
        yield bus


def _link(bus: SimulatedBus, protocol: str, **changes: object) -> SerialLink:
    assert bus.address is not None
    return SerialLink(bus.address, get_protocol(protocol), fast_link(protocol, **changes))


def _kinds(bus: SimulatedBus) -> list[RequestKind]:
    return [frame.kind for _, frame in bus.received if isinstance(frame, Request)]


def test_a_query_is_retried_once_and_an_unlock_never(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).faults.silent = True
    codec = get_protocol(protocol)

    with _link(bus, protocol) as link:
        with pytest.raises(BoardTimeout):
            link.request(codec.query_all(1))
        with pytest.raises(BoardTimeout):
            link.request(codec.unlock(1, 2))
        stats = link.stats

    assert _kinds(bus).count(RequestKind.UNLOCK) == 1
    assert len(_kinds(bus)) == 3  # query, its one retry, the unlock
    assert bus.board(1).door(2).unlock_pulses == 1
    assert stats.retries == 1
    assert stats.timeouts == 3


def test_read_one_door_and_a_whole_board(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).door(4).force_open()

    with _link(bus, protocol) as link:
        client = BoardClient(link)
        one_open = client.read_lock(1, 4)
        one_closed = client.read_lock(1, 5)
        board = client.read_board(1, tuple(range(1, LOCKS + 1)))

    assert one_open is DoorState.OPEN
    assert one_closed is DoorState.CLOSED
    assert dict(board.doors) == {
        lock: DoorState.OPEN if lock == 4 else DoorState.CLOSED for lock in range(1, LOCKS + 1)
    }


def test_inverted_board_reads_through_its_polarity(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).faults.inverted_polarity = True
    bus.board(1).door(1).force_open()

    with _link(bus, protocol) as link:
        normal = BoardClient(link).read_lock(1, 1)
        inverted = BoardClient(link, {1: Polarity.INVERTED}).read_lock(1, 1)

    assert normal is DoorState.CLOSED  # what a mis-commissioned board looks like
    assert inverted is DoorState.OPEN


def test_stopping_the_link_fails_waiting_requests_cleanly(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).faults.silent = True
    codec = get_protocol(protocol)
    link = _link(bus, protocol).start()
    in_flight = link.submit(codec.query_all(1))
    queued = [link.submit(codec.query_lock(1, lock)) for lock in (1, 2)]

    link.stop()

    assert isinstance(in_flight.exception(timeout=5), BoardTimeout | LinkClosedError)
    for future in queued:
        assert isinstance(future.exception(timeout=5), LinkClosedError)
    assert isinstance(link.submit(codec.query_all(1)).exception(timeout=1), LinkClosedError)


def test_a_port_that_cannot_be_opened_is_a_transport_error(tmp_path: Path) -> None:
    link = SerialLink(str(tmp_path / "ttyUSB9"), get_protocol("8a80"), fast_link("8a80"))

    with pytest.raises(TransportError, match="cannot open serial port"):
        link.start()
