"""Per-cabinet pickup keys and credential hashes, identical on server and agent."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from locker_contract import cabinet_pickup_key, credential_hash, maintenance_token_hash

SERVER_KEY = b"\x01" * 32


def test_the_cabinet_key_is_the_documented_hmac_of_its_database_id() -> None:
    expected = hmac.new(SERVER_KEY, b"lockers/v1/cabinet-pickup-key\x0042", hashlib.sha256)
    assert cabinet_pickup_key(SERVER_KEY, 42) == expected.digest()


def test_a_credential_hash_is_the_documented_hmac_under_the_cabinet_key() -> None:
    key = cabinet_pickup_key(SERVER_KEY, 42)
    expected = hmac.new(key, b"lockers/v1/pickup/code\x0012345678", hashlib.sha256).hexdigest()
    assert credential_hash(key, "code", "12345678") == expected


def test_the_same_code_hashes_differently_in_another_cabinet() -> None:
    one, two = cabinet_pickup_key(SERVER_KEY, 1), cabinet_pickup_key(SERVER_KEY, 2)
    assert credential_hash(one, "code", "12345678") != credential_hash(two, "code", "12345678")


def test_a_code_and_a_qr_token_with_the_same_text_never_share_a_hash() -> None:
    key = cabinet_pickup_key(SERVER_KEY, 1)
    assert credential_hash(key, "code", "12345678") != credential_hash(key, "qr", "12345678")


def test_an_unknown_credential_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind"):
        credential_hash(b"k", "pin", "1234")  # type: ignore[arg-type]


def test_the_maintenance_token_hash_is_plain_sha256_hex() -> None:
    assert maintenance_token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
