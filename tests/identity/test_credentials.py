"""Passwords, tokens and API keys on their own, without the HTTP layer."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from locker_server.auth import passwords
from locker_server.auth.apikeys import (
    api_key_matches,
    generate_api_key,
    hash_api_key,
    parse_api_key,
)
from locker_server.auth.errors import CredentialsRejected
from locker_server.auth.login import LoginThrottle
from locker_server.auth.tokens import decode_access_token, issue_access_token
from locker_server.errors import ValidationFailed

KEY = secrets.token_bytes(32)


def test_password_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    stored = passwords.hash_password("correct horse battery staple")

    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "correct horse battery staple")
    assert not passwords.verify_password(stored, "correct horse battery stapler")


def test_an_unknown_user_costs_a_full_hash_check_and_never_matches() -> None:
    stored = passwords.hash_password("correct horse battery staple")

    real = _fastest(lambda: passwords.verify_password(stored, "wrong password here"))
    unknown = _fastest(
        lambda: passwords.verify_password(None, "no such user - constant time filler")
    )

    assert passwords.verify_password(None, "no such user - constant time filler") is False
    assert unknown > real / 5  # an argon2 verification, not an early return


def _fastest(action: Callable[[], object], runs: int = 3) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


@pytest.mark.parametrize("password", ["", "short", " " * 20, "x" * 257])
def test_weak_or_absurd_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValidationFailed):
        passwords.hash_password(password)


def test_token_round_trip_keeps_user_role_and_a_unique_id() -> None:
    first = issue_access_token(
        KEY, user_id=7, role="operator", stamp="s", lifetime=timedelta(minutes=5)
    )
    second = issue_access_token(
        KEY, user_id=7, role="operator", stamp="s", lifetime=timedelta(minutes=5)
    )

    claims = decode_access_token(KEY, first.access_token)

    assert (claims.user_id, claims.role) == (7, "operator")
    assert claims.jti != decode_access_token(KEY, second.access_token).jti
    assert first.expires_in == 300


def test_token_without_a_required_claim_or_with_a_foreign_issuer_is_refused() -> None:
    now = datetime.now(UTC)
    base = {
        "sub": "7",
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j",
        "stp": "s",
    }

    no_issuer = jwt.encode(base, KEY, algorithm="HS256")
    foreign = jwt.encode(base | {"iss": "someone-else"}, KEY, algorithm="HS256")
    odd_subject = jwt.encode(base | {"iss": "locker-server", "sub": "admin"}, KEY, "HS256")

    for token in (no_issuer, foreign, odd_subject):
        with pytest.raises(CredentialsRejected, match="invalid or expired credentials"):
            decode_access_token(KEY, token)


def test_api_key_is_parsed_and_matched_by_its_keyed_hash() -> None:
    new = generate_api_key()
    stored = hash_api_key(KEY, new.key)

    presented = parse_api_key(new.key)

    assert presented is not None
    assert presented.prefix == new.prefix
    assert api_key_matches(KEY, new.key, stored)
    assert not api_key_matches(secrets.token_bytes(32), new.key, stored)
    assert new.key not in stored


@pytest.mark.parametrize(
    "credential",
    ["lk_", "lk_abc_def", "lk_0123456789ab_" + "A" * 42, "lk_0123456789AB_" + "A" * 43],
)
def test_keys_of_the_wrong_shape_are_not_parsed(credential: str) -> None:
    assert parse_api_key(credential) is None


def test_throttle_memory_stays_bounded_when_many_names_are_tried() -> None:
    now = [0.0]
    throttle = LoginThrottle(window_seconds=10, max_buckets=100, clock=lambda: now[0])
    for index in range(1000):
        now[0] = index
        throttle.record_failure(f"name-{index}", None)

    assert len(throttle._failures) <= 100 + 10
