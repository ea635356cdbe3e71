"""Learned query-all reply lengths, over a real pty at 9600 baud with UART byte pacing.

An 8A/80 query-all reply carries no length; the codec ends it at its last byte when no
longer reading could follow, and otherwise when the line goes quiet. The link learns
each board's reply length from its answers and ends the next reply as soon as that many
bytes check, instead of waiting for the quiet gap. These tests use the replies where
the gap matters: 2 status bytes, and 3 status bytes whose check byte happens to be 33.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from firmware_protocol import xor8a80
from firmware_protocol.base import Request, RequestKind
from locker_agent.errors import BoardReplyError, BoardTimeout
from locker_agent.serial_link import Exchange, LinkSettings, Priority, SerialLink
from simulators.board import SimulatedBoard
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing

X = xor8a80
BOARD = 1
#: a real line: 9600 baud, paced byte by byte, the board answers a query after 10 ms
LINE = Timing(
    unlock_reply_delay=0.05,
    query_reply_delay=0.01,
    spring_delay=0.02,
    pulse_duration=0.04,
    baud=9600,
    pacing=True,
)
#: longer than the usual 25 ms: a reply read by the quiet line takes at least this long,
#: one ended by its learned length takes ~22 ms here, so the two never mix up
QUIET_GAP = 0.06
SETTINGS = LinkSettings(baudrate=9600, quiet_gap=QUIET_GAP, settle_after_error=0.05)


def _serve(
    locks: int, status_bytes: int, open_doors: set[int], timing: Timing = LINE
) -> SimulatedBus:
    config = SimBoardConfig(BOARD, locks, status_bytes, frozenset(open_doors))
    return SimulatedBus("8a80", [config], timing)


@pytest.fixture
def bus_and_link(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatedBus, SerialLink]]:
    locks, status_bytes, open_doors, settings = request.param
    timing = LINE.with_changes(baud=settings.baudrate)
    with _serve(locks, status_bytes, open_doors, timing) as bus, _link(bus, settings) as link:
        yield bus, link


def _link(bus: SimulatedBus, settings: LinkSettings) -> SerialLink:
    return SerialLink(bus.start_pty(), X.PROTOCOL, settings)


def _poll(link: SerialLink) -> Exchange:
    return link.request(X.QueryAllRequest(BOARD))


def _reply_now(board: SimulatedBoard) -> X.AllLocksReply:
    """What the board answers a query-all with in its present state."""
    return X.AllLocksReply.from_feedback(board.address, board.feedback(), board.status_bytes)


def _unlocks_on_the_wire(bus: SimulatedBus) -> list[Request]:
    return [f for _, f in bus.received if isinstance(f, Request) and f.kind is RequestKind.UNLOCK]


TWO_STATUS_BYTES = (16, 2, {3}, SETTINGS)
#: 8 locks, locks 1 and 8 closed: status 00 00 81, check byte 33 (a 4th status byte
#: could still follow, so today's rule waits for the quiet line)
THREE_STATUS_CHECK_33 = (8, 3, {2, 3, 4, 5, 6, 7}, SETTINGS)


@pytest.mark.parametrize(
    "bus_and_link",
    [TWO_STATUS_BYTES, THREE_STATUS_CHECK_33],
    ids=["2 status bytes", "3 status bytes, check byte 33"],
    indirect=True,
)
def test_later_query_all_replies_of_a_board_end_without_the_quiet_gap(
    bus_and_link: tuple[SimulatedBus, SerialLink],
) -> None:
    bus, link = bus_and_link
    first = _poll(link)
    later = [_poll(link) for _ in range(6)]

    assert first.reply == _reply_now(bus.board(BOARD))
    assert all(exchange.reply == first.reply for exchange in later)
    assert first.round_trip >= QUIET_GAP  # learned on the quiet line
    assert statistics.median(e.round_trip for e in later) < QUIET_GAP
    assert link.stats.garbage == 0


@pytest.mark.parametrize(
    ("fragment_gap", "quiet_gap"),
    [(0.005, 0.025), (0.015, 0.025), (0.02, 0.025), (0.03, 0.045)],
    ids=["5 ms", "15 ms", "20 ms", "30 ms (quiet gap 45 ms)"],
)
def test_fragmented_replies_of_a_learned_length_still_decode(
    fragment_gap: float, quiet_gap: float
) -> None:
    settings = replace(SETTINGS, quiet_gap=quiet_gap)
    with _serve(16, 2, set()) as bus:
        board = bus.board(BOARD)
        board.faults.fragment = 3
        board.faults.fragment_gap = fragment_gap
        with _link(bus, settings) as link:
            for lock in (1, 9, 16, 2, 10):
                board.door(lock).force_open()
                exchange = _poll(link)
                assert exchange.reply == _reply_now(board)
                assert exchange.reply.feedback()[lock] is False  # signal gone: open
            stats = link.stats

    assert (stats.answered, stats.garbage, stats.bad_replies) == (5, 0, 0)


@pytest.mark.parametrize("bus_and_link", [(8, 1, {2}, SETTINGS)], indirect=True)
def test_board_answering_longer_than_learned_is_read_whole_and_its_length_relearned(
    bus_and_link: tuple[SimulatedBus, SerialLink],
) -> None:
    bus, link = bus_and_link
    board = bus.board(BOARD)
    _poll(link)
    assert _poll(link).round_trip < QUIET_GAP  # 5 bytes learned

    board.status_bytes = 2  # the board is swapped for a model with 2 status bytes
    grown = _poll(link)
    after = _poll(link)

    assert grown.reply == after.reply == _reply_now(board)
    assert len(grown.reply.to_bytes()) == 6
    assert grown.round_trip >= QUIET_GAP  # did not check at 5 bytes: read by the quiet line
    assert after.round_trip < QUIET_GAP  # 6 bytes learned
    assert link.stats.garbage == link.stats.learned_length_overruns == 0


# 16 locks; locks 1, 2, 5, 6, 9 and 16 closed. With 3 status bytes the reply is
# 80 01 00 81 33 33 00 (ends at its last byte). Grown to 4 status bytes it is
# 80 01 00 00 81 33 33 00, and its first 7 bytes check as a 3-status reply: the one case
# where ending a reply at its learned length would misread it.
COINCIDENCE = (16, 3, {3, 4, 7, 8, 10, 11, 12, 13, 14, 15}, SETTINGS)
CUT_SHORT = X.AllLocksReply(BOARD, b"\x00\x00\x81")
#: 1200 baud: 8.3 ms a byte, so the link reads the 7th byte before the 8th is there even
#: when its thread is a few ms late (at 9600 both are sometimes read at once; the reply is
#: then read whole, correctly, and there is nothing to refuse)
SLOW_LINE = replace(SETTINGS, baudrate=1200)


@pytest.mark.parametrize("bus_and_link", [(*COINCIDENCE[:3], SLOW_LINE)], indirect=True)
def test_reply_running_on_past_its_learned_length_is_refused_and_the_length_forgotten(
    bus_and_link: tuple[SimulatedBus, SerialLink],
) -> None:
    bus, link = bus_and_link
    board = bus.board(BOARD)
    assert _poll(link).reply == _reply_now(board)  # 7 bytes learned
    board.status_bytes = 4
    grown = _reply_now(board)
    assert grown.to_bytes()[:7] == CUT_SHORT.to_bytes()

    poll = link.submit(X.QueryAllRequest(BOARD))
    time.sleep(0.005)  # the poll is on the line; the unlock waits behind it
    unlock = link.submit(X.UnlockRequest(BOARD, 3), Priority.UNLOCK)  # door 3 is open:
    answered = poll.result(timeout=3.0)  # the state, and so the coincidence, stays
    next_poll = _poll(link)

    assert answered.reply == next_poll.reply == grown  # never the 7-byte reading
    assert answered.attempts == 2  # the reading at 7 bytes was refused, the retry read 8
    assert X.UnlockRequest(BOARD, 3).matches(unlock.result(timeout=3.0).reply)
    assert len(_unlocks_on_the_wire(bus)) == 1
    assert board.door(3).unlock_pulses == 1
    assert link.stats.learned_length_overruns == 1


#: what the link sends right after the reading cut short (door 3 is open, so unlocking
#: it changes no state and the coincidence stays)
NEXT_REQUESTS: dict[str, Request] = {
    "the board's next poll": X.QueryAllRequest(BOARD),
    "an unlock on the board": X.UnlockRequest(BOARD, 3),
    "a poll of another board": X.QueryAllRequest(2),
}


@pytest.mark.parametrize("next_request", NEXT_REQUESTS.values(), ids=NEXT_REQUESTS.keys())
def test_rest_of_a_reply_arriving_after_the_watch_is_caught_and_never_an_answer(
    next_request: Request,
) -> None:
    # An adapter that delivers a reply in bursts: here one byte every 30 ms, longer than
    # the silence the link watches for after a length-ended reply (5 ms), shorter than the
    # quiet gap. The 8th byte then arrives after the 7-byte reading was taken, during the
    # next request.
    locks, status_bytes, open_doors, settings = COINCIDENCE
    boards = [SimBoardConfig(BOARD, locks, status_bytes, frozenset(open_doors))]
    boards.append(SimBoardConfig(2, 8))
    with SimulatedBus("8a80", boards, LINE) as bus:
        board = bus.board(BOARD)
        with _link(bus, replace(settings, query_retries=0)) as link:
            _poll(link)  # 7 bytes learned
            board.status_bytes = 4
            board.faults.fragment = 8
            board.faults.fragment_gap = 0.03

            cut_short = _poll(link)
            next_exchange = link.request(next_request)
            polls = [_poll(link) for _ in range(2)]
            stats = link.stats

    # the risk of ending by length, caught one reply late: counted, the length forgotten
    assert cut_short.reply == CUT_SHORT
    assert stats.learned_length_overruns == 1
    assert stats.garbage >= 1  # the stray 8th byte, never part of another answer
    assert next_request.matches(next_exchange.reply)
    assert [p.reply for p in polls] == [_reply_now(board)] * 2
    assert board.door(3).unlock_pulses == len(_unlocks_on_the_wire(bus))


@pytest.mark.parametrize(
    ("fault", "error"), [("silent", BoardTimeout), ("corrupt_checksum", BoardReplyError)]
)
@pytest.mark.parametrize("bus_and_link", [TWO_STATUS_BYTES], indirect=True)
def test_board_that_failed_to_answer_is_read_by_the_quiet_gap_again(
    bus_and_link: tuple[SimulatedBus, SerialLink], fault: str, error: type[Exception]
) -> None:
    bus, link = bus_and_link
    board = bus.board(BOARD)
    _poll(link)
    assert _poll(link).round_trip < QUIET_GAP  # learned

    setattr(board.faults, fault, True)
    with pytest.raises(error):
        _poll(link)
    setattr(board.faults, fault, False)
    relearned = _poll(link)
    after = _poll(link)

    assert relearned.reply == after.reply == _reply_now(board)
    assert relearned.round_trip >= QUIET_GAP  # the learned length was forgotten
    assert after.round_trip < QUIET_GAP
