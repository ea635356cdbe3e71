"""Every published and derived vector of the 8A/80 and Kerong KR-CU16 protocols, round-tripped.

Vectors and their public sources are listed in docs/protocols.md ("Test vectors"): P =
published by a public source, D = derived from the documented layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from firmware_protocol import kerong, xor8a80
from firmware_protocol.errors import ChecksumError, FrameError

X = xor8a80
K = kerong

# (hex bytes, frame it must decode to, source)
XOR_REQUEST_VECTORS: list[tuple[str, X.XorRequest, str]] = [
    ("8A 01 01 11 9B", X.UnlockRequest(1, 1), "P: QwmLockDemo README; CSDN; master-interface"),
    ("8A 02 01 11 98", X.UnlockRequest(2, 1), "P: QwmLockDemo; Open-Locker codec test"),
    ("80 01 01 33 B3", X.QueryLockRequest(1, 1), "P: QwmLockDemo; CSDN"),
    ("80 01 00 33 B2", X.QueryAllRequest(1), "P: QwmLockDemo; Python client; Open-Locker"),
    ("80 02 00 33 B1", X.QueryAllRequest(2), "P: QwmLockDemo; Open-Locker test"),
    ("80 02 01 33 B0", X.QueryLockRequest(2, 1), "P: QwmLockDemo"),
    ("8A 01 00 11 9A", X.UnlockAllRequest(1), "P: CSDN; Python client"),
    ("8A 02 00 11 99", X.UnlockAllRequest(2), "P: CSDN; Python client"),
    ("8A 01 02 11 98", X.UnlockRequest(1, 2), "P: QwmLockDemo"),
    ("80 01 00 99 18", X.ReadAddressRequest(), "P: QwmLockDemo README"),
    ("8A 03 0C 11 94", X.UnlockRequest(3, 12), "D: Open-Locker driver test, BCC recomputed"),
    ("8A 01 0C 11 96", X.UnlockRequest(1, 12), "D: layout"),
    ("80 01 0C 33 BE", X.QueryLockRequest(1, 12), "D: layout"),
]

XOR_REPLY_VECTORS: list[tuple[str, X.XorReply, str]] = [
    ("8A 01 01 11 9B", X.UnlockReply(1, 1, X.SIGNAL), "P: QwmLockDemo README; CSDN"),
    ("8A 01 01 00 8A", X.UnlockReply(1, 1, X.NO_SIGNAL), "P: QwmLockDemo README; CSDN"),
    ("8A 02 01 11 98", X.UnlockReply(2, 1, X.SIGNAL), "P: QwmLockDemo"),
    ("8A 02 01 00 89", X.UnlockReply(2, 1, X.NO_SIGNAL), "P: QwmLockDemo"),
    ("80 01 01 11 91", X.LockStatusReply(1, 1, X.SIGNAL), "P: QwmLockDemo; CSDN"),
    ("80 01 01 00 80", X.LockStatusReply(1, 1, X.NO_SIGNAL), "P: QwmLockDemo; CSDN"),
    ("80 02 01 11 92", X.LockStatusReply(2, 1, X.SIGNAL), "P: QwmLockDemo"),
    ("80 02 01 00 83", X.LockStatusReply(2, 1, X.NO_SIGNAL), "P: QwmLockDemo"),
    ("80 01 00 00 00 33 B2", X.AllLocksReply(1, bytes(3)), "P: Open-Locker ADR-0061 capture"),
    ("80 01 FF FF FF FF 33 B2", X.AllLocksReply(1, b"\xff" * 4), "P: QwmLockDemo"),
    ("8A 01 00 11 9A", X.UnlockReply(1, 0, X.SIGNAL), "P: CSDN (unlock-all reply, [single])"),
    ("80 02 05 03 33 B7", X.AllLocksReply(2, b"\x05\x03"), "D: Open-Locker codec test"),
]

KERONG_REQUEST_VECTORS: list[tuple[str, K.KerongRequest, str]] = [
    ("02 00 30 03 35", K.StatusRequest(0), "P: jin0949 locker.py; xaleel; KU16; Spanish server"),
    ("02 00 31 03 36", K.UnlockRequest(0, 1), "P: xaleel; KU16; Spanish server"),
    ("02 01 31 03 37", K.UnlockRequest(0, 2), "P: xaleel"),
    ("02 0F 31 03 45", K.UnlockRequest(0, 16), "P: xaleel; KU16"),
    ("02 10 31 03 46", K.UnlockRequest(1, 1), "P: xaleel; Spanish server"),
    ("02 F0 32 03 27", K.BusStatusRequest(), "P: Spanish server; Qt SerialMCU; BLE app"),
    ("02 10 30 03 45", K.StatusRequest(1), "D: layout (corrects xaleel's 3E)"),
    ("02 2F 31 03 65", K.UnlockRequest(2, 16), "D: layout"),
    ("02 00 33 03 38", K.UnlockAllRequest(0), "D: layout"),
    ("02 10 33 03 48", K.UnlockAllRequest(1), "D: layout"),
]

KERONG_REPLY_VECTORS: list[tuple[str, K.StatusReply, str]] = [
    ("02 00 36 00 00 00 00 03 3B", K.StatusReply(0, 0, 0, bus=True), "P: Spanish server capture"),
    ("02 10 36 00 00 00 00 03 4B", K.StatusReply(1, 0, 0, bus=True), "P: Spanish server capture"),
    ("02 00 35 01 00 00 00 03 3B", K.StatusReply(0, 0x0001, 0), "D: reply layout"),
    ("02 00 35 FE FF 01 00 03 38", K.StatusReply(0, 0xFFFE, 0x0001), "D: reply layout"),
]


def _ids(vectors: Sequence[tuple[str, object, str]]) -> list[str]:
    return [vector[0] for vector in vectors]


@pytest.mark.parametrize(
    ("wire", "frame", "source"), XOR_REQUEST_VECTORS, ids=_ids(XOR_REQUEST_VECTORS)
)
def test_published_8a80_request_decodes_and_reencodes_byte_for_byte(
    wire: str, frame: X.XorRequest, source: str
) -> None:
    data = bytes.fromhex(wire)
    decoded = X.decode_request(data)
    assert decoded == frame, source
    assert decoded.to_bytes() == data
    assert type(frame).from_bytes(data) == frame


@pytest.mark.parametrize(
    ("wire", "frame", "source"), XOR_REPLY_VECTORS, ids=_ids(XOR_REPLY_VECTORS)
)
def test_published_8a80_reply_decodes_and_reencodes_byte_for_byte(
    wire: str, frame: X.XorReply, source: str
) -> None:
    data = bytes.fromhex(wire)
    decoded = X.decode_reply(data)
    assert decoded == frame, source
    assert decoded.to_bytes() == data
    assert type(frame).from_bytes(data) == frame


@pytest.mark.parametrize(
    ("wire", "frame", "source"), KERONG_REQUEST_VECTORS, ids=_ids(KERONG_REQUEST_VECTORS)
)
def test_published_kerong_request_decodes_and_reencodes_byte_for_byte(
    wire: str, frame: K.KerongRequest, source: str
) -> None:
    data = bytes.fromhex(wire)
    decoded = K.decode_request(data)
    assert decoded == frame, source
    assert decoded.to_bytes() == data
    assert type(frame).from_bytes(data) == frame


@pytest.mark.parametrize(
    ("wire", "frame", "source"), KERONG_REPLY_VECTORS, ids=_ids(KERONG_REPLY_VECTORS)
)
def test_published_kerong_reply_decodes_and_reencodes_byte_for_byte(
    wire: str, frame: K.StatusReply, source: str
) -> None:
    data = bytes.fromhex(wire)
    assert K.decode_reply(data) == frame, source
    assert K.StatusReply.from_bytes(data).to_bytes() == data


def test_request_built_from_api_values_equals_the_published_bytes() -> None:
    # Frames are generated in code; the hand-typed vectors only check the generator.
    vectors: list[tuple[str, X.XorRequest | K.KerongRequest, str]] = [
        *XOR_REQUEST_VECTORS,
        *KERONG_REQUEST_VECTORS,
    ]
    for wire, frame, _ in vectors:
        assert frame.to_bytes() == bytes.fromhex(wire)


def test_xaleel_status_request_with_wrong_sum_is_rejected() -> None:
    # xaleel/locker locker/contants.py: board 1 status with SUM 3E; the correct SUM is 45.
    with pytest.raises(ChecksumError):
        K.decode_request(bytes.fromhex("02 10 30 03 3E"))
    assert K.StatusRequest(1).to_bytes() == bytes.fromhex("02 10 30 03 45")


def test_xaleel_board1_lock4_vector_is_shown_to_be_the_wrong_frame() -> None:
    # xaleel/locker: "board 1, lock 4" = 02 0F 31 03 49; its SUM does not even check,
    # and board 1 lock 4 really is 02 13 31 03 49.
    with pytest.raises(ChecksumError):
        K.UnlockRequest.from_bytes(bytes.fromhex("02 0F 31 03 49"))
    assert K.UnlockRequest(1, 4).to_bytes() == bytes.fromhex("02 13 31 03 49")
    assert K.UnlockRequest(1, 4).to_bytes() != bytes.fromhex("02 0F 31 03 49")


@pytest.mark.parametrize(
    "wire",
    ["02 01 00 80 00 00 03 86", "02 01 01 81 00 00 03 88"],  # P: KU16/CU12 medical-cabinet docs
)
def test_cu12_frames_are_not_mistaken_for_cu16_frames(wire: str) -> None:
    data = bytes.fromhex(wire)
    for decode in (K.decode_request, K.decode_reply):
        with pytest.raises(FrameError):
            decode(data)


def test_xor_weakness_vector_decodes_as_the_structurally_valid_four_lock_bitmap() -> None:
    # A known XOR weakness: 80 01 00 01 01 33 B2 has the BCC of the all-zero frame; it is a
    # valid 3-status reply with locks 1 and 9 signalling, and only a board cross-check can flag it.
    reply = X.AllLocksReply.from_bytes(bytes.fromhex("80 01 00 01 01 33 B2"))
    assert reply.status_bytes == b"\x00\x01\x01"
    assert {lock for lock, signal in reply.feedback().items() if signal} == {1, 9}
    assert X.QueryAllRequest(1).matches(reply)
    assert not X.QueryAllRequest(2).matches(reply)
