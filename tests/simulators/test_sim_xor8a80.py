"""8A/80 boards on a simulated bus, spoken to through a real pty with pyserial."""

from __future__ import annotations

import itertools
import random
import time

from sim_helpers import FAST, SILENCE, wait_until

from firmware_protocol import xor8a80
from simulators import BoardConfig, DoorChange


def test_unlock_springs_the_door_open_and_the_reply_comes_after_the_pulse(serve):
    timing = FAST.with_changes(unlock_reply_delay=0.15)
    bus, host = serve("8a80", boards=[1, 2], locks=24, timing=timing)
    door = bus.board(1).door(5)

    sent_at = host.send(xor8a80.UnlockRequest(1, 5))
    [reply] = host.replies(xor8a80.UnlockRequest(1, 5), 1)
    answered_after = time.monotonic() - sent_at

    assert reply == xor8a80.UnlockReply(1, 5, xor8a80.NO_SIGNAL)  # door open: no signal
    assert answered_after >= 0.15
    assert door.is_open
    assert not door.latched
    assert door.unlock_pulses == 1
    assert not bus.board(1).door(4).is_open
    assert not bus.board(2).door(5).is_open


def test_query_one_lock_reports_signal_while_closed_and_none_once_open(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    request = xor8a80.QueryLockRequest(1, 3)

    assert host.ask(request) == xor8a80.LockStatusReply(1, 3, xor8a80.SIGNAL)
    bus.board(1).door(3).force_open()
    assert host.ask(request) == xor8a80.LockStatusReply(1, 3, xor8a80.NO_SIGNAL)


def test_query_all_reports_each_boards_bitmap_on_a_shared_bus(serve):
    bus, host = serve("8a80", boards=[1, 2], locks=24)
    bus.board(1).door(3).force_open()
    bus.board(2).door(10).force_open()
    bus.board(2).door(24).force_open()

    first = host.ask(xor8a80.QueryAllRequest(1))
    second = host.ask(xor8a80.QueryAllRequest(2))

    closed_1 = {lock for lock, signal in first.feedback().items() if signal}
    closed_2 = {lock for lock, signal in second.feedback().items() if signal}
    assert closed_1 == set(range(1, 25)) - {3}
    assert closed_2 == set(range(1, 25)) - {10, 24}


def test_query_all_reply_length_follows_the_board_model(serve):
    configs = [BoardConfig(1, locks=8), BoardConfig(2, locks=32), BoardConfig(3, locks=8)]
    configs.append(BoardConfig(4, locks=8, status_bytes=4))
    _, host = serve("8a80", boards=configs)

    lengths = {}
    for board in (1, 2, 3, 4):
        reply = host.ask(xor8a80.QueryAllRequest(board))
        assert isinstance(reply, xor8a80.AllLocksReply)
        lengths[board] = len(reply.status_bytes)

    # 8-channel boards answer with 3 status bytes (Open-Locker capture), 32 need 4.
    assert lengths == {1: 3, 2: 4, 3: 3, 4: 4}


def test_unlock_all_opens_locks_one_after_another_and_replies_at_the_end(serve):
    timing = FAST.with_changes(unlock_all_step=0.04)
    bus, host = serve("8a80", boards=[1], locks=4, timing=timing)
    changes: list[DoorChange] = []
    bus.subscribe(changes.append)

    request = xor8a80.UnlockAllRequest(1)
    host.send(request)
    [reply] = host.replies(request, 1)
    replied_at = time.monotonic()

    assert reply == xor8a80.UnlockReply(1, 0, xor8a80.SIGNAL)
    assert [c.lock for c in changes] == [1, 2, 3, 4]
    assert all(c.is_open for c in changes)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(changes)]
    assert min(gaps) >= 0.03  # one after another, never all at once
    assert changes[-1].at < replied_at


def test_read_address_is_answered_by_the_board_on_the_line(serve):
    _, host = serve("8a80", boards=[7])

    assert host.ask(xor8a80.ReadAddressRequest()) == xor8a80.AddressReply(7)


def test_requests_for_a_board_not_on_the_bus_get_no_answer_and_move_nothing(serve):
    bus, host = serve("8a80", boards=[1, 2], locks=8)

    host.send(xor8a80.UnlockRequest(3, 1))
    host.send(xor8a80.UnlockRequest(1, 9))  # board 1 has no lock 9

    assert host.read_bytes(SILENCE) == b""
    assert all(d.unlock_pulses == 0 for b in bus.boards for d in b.doors)


def test_bus_records_every_request_it_decoded_in_order(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    requests = [xor8a80.QueryLockRequest(1, 2), xor8a80.UnlockRequest(1, 2)]

    for request in requests:
        host.ask(request)

    assert bus.requests() == requests
    times = [at for at, _ in bus.received]
    assert times == sorted(times)


def test_a_frame_full_of_0x03_bytes_crosses_the_pty_intact(serve):
    bus, host = serve("8a80", boards=[3], locks=8)
    bus.board(3).door(3).force_open()
    request = xor8a80.QueryLockRequest(3, 3)
    assert 0x03 in request.to_bytes()  # VINTR on a cooked tty: would vanish as ^C

    host.send(request)

    assert host.read_bytes() == xor8a80.LockStatusReply(3, 3, xor8a80.NO_SIGNAL).to_bytes()


def test_a_torn_request_is_skipped_and_the_next_whole_one_answered(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    host.port.write(xor8a80.UnlockRequest(1, 1).to_bytes()[:3])
    assert wait_until(lambda: len(bus.garbage) == 1)

    assert host.ask(xor8a80.QueryLockRequest(1, 1)) == xor8a80.LockStatusReply(1, 1, xor8a80.SIGNAL)
    assert bus.board(1).door(1).unlock_pulses == 0  # half an unlock is no unlock


def test_line_noise_never_stops_the_boards_from_answering(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    noise = random.Random(20261126).randbytes(2000)

    for start in range(0, len(noise), 97):
        host.port.write(noise[start : start + 97])
    host.read_bytes(SILENCE)  # whatever the noise happened to ask for

    assert bus.garbage
    assert host.ask(xor8a80.QueryLockRequest(1, 8)).board == 1
