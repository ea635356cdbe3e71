"""Property tests: round trips, total decoding, and stream decoders that never get stuck."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import kerong, xor8a80
from firmware_protocol.base import NEED_DATA, Frame, Garbage, StreamDecoder
from firmware_protocol.errors import ProtocolError

X = xor8a80
K = kerong
EXAMPLES = settings(max_examples=200, deadline=None)

xor_boards = st.integers(1, 31)
xor_locks = st.integers(1, 32)
xor_statuses = st.sampled_from([X.SIGNAL, X.NO_SIGNAL])
xor_requests: st.SearchStrategy[Frame] = st.one_of(
    st.builds(X.UnlockRequest, xor_boards, xor_locks),
    st.builds(X.UnlockAllRequest, xor_boards),
    st.builds(X.QueryLockRequest, xor_boards, xor_locks),
    st.builds(X.QueryAllRequest, xor_boards),
    st.just(X.ReadAddressRequest()),
)
xor_replies: st.SearchStrategy[Frame] = st.one_of(
    st.builds(X.UnlockReply, xor_boards, st.integers(0, 32), xor_statuses),
    st.builds(X.LockStatusReply, xor_boards, xor_locks, xor_statuses),
    st.builds(X.AllLocksReply, xor_boards, st.binary(min_size=1, max_size=4)),
    st.builds(X.AddressReply, xor_boards),
)
k_boards = st.integers(0, 14)
k_nibbles = st.integers(0, 15)
k_bitmaps = st.integers(0, 0xFFFF)
kerong_requests: st.SearchStrategy[Frame] = st.one_of(
    st.builds(K.StatusRequest, k_boards, k_nibbles),
    st.builds(K.UnlockRequest, k_boards, st.integers(1, 16)),
    st.builds(K.UnlockAllRequest, k_boards, k_nibbles),
    st.just(K.BusStatusRequest()),
)
kerong_replies: st.SearchStrategy[Frame] = st.builds(
    K.StatusReply, k_boards, k_bitmaps, k_bitmaps, st.booleans(), k_nibbles
)


@dataclass(frozen=True)
class Direction:
    frames: st.SearchStrategy[Frame]
    decode: Callable[[bytes], Frame]
    make_decoder: Callable[[], StreamDecoder]
    longest_frame: int


DIRECTIONS = {
    "8a80 requests": Direction(xor_requests, X.decode_request, X.RequestStreamDecoder, 5),
    "8a80 replies": Direction(xor_replies, X.decode_reply, X.ReplyStreamDecoder, 8),
    "kerong requests": Direction(kerong_requests, K.decode_request, K.RequestStreamDecoder, 5),
    "kerong replies": Direction(kerong_replies, K.decode_reply, K.ReplyStreamDecoder, 9),
}
directions = pytest.mark.parametrize("direction", list(DIRECTIONS.values()), ids=list(DIRECTIONS))


def drain(decoder: StreamDecoder) -> list[Frame | Garbage]:
    out: list[Frame | Garbage] = []
    while (item := decoder.next_frame()) is not NEED_DATA:
        out.append(item)
    return out


def wire_of(items: list[Frame | Garbage]) -> bytes:
    """The bytes the decoder accounted for, in order."""
    return b"".join(item.data if isinstance(item, Garbage) else item.to_bytes() for item in items)


@directions
@EXAMPLES
@given(data=st.data())
def test_every_frame_round_trips_through_its_bytes(
    direction: Direction, data: st.DataObject
) -> None:
    frame = data.draw(direction.frames)
    wire = frame.to_bytes()
    assert direction.decode(wire) == frame
    assert type(frame).from_bytes(wire) == frame  # type: ignore[attr-defined]


@directions
@EXAMPLES
@given(wire=st.binary(max_size=12))
def test_any_bytes_either_decode_to_themselves_or_raise_our_error(
    direction: Direction, wire: bytes
) -> None:
    try:
        frame = direction.decode(wire)
    except ProtocolError:
        return
    assert frame.to_bytes() == wire


@directions
@EXAMPLES
@given(data=st.data())
def test_near_miss_bytes_of_a_valid_frame_either_decode_or_raise_our_error(
    direction: Direction, data: st.DataObject
) -> None:
    wire = bytearray(data.draw(direction.frames).to_bytes())
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] = data.draw(st.integers(0, 255))
    try:
        frame = direction.decode(bytes(wire))
    except ProtocolError:
        return
    assert frame.to_bytes() == wire


@directions
@EXAMPLES
@given(stream=st.binary(max_size=120), cuts=st.lists(st.integers(1, 12), max_size=40))
def test_random_stream_in_random_chunks_never_raises_and_accounts_for_every_byte(
    direction: Direction, stream: bytes, cuts: list[int]
) -> None:
    decoder = direction.make_decoder()
    items: list[Frame | Garbage] = []
    for piece in chunked(stream, cuts):
        decoder.feed(piece)
        items += drain(decoder)
        assert decoder.buffered < direction.longest_frame
    decoder.line_quiet()
    items += drain(decoder)
    assert decoder.buffered == 0
    assert wire_of(items) == stream


def chunked(stream: bytes, cuts: list[int]) -> list[bytes]:
    pieces, position = [], 0
    for size in [*cuts, len(stream)]:
        pieces.append(stream[position : position + size])
        position += size
    return pieces


@directions
@EXAMPLES
@given(data=st.data(), cuts=st.lists(st.integers(1, 12), max_size=40))
def test_frames_mixed_with_noise_in_random_chunks_account_for_every_byte(
    direction: Direction, data: st.DataObject, cuts: list[int]
) -> None:
    segments = data.draw(
        st.lists(st.one_of(direction.frames.map(lambda f: f.to_bytes()), st.binary(max_size=6)))
    )
    stream = b"".join(segments)
    decoder = direction.make_decoder()
    items: list[Frame | Garbage] = []
    for piece in chunked(stream, cuts):
        decoder.feed(piece)
        items += drain(decoder)
        assert decoder.buffered < direction.longest_frame
    decoder.line_quiet()
    items += drain(decoder)
    assert wire_of(items) == stream


@directions
@EXAMPLES
@given(data=st.data(), cuts=st.lists(st.integers(1, 12), max_size=10))
def test_frames_each_ending_in_a_quiet_line_come_back_exactly_whatever_the_chunking(
    direction: Direction, data: st.DataObject, cuts: list[int]
) -> None:
    frames = data.draw(st.lists(direction.frames, max_size=6))
    decoder = direction.make_decoder()
    items: list[Frame | Garbage] = []
    for frame in frames:
        for piece in chunked(frame.to_bytes(), cuts):
            decoder.feed(piece)
            items += drain(decoder)
        decoder.line_quiet()
        items += drain(decoder)
    assert items == frames


@directions
@EXAMPLES
@given(data=st.data(), noise=st.binary(max_size=40))
def test_valid_frame_after_any_garbage_and_a_quiet_line_is_recovered(
    direction: Direction, data: st.DataObject, noise: bytes
) -> None:
    frame = data.draw(direction.frames)
    decoder = direction.make_decoder()
    decoder.feed(noise)
    decoder.line_quiet()
    before = drain(decoder)
    decoder.feed(frame.to_bytes())
    decoder.line_quiet()
    assert drain(decoder) == [frame]
    assert wire_of(before) == noise


@EXAMPLES
@given(
    board=xor_boards,
    count=st.integers(1, 4),
    signals=st.dictionaries(st.integers(1, 32), st.booleans()),
)
def test_query_all_feedback_survives_the_bitmap(
    board: int, count: int, signals: dict[int, bool]
) -> None:
    signals = {lock: on for lock, on in signals.items() if lock <= 8 * count}
    reply = X.AllLocksReply.from_feedback(board, signals, count)
    decoded = X.AllLocksReply.from_bytes(reply.to_bytes())
    assert len(decoded.status_bytes) == count
    assert set(decoded.feedback()) == set(range(1, 8 * count + 1))
    assert {lock: decoded.feedback()[lock] for lock in signals} == signals


@EXAMPLES
@given(
    board=k_boards,
    hooks=st.dictionaries(st.integers(1, 16), st.booleans()),
    items=st.dictionaries(st.integers(1, 16), st.booleans()),
    bus=st.booleans(),
)
def test_kerong_hook_and_item_bits_survive_the_wire(
    board: int, hooks: dict[int, bool], items: dict[int, bool], bus: bool
) -> None:
    decoded = K.StatusReply.from_bytes(
        K.StatusReply.from_feedback(board, hooks, items, bus).to_bytes()
    )
    assert (decoded.board, decoded.bus) == (board, bus)
    assert {lock: decoded.feedback()[lock] for lock in hooks} == hooks
    assert {lock: decoded.items_inside()[lock] for lock in items} == items
