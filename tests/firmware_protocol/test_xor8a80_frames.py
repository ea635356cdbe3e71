"""8A/80 frames: field validation, feedback bitmaps, request/reply matching, reply shapes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from firmware_protocol import xor8a80
from firmware_protocol.base import NEED_DATA, Garbage, Reply, RequestKind, StreamDecoder
from firmware_protocol.errors import (
    ChecksumError,
    EncodeError,
    FrameError,
    UnexpectedFrameError,
)

X = xor8a80  # short alias: frames are named as in the protocol doc


def drain(decoder: StreamDecoder) -> list[object]:
    out: list[object] = []
    while (item := decoder.next_frame()) is not NEED_DATA:
        out.append(item)
    return out


@pytest.mark.parametrize(
    "build",
    [
        lambda: X.UnlockRequest(0, 1),
        lambda: X.UnlockRequest(32, 1),
        lambda: X.UnlockRequest(1, 0),
        lambda: X.UnlockRequest(1, 33),
        lambda: X.UnlockAllRequest(0),
        lambda: X.QueryLockRequest(1, 0),
        lambda: X.QueryAllRequest(32),
        lambda: X.UnlockReply(1, 1, 0x33),
        lambda: X.LockStatusReply(1, 0, X.SIGNAL),
        lambda: X.AllLocksReply(1, b""),
        lambda: X.AllLocksReply(1, bytes(5)),
        lambda: X.AddressReply(0),
    ],
)
def test_frame_that_cannot_exist_on_the_wire_is_refused_when_built(
    build: Callable[[], object],
) -> None:
    with pytest.raises(EncodeError):
        build()


def test_lock_zero_in_an_unlock_frame_means_unlock_all_and_nothing_else() -> None:
    assert X.decode_request(bytes.fromhex("8A 01 00 11 9A")) == X.UnlockAllRequest(1)
    with pytest.raises(UnexpectedFrameError):
        X.UnlockRequest.from_bytes(bytes.fromhex("8A 01 00 11 9A"))


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("8A 01 01 11", FrameError),  # too short
        ("8A 01 01 11 9B 00", FrameError),  # too long for a request
        ("8A 01 01 11 9C", ChecksumError),
        ("82 01 01 11 93", FrameError),  # unsolicited push, not a request
        ("8A 20 01 11 BA", FrameError),  # board 32
        ("8A 01 21 11 BB", FrameError),  # lock 33
        ("8A 01 01 22 A8", UnexpectedFrameError),  # unknown function
        ("80 01 01 11 91", UnexpectedFrameError),  # a status reply is no request
    ],
)
def test_request_decoder_refuses_malformed_bytes_with_our_errors(
    wire: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        X.decode_request(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("80 01 01 22 A2", FrameError),  # status must be 00 or 11
        ("8A 01 01 33 B9", FrameError),  # unlock reply status
        ("80 02 07 99 1C", FrameError),  # address reply must carry board byte 01
        ("80 01 00 00 00 00 81", FrameError),  # 6+ bytes must end with 33
        ("8A 01 01 11 00 9B", FrameError),  # unlock reply is exactly 5 bytes
        ("80 01 00 00 00 00 00 00 33 B2", FrameError),  # 5 status bytes
        ("80 01 00 00 00 33 B3", ChecksumError),
    ],
)
def test_reply_decoder_refuses_malformed_bytes_with_our_errors(
    wire: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        X.decode_reply(bytes.fromhex(wire))


def test_query_all_bitmap_last_status_byte_is_locks_one_to_eight() -> None:
    # Open-Locker codec test: 80 02 05 03 33 — 03 marks locks 1, 2 and 05 marks 9, 11.
    reply = X.AllLocksReply.from_bytes(bytes.fromhex("80 02 05 03 33 B7"))
    signalling = {lock for lock, signal in reply.feedback().items() if signal}
    assert signalling == {1, 2, 9, 11}
    assert set(reply.feedback()) == set(range(1, 17))


def test_query_all_reply_built_from_feedback_has_the_board_models_length() -> None:
    feedback = {1: True, 2: True, 9: True, 11: True, 24: False}
    reply = X.AllLocksReply.from_feedback(2, feedback, status_byte_count=3)
    assert reply.to_bytes() == bytes.fromhex("80 02 00 05 03 33") + bytes(
        [X.bcc(reply.to_bytes()[:-1])]
    )
    assert {lock for lock, on in reply.feedback().items() if on} == {1, 2, 9, 11}


def test_feedback_for_a_lock_the_board_model_does_not_have_is_refused() -> None:
    with pytest.raises(EncodeError):
        X.AllLocksReply.from_feedback(1, {9: True}, status_byte_count=1)


def test_single_lock_feedback_is_the_raw_signal_not_a_door_state() -> None:
    assert X.LockStatusReply(1, 3, X.SIGNAL).feedback() == {3: True}
    assert X.LockStatusReply(1, 3, X.NO_SIGNAL).feedback() == {3: False}
    assert X.UnlockReply(1, 3, X.SIGNAL).feedback() == {3: True}
    assert X.UnlockReply(1, 0, X.SIGNAL).feedback() == {}
    assert X.AddressReply(4).feedback() == {}


def test_address_reply_reports_the_dip_address_as_the_board() -> None:
    reply = X.AddressReply.from_bytes(bytes.fromhex("80 01 05 99") + bytes([0x80 ^ 1 ^ 5 ^ 0x99]))
    assert reply.address == reply.board == 5
    assert X.ReadAddressRequest().matches(reply)


MATCH_TABLE: list[tuple[object, Reply, bool]] = [
    (X.UnlockRequest(1, 1), X.UnlockReply(1, 1, X.NO_SIGNAL), True),
    (X.UnlockRequest(1, 1), X.UnlockReply(2, 1, X.NO_SIGNAL), False),  # other board
    (X.UnlockRequest(1, 1), X.UnlockReply(1, 2, X.NO_SIGNAL), False),  # other lock
    (X.UnlockRequest(1, 1), X.LockStatusReply(1, 1, X.NO_SIGNAL), False),
    (X.UnlockRequest(1, 1), X.UnlockReply(1, 0, X.SIGNAL), False),
    (X.UnlockAllRequest(1), X.UnlockReply(1, 0, X.SIGNAL), True),
    (X.UnlockAllRequest(1), X.UnlockReply(1, 1, X.SIGNAL), False),
    (X.QueryLockRequest(2, 5), X.LockStatusReply(2, 5, X.SIGNAL), True),
    (X.QueryLockRequest(2, 5), X.LockStatusReply(2, 6, X.SIGNAL), False),
    (X.QueryLockRequest(2, 5), X.UnlockReply(2, 5, X.SIGNAL), False),
    (X.QueryAllRequest(2), X.AllLocksReply(2, bytes(3)), True),
    (X.QueryAllRequest(2), X.AllLocksReply(1, bytes(3)), False),
    (X.QueryAllRequest(2), X.LockStatusReply(2, 1, X.SIGNAL), False),
    (X.ReadAddressRequest(), X.AddressReply(7), True),
    (X.ReadAddressRequest(), X.LockStatusReply(1, 1, X.SIGNAL), False),
]


@pytest.mark.parametrize(("request_", "reply", "expected"), MATCH_TABLE)
def test_reply_answers_only_the_request_of_its_kind_board_and_lock(
    request_: X.XorRequest, reply: Reply, expected: bool
) -> None:
    assert request_.matches(reply) is expected


def test_every_request_names_its_kind() -> None:
    kinds: dict[X.XorRequest, RequestKind] = {
        X.UnlockRequest(1, 1): RequestKind.UNLOCK,
        X.UnlockAllRequest(1): RequestKind.UNLOCK_ALL,
        X.QueryLockRequest(1, 1): RequestKind.QUERY_LOCK,
        X.QueryAllRequest(1): RequestKind.QUERY_ALL,
        X.ReadAddressRequest(): RequestKind.READ_ADDRESS,
    }
    for request, kind in kinds.items():
        assert request.kind is kind


def test_single_lock_reply_is_returned_without_waiting_for_a_quiet_line() -> None:
    decoder = X.ReplyStreamDecoder()
    decoder.expect(X.QueryLockRequest(1, 1))
    decoder.feed(bytes.fromhex("80 01 01 11 91"))
    assert drain(decoder) == [X.LockStatusReply(1, 1, X.SIGNAL)]


def test_query_all_reply_waits_for_quiet_line_when_a_longer_reading_is_still_possible() -> None:
    decoder = X.ReplyStreamDecoder()
    decoder.expect(X.QueryAllRequest(3))
    decoder.feed(X.AllLocksReply(3, b"\x81").to_bytes())
    assert drain(decoder) == []
    decoder.line_quiet()
    assert drain(decoder) == [X.AllLocksReply(3, b"\x81")]


def test_captured_three_byte_query_all_reply_needs_no_quiet_line() -> None:
    decoder = X.ReplyStreamDecoder()
    decoder.expect(X.QueryAllRequest(1))
    decoder.feed(bytes.fromhex("80 01 00 00 00 33 B2"))
    assert drain(decoder) == [X.AllLocksReply(1, bytes(3))]


def test_late_query_all_reply_is_not_misread_as_the_single_lock_answer() -> None:
    # 80 01 05 00 84 starts with a valid "board 1, lock 5, no signal" frame, but the whole
    # burst is a query-all reply that arrived after its request timed out.
    stale = X.AllLocksReply(1, b"\x05\x00\x84")
    assert stale.to_bytes()[:5] == X.LockStatusReply(1, 5, X.NO_SIGNAL).to_bytes()
    decoder = X.ReplyStreamDecoder()
    decoder.expect(X.QueryLockRequest(1, 5))
    decoder.feed(stale.to_bytes())
    decoder.line_quiet()
    items = drain(decoder)
    assert items == [stale]
    assert not X.QueryLockRequest(1, 5).matches(stale)


def test_five_byte_reply_in_its_own_burst_stays_a_single_lock_reply_while_query_all_expected() -> (
    None
):
    decoder = X.ReplyStreamDecoder()
    decoder.expect(X.QueryAllRequest(1))
    decoder.feed(bytes.fromhex("80 01 01 11 91"))
    decoder.line_quiet()
    assert drain(decoder) == [X.LockStatusReply(1, 1, X.SIGNAL)]


def test_reply_from_the_wrong_board_decodes_but_does_not_answer_the_request() -> None:
    decoder = X.ReplyStreamDecoder()
    request = X.QueryAllRequest(1)
    decoder.expect(request)
    decoder.feed(bytes.fromhex("80 02 00 00 00 33 B1"))
    [reply] = drain(decoder)
    assert isinstance(reply, X.AllLocksReply)
    assert reply.board == 2
    assert not request.matches(reply)


def test_unsolicited_push_is_reported_as_garbage_with_its_reason() -> None:
    decoder = X.ReplyStreamDecoder()
    decoder.feed(bytes.fromhex("82 01 03 11 91") + bytes.fromhex("8A 01 01 00 8A"))
    skipped, reply = drain(decoder)
    assert isinstance(skipped, Garbage)
    assert "unsolicited" in skipped.reason
    assert reply == X.UnlockReply(1, 1, X.NO_SIGNAL)


def test_bad_bcc_is_reported_as_such() -> None:
    decoder = X.RequestStreamDecoder()
    decoder.feed(bytes.fromhex("8A 01 01 11 9C"))
    [skipped] = drain(decoder)
    assert isinstance(skipped, Garbage)
    assert "BCC" in skipped.reason
    assert skipped.data == bytes.fromhex("8A 01 01 11 9C")
