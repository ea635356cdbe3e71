"""Kerong KR-CU16 boards on a simulated bus, spoken to through a real pty with pyserial."""

from __future__ import annotations

import pytest
from sim_helpers import SILENCE, wait_until

from firmware_protocol import kerong
from simulators import BoardConfig, SimulatedBus
from simulators.errors import SimulatorConfigError


def hooked(reply: object) -> set[int]:
    assert isinstance(reply, kerong.StatusReply)
    return {lock for lock, engaged in reply.feedback().items() if engaged}


def test_unlock_is_answered_at_once_and_the_door_springs_open_after(serve):
    bus, host = serve("kerong", boards=[0, 1], locks=16)
    door = bus.board(1).door(3)

    reply = host.ask(kerong.UnlockRequest(1, 3))

    assert reply.board == 1
    assert not reply.bus
    assert 3 in hooked(reply)  # status sent right away: the spring has not acted yet
    assert wait_until(lambda: door.is_open)
    assert hooked(host.ask(kerong.StatusRequest(1))) == set(range(1, 17)) - {3}
    assert door.unlock_pulses == 1
    assert not bus.board(0).door(3).is_open


def test_bus_status_gets_one_36_reply_per_board_in_address_order(serve):
    bus, host = serve("kerong", boards=[2, 0, 1], locks=16)
    bus.board(1).door(16).force_open()
    bus.board(2).door(1).force_open()
    request = kerong.BusStatusRequest()

    host.send(request)
    replies = host.replies(request, 3)

    assert [r.board for r in replies] == [0, 1, 2]
    assert all(isinstance(r, kerong.StatusReply) and r.bus for r in replies)
    assert [hooked(r) for r in replies] == [
        set(range(1, 17)),
        set(range(1, 16)),
        set(range(2, 17)),
    ]


def test_item_sensor_bits_follow_parcels_put_in_and_taken_out(serve):
    bus, host = serve("kerong", boards=[BoardConfig(0, 16, items=frozenset({2}))])
    bus.board(0).door(9).put_item()

    reply = host.ask(kerong.StatusRequest(0))
    assert isinstance(reply, kerong.StatusReply)
    assert {lock for lock, inside in reply.items_inside().items() if inside} == {2, 9}

    bus.board(0).door(2).remove_item()
    reply = host.ask(kerong.StatusRequest(0))
    assert isinstance(reply, kerong.StatusReply)
    assert {lock for lock, inside in reply.items_inside().items() if inside} == {9}


def test_unlock_all_opens_every_lock_and_answers_after_the_last_pulse(serve):
    bus, host = serve("kerong", boards=[3], locks=4)

    host.ask(kerong.UnlockAllRequest(3))

    assert all(door.unlock_pulses == 1 for door in bus.board(3).doors)
    assert wait_until(lambda: all(door.is_open for door in bus.board(3).doors))


def test_etx_and_every_other_byte_cross_the_pty_untouched(serve):
    bus, host = serve("kerong", boards=[0], locks=16)
    bus.board(0).door(1).force_open()
    wire = kerong.StatusReply.from_feedback(
        0, hooks=bus.board(0).feedback(), items=bus.board(0).items()
    ).to_bytes()
    assert 0x03 in wire  # ETX is VINTR in cooked mode and would come back as ^C

    host.send(kerong.StatusRequest(0))

    assert host.read_bytes() == wire


def test_a_board_that_is_not_addressed_stays_silent(serve):
    bus, host = serve("kerong", boards=[0], locks=16)

    host.send(kerong.UnlockRequest(4, 1))

    assert host.read_bytes(SILENCE) == b""
    assert bus.board(0).door(1).unlock_pulses == 0


def test_a_kerong_board_cannot_have_more_than_16_locks():
    with pytest.raises(SimulatorConfigError, match=r"1\.\.16 locks"):
        SimulatedBus("kerong", [BoardConfig(0, locks=24)])


def test_the_broadcast_board_number_is_not_a_board_address():
    with pytest.raises(SimulatorConfigError, match="address 15"):
        SimulatedBus("kerong", [BoardConfig(15, locks=16)])
