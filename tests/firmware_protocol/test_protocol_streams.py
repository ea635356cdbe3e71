"""Stream decoders of both protocols, both directions, for every frame type.

Each frame is delivered whole, byte by byte, split at every position, after garbage,
with its first byte dropped, with a bad check byte, with a foreign frame interleaved
(an unsolicited 0x82 push, another board's reply, the host's own echo) and twice in
one chunk. The decoder must hand back exactly the good frames, report every skipped
byte as Garbage, and hold nothing once the line has gone quiet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from firmware_protocol import kerong, xor8a80
from firmware_protocol.base import NEED_DATA, Frame, Garbage, Request, StreamDecoder

X = xor8a80
K = kerong


@dataclass(frozen=True)
class Case:
    frame: Frame
    make_decoder: Callable[[], StreamDecoder]
    #: bytes another party may put on the line between our frames
    foreign: bytes
    expected: Request | None = None

    def decoder(self) -> StreamDecoder:
        decoder = self.make_decoder()
        if isinstance(decoder, X.ReplyStreamDecoder | K.ReplyStreamDecoder):
            decoder.expect(self.expected)
        return decoder


PUSH_82 = bytes.fromhex("82 01 01 11 93")  # "active feedback" push of custom firmware
OTHER_BOARD_REPLY = bytes.fromhex("80 01 01 00 80")  # board-side decoder hears it on the bus
KERONG_REQUEST_ECHO = bytes.fromhex("02 00 30 03 35")  # the host's own request echoed
KERONG_BUS_REPLY = bytes.fromhex("02 10 36 00 00 00 00 03 4B")  # another board's reply

CASES = {
    "8a80 unlock request": Case(X.UnlockRequest(1, 1), X.RequestStreamDecoder, PUSH_82),
    "8a80 unlock-all request": Case(X.UnlockAllRequest(31), X.RequestStreamDecoder, PUSH_82),
    "8a80 query-lock request": Case(
        X.QueryLockRequest(2, 32), X.RequestStreamDecoder, OTHER_BOARD_REPLY
    ),
    "8a80 query-all request": Case(X.QueryAllRequest(1), X.RequestStreamDecoder, OTHER_BOARD_REPLY),
    "8a80 read-address request": Case(X.ReadAddressRequest(), X.RequestStreamDecoder, PUSH_82),
    "8a80 unlock reply": Case(
        X.UnlockReply(1, 1, X.SIGNAL), X.ReplyStreamDecoder, PUSH_82, X.UnlockRequest(1, 1)
    ),
    "8a80 unlock-all reply": Case(
        X.UnlockReply(2, 0, X.SIGNAL), X.ReplyStreamDecoder, PUSH_82, X.UnlockAllRequest(2)
    ),
    "8a80 lock-status reply": Case(
        X.LockStatusReply(1, 7, X.NO_SIGNAL),
        X.ReplyStreamDecoder,
        PUSH_82,
        X.QueryLockRequest(1, 7),
    ),
    "8a80 query-all reply, 1 status byte": Case(
        X.AllLocksReply(3, b"\x81"), X.ReplyStreamDecoder, PUSH_82, X.QueryAllRequest(3)
    ),
    "8a80 query-all reply, 2 status bytes": Case(
        X.AllLocksReply(2, b"\x05\x03"), X.ReplyStreamDecoder, PUSH_82, X.QueryAllRequest(2)
    ),
    "8a80 query-all reply, 3 status bytes (capture)": Case(
        X.AllLocksReply(1, bytes(3)), X.ReplyStreamDecoder, PUSH_82, X.QueryAllRequest(1)
    ),
    "8a80 query-all reply, 4 status bytes": Case(
        X.AllLocksReply(1, b"\xff" * 4), X.ReplyStreamDecoder, PUSH_82, X.QueryAllRequest(1)
    ),
    "8a80 query-all reply, nothing expected": Case(
        X.AllLocksReply(5, b"\x12\x34\x56"), X.ReplyStreamDecoder, PUSH_82
    ),
    "8a80 address reply": Case(
        X.AddressReply(9), X.ReplyStreamDecoder, PUSH_82, X.ReadAddressRequest()
    ),
    "kerong status request": Case(K.StatusRequest(1), K.RequestStreamDecoder, KERONG_BUS_REPLY),
    "kerong unlock request": Case(K.UnlockRequest(2, 16), K.RequestStreamDecoder, KERONG_BUS_REPLY),
    "kerong unlock-all request": Case(
        K.UnlockAllRequest(14), K.RequestStreamDecoder, KERONG_BUS_REPLY
    ),
    "kerong bus-status request": Case(
        K.BusStatusRequest(), K.RequestStreamDecoder, KERONG_BUS_REPLY
    ),
    "kerong status reply": Case(
        K.StatusReply(0, 0xFFFE, 0x0001),
        K.ReplyStreamDecoder,
        KERONG_REQUEST_ECHO,
        K.StatusRequest(0),
    ),
    "kerong status reply with STX inside its data": Case(
        K.StatusReply(14, 0x0202, 0x0302, addr_low=3),
        K.ReplyStreamDecoder,
        KERONG_REQUEST_ECHO,
        K.UnlockRequest(14, 4),
    ),
    "kerong bus-status reply": Case(
        K.StatusReply(1, 0, 0, bus=True),
        K.ReplyStreamDecoder,
        KERONG_REQUEST_ECHO,
        K.BusStatusRequest(),
    ),
}


def drain(decoder: StreamDecoder) -> list[Frame | Garbage]:
    """Pull everything the decoder can give until it needs more data."""
    out: list[Frame | Garbage] = []
    while (item := decoder.next_frame()) is not NEED_DATA:
        out.append(item)
    return out


def deliver(case: Case, bursts: list[bytes], chunk: int | None = None) -> list[Frame | Garbage]:
    """Feed each burst (in ``chunk``-sized pieces), then a quiet line; collect the output."""
    decoder = case.decoder()
    out: list[Frame | Garbage] = []
    for burst in bursts:
        step = chunk or len(burst)
        for start in range(0, len(burst), step):
            decoder.feed(burst[start : start + step])
            out += drain(decoder)
        decoder.line_quiet()
        out += drain(decoder)
    assert decoder.buffered == 0
    return out


def frames_of(items: list[Frame | Garbage]) -> list[Frame]:
    return [item for item in items if not isinstance(item, Garbage)]


def garbage_of(items: list[Frame | Garbage]) -> bytes:
    return b"".join(item.data for item in items if isinstance(item, Garbage))


pytestmark = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


def test_whole_frame_is_decoded_exactly(case: Case) -> None:
    assert deliver(case, [case.frame.to_bytes()]) == [case.frame]


def test_frame_arriving_byte_by_byte_is_decoded_once(case: Case) -> None:
    assert deliver(case, [case.frame.to_bytes()], chunk=1) == [case.frame]


def test_frame_split_at_every_position_is_reassembled(case: Case) -> None:
    wire = case.frame.to_bytes()
    for cut in range(1, len(wire)):
        decoder = case.decoder()
        decoder.feed(wire[:cut])
        first = drain(decoder)
        decoder.feed(wire[cut:])
        decoder.line_quiet()
        assert first + drain(decoder) == [case.frame], f"cut at {cut}"


def test_noise_before_a_frame_is_reported_and_the_frame_still_decodes(case: Case) -> None:
    noise = bytes.fromhex("00 FF 13 37 55")
    items = deliver(case, [noise + case.frame.to_bytes()])
    assert frames_of(items) == [case.frame]
    assert garbage_of(items) == noise


def test_frame_with_its_first_byte_lost_is_skipped_and_the_next_one_decodes(case: Case) -> None:
    wire = case.frame.to_bytes()
    for bursts in ([wire[1:], wire], [wire[1:] + wire]):
        items = deliver(case, bursts)
        assert frames_of(items) == [case.frame]
        assert garbage_of(items) == wire[1:]


def test_frame_with_a_bad_check_byte_is_never_decoded(case: Case) -> None:
    wire = case.frame.to_bytes()
    corrupted = wire[:-1] + bytes([wire[-1] ^ 0x5A])
    for bursts in ([corrupted, wire], [corrupted + wire]):
        items = deliver(case, bursts)
        assert frames_of(items) == [case.frame]
        assert garbage_of(items) == corrupted


def test_foreign_frame_between_two_frames_is_skipped(case: Case) -> None:
    wire = case.frame.to_bytes()
    for bursts in ([wire, case.foreign, wire], [wire + case.foreign + wire]):
        items = deliver(case, bursts)
        assert frames_of(items) == [case.frame, case.frame]
        assert garbage_of(items) == case.foreign


def test_two_frames_in_one_chunk_are_both_decoded(case: Case) -> None:
    assert deliver(case, [case.frame.to_bytes() * 2]) == [case.frame, case.frame]


def test_incomplete_tail_is_discarded_when_the_line_goes_quiet(case: Case) -> None:
    wire = case.frame.to_bytes()
    items = deliver(case, [wire[:-1], wire])
    assert frames_of(items) == [case.frame]
    assert garbage_of(items) == wire[:-1]
