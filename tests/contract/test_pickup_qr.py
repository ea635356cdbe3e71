"""A cabinet reads back exactly the token the server put in the e-mail's QR, and nothing else."""

from __future__ import annotations

import binascii
import secrets
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locker_contract.pickup_qr import (
    QrVerdict,
    encode_pickup_qr,
    parse_pickup_qr,
    read_pickup_qr,
)

TOKEN = "Qk9YLTdmM2E5YzFlNWIyZDRmNmE4YzBl"
BASE64URL = string.ascii_letters + string.digits + "-_"


def test_server_payload_is_prefixed_token_and_four_hex_check_digits() -> None:
    prefix, token, check = encode_pickup_qr(TOKEN).split(":")
    assert (prefix, token) == ("LKR1", TOKEN)
    assert len(check) == 4
    assert check == check.upper()


def test_check_is_crc16_ibm3740_over_the_prefix_and_token() -> None:
    # check value of CRC-16/IBM-3740 (alias CCITT-FALSE) for "123456789": 0x29B1, from the
    # catalogue of parametrised CRC algorithms (reveng.sourceforge.io/crc-catalogue)
    assert encode_pickup_qr("123456789").endswith(":" + _crc("LKR1:123456789"))
    assert _crc("123456789") == "29B1"


def _crc(text: str) -> str:
    return f"{binascii.crc_hqx(text.encode(), 0xFFFF):04X}"


@given(st.text(alphabet=BASE64URL, min_size=1, max_size=128))
def test_every_issued_token_reads_back_unchanged(token: str) -> None:
    assert parse_pickup_qr(encode_pickup_qr(token)) == token


def test_real_server_token_reads_back() -> None:
    token = secrets.token_urlsafe(24)
    assert read_pickup_qr(encode_pickup_qr(token)) == (QrVerdict.PICKUP, token)


@pytest.mark.parametrize(
    "foreign",
    [
        TOKEN,  # a QR made before the format existed: only the bare token
        "https://example.org/track/123",
        "(00)012345678901234567",  # a parcel label
        "BADGE:courier-42",
        "",
        "lkr1:" + TOKEN + ":0000",  # the prefix is case-sensitive
    ],
)
def test_codes_that_are_not_ours_are_foreign(foreign: str) -> None:
    assert read_pickup_qr(foreign) == (QrVerdict.FOREIGN, None)


def test_any_single_flipped_character_is_caught_by_the_check() -> None:
    payload = encode_pickup_qr(TOKEN)
    start = len("LKR1:")
    for index in range(start, len(payload)):
        if payload[index] == ":":
            continue
        for replacement in "A7_f":
            if replacement == payload[index]:
                continue
            misread = payload[:index] + replacement + payload[index + 1 :]
            assert read_pickup_qr(misread) == (QrVerdict.DAMAGED, None), misread


@pytest.mark.parametrize(
    "damaged",
    [
        "LKR1:",
        "LKR1:" + TOKEN,  # truncated before the check
        encode_pickup_qr(TOKEN)[:-1],
        encode_pickup_qr(TOKEN) + "\n",
        encode_pickup_qr(TOKEN).lower().replace("lkr1", "LKR1"),
        "LKR1:tok en:" + encode_pickup_qr("x")[-4:],
        "LKR1:" + "a" * 129 + ":0000",
    ],
)
def test_codes_that_start_like_ours_but_fail_are_damaged(damaged: str) -> None:
    assert read_pickup_qr(damaged) == (QrVerdict.DAMAGED, None)


@pytest.mark.parametrize("bad", ["", "a:b", "tok en", "a" * 129, "ä"])
def test_server_refuses_to_encode_what_is_not_a_qr_token(bad: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        encode_pickup_qr(bad)
