"""Kerong KR-CU16 frames: address nibbles, hook/item bitmaps, matching, malformed bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from firmware_protocol import kerong
from firmware_protocol.base import NEED_DATA, Garbage, Reply, RequestKind
from firmware_protocol.errors import (
    ChecksumError,
    EncodeError,
    FrameError,
    UnexpectedFrameError,
)

K = kerong  # short alias: frames are named as in the protocol doc


@pytest.mark.parametrize(
    "build",
    [
        lambda: K.StatusRequest(15),  # board F is the broadcast address
        lambda: K.StatusRequest(-1),
        lambda: K.UnlockRequest(0, 0),
        lambda: K.UnlockRequest(0, 17),
        lambda: K.UnlockAllRequest(15),
        lambda: K.StatusReply(0, 0x1_0000, 0),
        lambda: K.StatusReply(0, 0, -1),
        lambda: K.StatusReply(0, 0, 0, addr_low=16),
        lambda: K.StatusReply.from_feedback(0, {17: True}, {}),
    ],
)
def test_frame_that_cannot_exist_on_the_wire_is_refused_when_built(
    build: Callable[[], object],
) -> None:
    with pytest.raises(EncodeError):
        build()


def test_lock_number_is_one_based_and_the_wire_nibble_zero_based() -> None:
    assert K.UnlockRequest(1, 1).to_bytes()[1] == 0x10
    assert K.UnlockRequest(1, 16).to_bytes()[1] == 0x1F
    assert K.UnlockRequest.from_bytes(bytes.fromhex("02 13 31 03 49")) == K.UnlockRequest(1, 4)


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("02 00 30 03", FrameError),
        ("02 00 30 04 36", FrameError),  # ETX missing, SUM matches the bytes
        ("03 00 30 03 36", FrameError),  # STX missing
        ("02 00 30 03 36", ChecksumError),
        ("02 F0 30 03 25", FrameError),  # board F is not a board
        ("02 00 37 03 3C", UnexpectedFrameError),  # set pulse time: not implemented
        ("02 00 32 03 37", UnexpectedFrameError),  # bus status must go to F0
    ],
)
def test_request_decoder_refuses_malformed_bytes_with_our_errors(
    wire: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        K.decode_request(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("02 00 35 01 00 00 00 04 3C", FrameError),  # ETX missing, SUM matches the bytes
        ("02 00 35 01 00 00 00 03 3C", ChecksumError),
        ("02 00 38 01 00 00 00 03 3E", UnexpectedFrameError),  # pulse-time reply
        ("02 F0 35 00 00 00 00 03 2A", FrameError),  # board F
        ("02 00 35 01 00 00 03 3B", FrameError),  # 8 bytes
    ],
)
def test_reply_decoder_refuses_malformed_bytes_with_our_errors(
    wire: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        K.decode_reply(bytes.fromhex(wire))


def test_hook_bytes_map_locks_one_to_sixteen_and_item_bytes_follow() -> None:
    reply = K.StatusReply.from_bytes(bytes.fromhex("02 00 35 FE FF 01 00 03 38"))
    assert reply.feedback() == {lock: lock != 1 for lock in range(1, 17)}
    assert reply.items_inside() == {lock: lock == 1 for lock in range(1, 17)}


def test_status_reply_built_from_feedback_round_trips() -> None:
    hooks = {1: True, 8: True, 9: True, 16: True, 2: False}
    items = {3: True, 12: True}
    reply = K.StatusReply.from_feedback(3, hooks, items)
    wire = reply.to_bytes()
    assert wire[3:7] == bytes([0x81, 0x81, 0x04, 0x08])
    decoded = K.StatusReply.from_bytes(wire)
    assert {lock for lock, on in decoded.feedback().items() if on} == {1, 8, 9, 16}
    assert {lock for lock, on in decoded.items_inside().items() if on} == {3, 12}


def test_reply_low_address_nibble_is_kept_but_ignored_for_matching() -> None:
    wire = K.StatusReply(1, 0, 0, addr_low=4).to_bytes()
    reply = K.StatusReply.from_bytes(wire)
    assert reply.to_bytes() == wire
    assert K.UnlockRequest(1, 5).matches(reply)
    assert K.StatusRequest(1).matches(reply)


MATCH_TABLE: list[tuple[K.KerongRequest, Reply, bool]] = [
    (K.StatusRequest(1), K.StatusReply(1, 0, 0), True),
    (K.StatusRequest(1), K.StatusReply(2, 0, 0), False),
    (K.StatusRequest(1), K.StatusReply(1, 0, 0, bus=True), False),
    (K.UnlockRequest(1, 3), K.StatusReply(1, 0, 0), True),
    (K.UnlockRequest(1, 3), K.StatusReply(0, 0, 0), False),
    (K.UnlockAllRequest(1), K.StatusReply(1, 0, 0), True),
    (K.UnlockAllRequest(1), K.StatusReply(1, 0, 0, bus=True), False),
    (K.BusStatusRequest(), K.StatusReply(7, 0, 0, bus=True), True),
    (K.BusStatusRequest(), K.StatusReply(7, 0, 0), False),
]


@pytest.mark.parametrize(("request_", "reply", "expected"), MATCH_TABLE)
def test_reply_answers_only_requests_of_its_board_and_command(
    request_: K.KerongRequest, reply: Reply, expected: bool
) -> None:
    assert request_.matches(reply) is expected


def test_every_request_names_its_kind() -> None:
    assert K.StatusRequest(0).kind is RequestKind.QUERY_ALL
    assert K.UnlockRequest(0, 1).kind is RequestKind.UNLOCK
    assert K.UnlockAllRequest(0).kind is RequestKind.UNLOCK_ALL
    assert K.BusStatusRequest().kind is RequestKind.BUS_STATUS


def test_query_of_one_lock_is_the_board_status_request_after_checking_the_lock() -> None:
    assert K.PROTOCOL.query_lock(2, 16) == K.StatusRequest(2)
    with pytest.raises(EncodeError):
        K.PROTOCOL.query_lock(2, 17)


def test_bus_status_replies_of_several_boards_decode_in_order() -> None:
    # Spanish server capture: boards 0 and 1 answer 02 F0 32 03 27 back to back.
    decoder = K.ReplyStreamDecoder()
    decoder.expect(K.BusStatusRequest())
    decoder.feed(bytes.fromhex("02 00 36 00 00 00 00 03 3B 02 10 36 00 00 00 00 03 4B"))
    items = [decoder.next_frame(), decoder.next_frame(), decoder.next_frame()]
    assert items == [K.StatusReply(0, 0, 0, True), K.StatusReply(1, 0, 0, True), NEED_DATA]


def test_bad_sum_is_reported_as_such() -> None:
    decoder = K.RequestStreamDecoder()
    decoder.feed(bytes.fromhex("02 10 30 03 3E"))
    skipped = decoder.next_frame()
    assert isinstance(skipped, Garbage)
    assert "SUM" in skipped.reason
