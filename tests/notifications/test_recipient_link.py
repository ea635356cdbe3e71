"""The recipient's link: it round-trips, and anything not made by us (or past its time)
is refused with our own error, never a crash."""

from __future__ import annotations

import base64
import contextlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locker_server.notifications.errors import LinkRejected
from locker_server.notifications.recipient_link import (
    LINK_GRACE,
    LinkKeys,
    RecipientLink,
    form_token,
    link_expiry,
    link_url,
    open_link,
    seal_link,
)
from tests.notifications.notification_support import QR_TOKEN

KEYS = LinkKeys.derive(bytes(range(32)))
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LINK = RecipientLink(
    parcel_id=41, recipient_id=7, expires_at=NOW + timedelta(days=3), qr_token=QR_TOKEN
)


def _flip(token: str, index: int) -> str:
    blob = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    blob[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()


def test_a_link_opens_to_what_it_was_made_of() -> None:
    token = seal_link(KEYS, LINK)
    assert open_link(KEYS, token, now=NOW) == LINK
    assert len(token) < 130  # short enough to travel in an SMS (a real QR token: ~103)
    assert QR_TOKEN not in token


def test_the_same_link_sealed_twice_gives_two_different_tokens() -> None:
    assert seal_link(KEYS, LINK) != seal_link(KEYS, LINK)


def test_a_link_does_not_print_its_qr_token() -> None:
    assert QR_TOKEN not in repr(LINK)
    assert repr(KEYS.sealing) not in repr(KEYS)


@pytest.mark.parametrize("index", [0, 1, 12, 13, 30, -1])
def test_any_changed_byte_is_refused(index: int) -> None:
    altered = _flip(seal_link(KEYS, LINK), index)
    with pytest.raises(LinkRejected) as refused:
        open_link(KEYS, altered, now=NOW)
    assert refused.value.reason in ("forged", "malformed")
    assert refused.value.link is None


def test_a_link_made_with_another_key_is_refused_as_forged() -> None:
    other = LinkKeys.derive(secrets.token_bytes(32))
    with pytest.raises(LinkRejected, match="forged"):
        open_link(KEYS, seal_link(other, LINK), now=NOW)


@pytest.mark.parametrize("token", ["", "x", "!!!!", "é" * 10, "A" * 600, "AQ", "AQ" * 20])
def test_garbage_is_refused_as_malformed_or_forged(token: str) -> None:
    with pytest.raises(LinkRejected):
        open_link(KEYS, token, now=NOW)


@given(st.text(max_size=300))
def test_any_text_either_opens_or_is_refused_with_our_error(token: str) -> None:
    with contextlib.suppress(LinkRejected):
        open_link(KEYS, token, now=NOW)


def test_an_expired_link_is_refused_but_says_which_parcel_it_was() -> None:
    token = seal_link(KEYS, LINK)
    with pytest.raises(LinkRejected, match="expired") as refused:
        open_link(KEYS, token, now=LINK.expires_at)
    assert refused.value.link is not None
    assert refused.value.link.parcel_id == 41


def test_a_link_outlives_the_deadline_by_the_grace_period() -> None:
    assert link_expiry(NOW) == NOW + LINK_GRACE


def test_the_url_is_the_page_path_on_the_public_base() -> None:
    assert link_url("https://lockers.example/", "abc") == "https://lockers.example/p/abc"


def test_the_form_token_follows_from_the_link_and_the_key_only() -> None:
    token = seal_link(KEYS, LINK)
    assert form_token(KEYS, token) == form_token(KEYS, token)
    assert form_token(KEYS, token) != form_token(KEYS, seal_link(KEYS, LINK))
    assert form_token(KEYS, token) != form_token(LinkKeys.derive(secrets.token_bytes(32)), token)
