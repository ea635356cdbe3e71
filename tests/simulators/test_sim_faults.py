"""Every fault of the menu  does on the wire what it says, on both protocols."""

from __future__ import annotations

import time

import pytest
from sim_helpers import SILENCE, frames_of, wait_until

from firmware_protocol import kerong, xor8a80
from firmware_protocol.base import Garbage, Request
from firmware_protocol.errors import ChecksumError
from simulators import DoorChange

PROTOCOLS = ["8a80", "kerong"]
LOCKS = 8


def probe(protocol: str) -> tuple[Request, bytes]:
    """A query to board 1 and the exact bytes a healthy board answers (all doors closed)."""
    if protocol == "8a80":
        return xor8a80.QueryLockRequest(1, 1), xor8a80.LockStatusReply(1, 1, 0x11).to_bytes()
    closed = dict.fromkeys(range(1, LOCKS + 1), True)
    empty = dict.fromkeys(range(1, LOCKS + 1), False)
    return kerong.StatusRequest(1), kerong.StatusReply.from_feedback(1, closed, empty).to_bytes()


def decode_reply(protocol: str, data: bytes) -> object:
    module = xor8a80 if protocol == "8a80" else kerong
    return module.decode_reply(data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reply_delay_holds_the_answer_back(serve, protocol):
    bus, host = serve(protocol, boards=[1, 2], locks=LOCKS)
    bus.board(1).faults.reply_delay = 0.2
    request, _ = probe(protocol)

    sent_at = host.send(request)
    replies = host.replies(request, 1)

    assert replies
    assert time.monotonic() - sent_at >= 0.2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fragmented_reply_arrives_in_pieces_with_gaps_between(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.fragment = 3
    bus.board(1).faults.fragment_gap = 0.08
    request, wire = probe(protocol)

    host.send(request)
    pieces = frames_of(host.arrivals(0.4), gap=0.04)

    assert len(pieces) == 3
    assert b"".join(pieces) == wire


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dropped_first_byte_sends_the_reply_without_its_header(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.drop_first_byte = True
    request, wire = probe(protocol)

    host.send(request)

    assert host.read_bytes() == wire[1:]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_truncated_reply_is_reported_as_garbage_not_as_a_frame(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.drop_first_byte = True
    request, _ = probe(protocol)

    host.send(request)

    assert host.replies(request, 1, timeout=SILENCE) == []
    assert host.garbage


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_adapter_echo_returns_the_request_before_the_reply(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.faults.echo = True
    request, wire = probe(protocol)

    host.send(request)

    assert host.read_bytes() == request.to_bytes() + wire


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_corrupted_check_byte_fails_the_codec_check(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.corrupt_checksum = True
    request, wire = probe(protocol)

    host.send(request)
    received = host.read_bytes()

    assert received[:-1] == wire[:-1]
    with pytest.raises(ChecksumError):
        decode_reply(protocol, received)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_silent_board_sends_nothing_but_still_obeys_until_it_speaks_again(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.silent = True
    unlock = bus.protocol.unlock(1, 2)

    host.send(unlock)

    assert host.read_bytes(SILENCE) == b""
    assert bus.board(1).door(2).is_open  # the transmitter died, not the board
    bus.board(1).faults.silent = False
    request, _ = probe(protocol)
    assert host.ask(request)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_offline_board_is_silent_and_still_while_its_neighbour_answers(serve, protocol):
    bus, host = serve(protocol, boards=[1, 2], locks=LOCKS)
    bus.board(2).faults.offline = True

    host.send(bus.protocol.unlock(2, 1))
    host.send(bus.protocol.query_all(2))

    assert host.read_bytes(SILENCE) == b""
    assert bus.board(2).door(1).unlock_pulses == 0
    assert not bus.board(2).door(1).is_open
    request, wire = probe(protocol)
    host.send(request)
    assert host.read_bytes() == wire


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_late_reply_arrives_only_after_the_clients_timeout(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.late_reply = 0.4
    request, wire = probe(protocol)

    sent_at = host.send(request)
    assert host.read_bytes(0.25) == b""  # the client gives up here

    assert host.read_bytes(0.4) == wire
    assert time.monotonic() - sent_at >= 0.4


def test_8a80_board_pushes_an_unsolicited_82_frame_that_hosts_skip(serve):
    bus, host = serve("8a80", boards=[1], locks=LOCKS)
    bus.board(1).door(2).force_open()

    bus.board(1).send_unsolicited(lock=2)
    pushed = host.read_bytes()

    assert len(pushed) == 5
    assert pushed[:4] == bytes([xor8a80.HEADER_UNSOLICITED, 1, 2, xor8a80.NO_SIGNAL])
    assert pushed[4] == xor8a80.bcc(pushed[:4])
    decoder = xor8a80.PROTOCOL.reply_decoder()
    decoder.feed(pushed)
    decoder.line_quiet()
    skipped = decoder.next_frame()
    assert isinstance(skipped, Garbage)
    assert skipped.reason.startswith("unsolicited")


def test_kerong_board_pushes_an_unrequested_status_frame(serve):
    bus, host = serve("kerong", boards=[1], locks=LOCKS)
    bus.board(1).door(4).force_open()

    bus.board(1).send_unsolicited()
    [pushed] = host.replies(None, 1)

    assert isinstance(pushed, kerong.StatusReply)
    assert pushed.board == 1
    assert not pushed.bus
    assert not pushed.feedback()[4]


@pytest.mark.parametrize(("protocol", "length"), [("8a80", 5), ("kerong", 9)])
def test_periodic_unsolicited_frames_keep_coming_until_switched_off(serve, protocol, length):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).faults.unsolicited_every = 0.05

    pushed = host.read_bytes(0.3)
    bus.board(1).faults.unsolicited_every = None
    # a frame pushed before the switch-off may still be on the line: drain it until a
    # window longer than the period stays silent
    assert wait_until(lambda: host.read_bytes(0.06) == b"")

    assert len(pushed) % length == 0
    assert len(pushed) // length >= 3
    assert host.read_bytes(0.15) == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_inverted_polarity_flips_every_reported_bit(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).door(3).force_open()
    request = bus.protocol.query_all(1)

    normal = host.ask(request).feedback()
    bus.board(1).faults.inverted_polarity = True
    inverted = host.ask(request).feedback()

    locks = range(1, LOCKS + 1)
    assert [normal[n] for n in locks] == [n != 3 for n in locks]
    assert [inverted[n] for n in locks] == [n == 3 for n in locks]


def test_jammed_door_acknowledges_the_unlock_but_stays_shut_and_relatches(serve):
    bus, host = serve("8a80", boards=[1], locks=LOCKS)
    door = bus.board(1).door(6)
    door.faults.jammed = True

    reply = host.ask(xor8a80.UnlockRequest(1, 6))

    assert reply == xor8a80.UnlockReply(1, 6, xor8a80.SIGNAL)  # still closed after the pulse
    assert door.unlock_pulses == 1
    assert wait_until(lambda: door.latched)  # re-latched: a jammed door's spring never acts
    assert not door.is_open
    assert host.ask(xor8a80.QueryLockRequest(1, 6)).feedback() == {6: True}


def test_jammed_kerong_door_keeps_its_hook_engaged(serve):
    bus, host = serve("kerong", boards=[1], locks=LOCKS)
    bus.board(1).door(2).faults.jammed = True

    host.ask(kerong.UnlockRequest(1, 2))
    door = bus.board(1).door(2)
    assert door.unlock_pulses == 1
    assert wait_until(lambda: door.latched)  # re-latched: a jammed door's spring never acts

    assert host.ask(kerong.StatusRequest(1)).feedback()[2]
    assert not door.is_open


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_door_opens_long_after_the_unlock(serve, protocol):
    bus, host = serve(protocol, boards=[1], locks=LOCKS)
    bus.board(1).door(5).faults.slow_open = 0.3
    opened: list[DoorChange] = []
    bus.subscribe(opened.append)

    sent_at = host.send(bus.protocol.unlock(1, 5))
    host.replies(bus.protocol.unlock(1, 5), 1)

    assert not bus.board(1).door(5).is_open  # acknowledged, but not open yet
    assert wait_until(lambda: bool(opened))
    assert opened[0].at - sent_at >= 0.3
    assert (opened[0].board, opened[0].lock, opened[0].is_open) == (1, 5, True)
