"""Offline pickups: the allow-list the server sends, checked by the cabinet on its own."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest

from locker_agent.pickup.allowlist import (
    AllowList,
    LockoutStatus,
    Match,
    MemoryAllowListStore,
    NoMatch,
)
from locker_contract import (
    AllowListEntry,
    AllowListSync,
    LockoutPolicy,
    cabinet_pickup_key,
    credential_hash,
)
from tests.contract import messages

SERVER_PICKUP_KEY = b"\x42" * 32
CABINET_KEY = cabinet_pickup_key(SERVER_PICKUP_KEY, 7)  # what provisioning gives the agent
NOW = messages.T0


def entry(
    parcel_id: int, door: int, *, code: str | None = None, qr: str | None = None, days: int = 3
) -> AllowListEntry:
    """An entry as the server builds it: hashes under this cabinet's key."""
    return AllowListEntry(
        parcel_id=parcel_id,
        door=door,
        code_hash=None if code is None else credential_hash(CABINET_KEY, "code", code),
        qr_hash=None if qr is None else credential_hash(CABINET_KEY, "qr", qr),
        expires_at=NOW + timedelta(days=days),
    )


def sync(
    version: int,
    entries: Iterable[AllowListEntry] = (),
    *,
    full: bool = True,
    removed: Iterable[int] = (),
) -> AllowListSync:
    return messages.allow_list_sync(
        version=version, entries=list(entries), full=full, removed=list(removed), sent_at=NOW
    ).body


@pytest.fixture
def store() -> MemoryAllowListStore:
    return MemoryAllowListStore()


@pytest.fixture
def allow(store: MemoryAllowListStore) -> AllowList:
    allow_list = AllowList(CABINET_KEY, store)
    allow_list.apply(
        sync(5, [entry(17, 2, code="12345678", qr="qr-token-17"), entry(18, 3, code="87654321")])
    )
    return allow_list


def test_a_recipient_with_the_right_code_gets_their_door_while_offline(allow: AllowList) -> None:
    assert allow.check(code="12345678", now=NOW) == Match((17,), 2, "code", 5)


def test_a_scanned_qr_token_opens_the_same_parcel(allow: AllowList) -> None:
    assert allow.check(qr="qr-token-17", now=NOW) == Match((17,), 2, "qr", 5)


def test_the_same_code_cannot_open_twice_offline(allow: AllowList) -> None:
    assert isinstance(allow.check(code="12345678", now=NOW), Match)
    assert allow.check(code="12345678", now=NOW) == NoMatch("no_match")
    assert allow.check(qr="qr-token-17", now=NOW) == NoMatch("no_match")


def test_a_wrong_code_does_not_match(allow: AllowList) -> None:
    assert allow.check(code="00000000", now=NOW) == NoMatch("no_match")


def test_a_code_typed_at_another_doors_keypad_does_not_open_it(allow: AllowList) -> None:
    assert allow.check(code="12345678", door=3, now=NOW) == NoMatch("no_match")
    assert allow.check(code="12345678", door=2, now=NOW) == Match((17,), 2, "code", 5)


def test_a_code_issued_for_another_cabinet_does_not_match_here(store: MemoryAllowListStore) -> None:
    other_key = cabinet_pickup_key(SERVER_PICKUP_KEY, 8)
    foreign = AllowListEntry(
        parcel_id=30,
        door=1,
        code_hash=credential_hash(other_key, "code", "11112222"),
        qr_hash=None,
        expires_at=NOW + timedelta(days=1),
    )
    allow = AllowList(CABINET_KEY, store)
    allow.apply(sync(1, [foreign]))
    assert allow.check(code="11112222", now=NOW) == NoMatch("no_match")


def test_an_expired_credential_is_refused_as_expired(store: MemoryAllowListStore) -> None:
    allow = AllowList(CABINET_KEY, store)
    allow.apply(sync(1, [entry(17, 2, code="12345678", days=1)]))
    assert allow.check(code="12345678", now=NOW + timedelta(days=1, seconds=1)) == NoMatch(
        "expired"
    )


def test_parcels_sharing_a_code_in_one_door_are_handed_over_together(
    store: MemoryAllowListStore,
) -> None:
    allow = AllowList(CABINET_KEY, store)
    allow.apply(sync(1, [entry(40, 4, code="55556666"), entry(41, 4, code="55556666")]))
    assert allow.check(code="55556666", now=NOW) == Match((40, 41), 4, "code", 1)


def test_nothing_matches_before_the_first_list(store: MemoryAllowListStore) -> None:
    assert AllowList(CABINET_KEY, store).check(code="12345678", now=NOW) == NoMatch("no_list")


@pytest.mark.parametrize("credentials", [{}, {"code": "1", "qr": "2"}])
def test_exactly_one_credential_must_be_presented(
    allow: AllowList, credentials: dict[str, Any]
) -> None:
    assert allow.check(now=NOW, **credentials) == NoMatch("no_credential")


# --- versions, full lists and deltas ---------------------------------------------------------


@pytest.mark.parametrize("version", [4, 5])
def test_an_older_or_repeated_version_is_ignored(allow: AllowList, version: int) -> None:
    assert not allow.apply(sync(version, [entry(99, 1, code="99999999")]))
    assert allow.version == 5
    assert allow.check(code="99999999", now=NOW) == NoMatch("no_match")
    assert isinstance(allow.check(code="12345678", now=NOW), Match)


def test_a_full_list_replaces_everything(allow: AllowList) -> None:
    assert allow.apply(sync(6, [entry(50, 1, code="50505050")]))
    assert allow.check(code="87654321", now=NOW) == NoMatch("no_match")
    assert allow.check(code="50505050", now=NOW) == Match((50,), 1, "code", 6)


def test_a_delta_adds_replaces_and_removes_entries(allow: AllowList) -> None:
    reissued = entry(18, 3, code="11223344")  # parcel 18's code re-issued during the outage
    assert allow.apply(sync(6, [reissued, entry(60, 1, code="60606060")], full=False, removed=[17]))
    assert allow.check(code="12345678", now=NOW) == NoMatch("no_match")  # cancelled
    assert allow.check(code="87654321", now=NOW) == NoMatch("no_match")  # old code dead
    assert allow.check(code="11223344", now=NOW) == Match((18,), 3, "code", 6)
    assert allow.check(code="60606060", now=NOW) == Match((60,), 1, "code", 6)


def test_a_delta_without_a_full_list_first_is_ignored(store: MemoryAllowListStore) -> None:
    allow = AllowList(CABINET_KEY, store)
    assert not allow.apply(sync(3, [entry(17, 2, code="12345678")], full=False))
    assert allow.check(code="12345678", now=NOW) == NoMatch("no_list")


def test_a_full_list_sent_before_the_server_saw_our_pickup_cannot_revive_it(
    allow: AllowList,
) -> None:
    assert isinstance(allow.check(code="12345678", now=NOW), Match)
    still_listed = [entry(17, 2, code="12345678"), entry(18, 3, code="87654321")]
    assert allow.apply(sync(6, still_listed))
    assert allow.check(code="12345678", now=NOW) == NoMatch("no_match")
    assert allow.apply(sync(7, still_listed, full=False))
    assert allow.check(code="12345678", now=NOW) == NoMatch("no_match")


def test_a_consumed_parcel_is_forgotten_once_the_server_stops_listing_it(
    allow: AllowList, store: MemoryAllowListStore
) -> None:
    allow.check(code="12345678", now=NOW)
    assert store.consumed() == {17}
    allow.apply(sync(6, [entry(18, 3, code="87654321")]))
    assert store.consumed() == frozenset()


def test_entries_given_back_match_again_unless_the_server_withdrew_them_meanwhile(
    store: MemoryAllowListStore,
) -> None:
    allow = AllowList(CABINET_KEY, store)
    allow.apply(sync(5, [entry(40, 4, code="55556666"), entry(41, 4, code="55556666")]))
    match = allow.check(code="55556666", now=NOW)
    assert isinstance(match, Match)
    assert [e.parcel_id for e in match.entries] == [40, 41]
    allow.apply(sync(6, [entry(40, 4, code="55556666")]))  # 41 cancelled on the server

    allow.restore(match.entries)

    assert store.consumed() == frozenset()
    assert allow.check(code="55556666", now=NOW) == Match((40,), 4, "code", 6)


# --- lockout and constant-time comparison ---------------------------------------------------


def _fail(allow: AllowList, times: int, *, door: int | None, minute: int = 0) -> None:
    for attempt in range(times):
        at = NOW + timedelta(minutes=minute, seconds=attempt)
        assert allow.check(code=f"0000{attempt:04d}", door=door, now=at) == NoMatch("no_match")


def test_five_wrong_codes_at_a_door_lock_it_even_for_the_right_code(allow: AllowList) -> None:
    _fail(allow, 5, door=2)
    later = NOW + timedelta(minutes=1)
    assert allow.check(code="12345678", door=2, now=later) == NoMatch("locked_out")


def test_the_lockout_lifts_after_fifteen_minutes(allow: AllowList) -> None:
    _fail(allow, 5, door=2)
    after = NOW + timedelta(minutes=15, seconds=5)
    assert allow.check(code="12345678", door=2, now=after) == Match((17,), 2, "code", 5)


def test_failures_spread_over_doors_lock_the_whole_cabinet(store: MemoryAllowListStore) -> None:
    allow = AllowList(CABINET_KEY, store, LockoutPolicy(door_threshold=3, cabinet_threshold=5))
    allow.apply(sync(1, [entry(17, 2, code="12345678")]))
    _fail(allow, 2, door=1)
    _fail(allow, 2, door=3, minute=1)
    assert allow.check(code="12345678", door=2, now=NOW + timedelta(minutes=2)) == Match(
        (17,), 2, "code", 1
    )
    allow.apply(sync(2, [entry(18, 2, code="87654321")]))
    _fail(allow, 1, door=4, minute=3)
    assert allow.check(code="87654321", door=2, now=NOW + timedelta(minutes=4)) == NoMatch(
        "locked_out"
    )


def test_a_door_locks_at_its_own_threshold_before_the_cabinet(store: MemoryAllowListStore) -> None:
    allow = AllowList(CABINET_KEY, store, LockoutPolicy(door_threshold=3, cabinet_threshold=10))
    allow.apply(sync(1, [entry(17, 2, code="12345678"), entry(18, 3, code="87654321")]))
    _fail(allow, 3, door=2)
    assert allow.check(code="12345678", door=2, now=NOW + timedelta(minutes=1)) == NoMatch(
        "locked_out"
    )
    assert isinstance(allow.check(code="87654321", door=3, now=NOW + timedelta(minutes=1)), Match)


def test_every_entry_is_compared_even_after_a_match(
    allow: AllowList, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[str] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        compared.append(a)
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)
    allow.apply(sync(6, [entry(n, 1, code=f"{n:08d}") for n in range(1, 51)]))
    assert allow.check(code="00000001", now=NOW) == Match((1,), 1, "code", 6)
    assert len(compared) == 50


def test_a_credential_for_several_doors_is_claimed_door_by_door(
    store: MemoryAllowListStore,
) -> None:
    allow = AllowList(CABINET_KEY, store)
    parcels = [entry(60, 4, code="24682468"), entry(61, 2, code="24682468")]
    allow.apply(sync(1, [*parcels, entry(62, 7, code="24682468")]))

    first = allow.check(code="24682468", now=NOW)

    assert first == Match((60,), 4, "code", 1, more_doors=(2, 7))
    assert allow.check(code="24682468", door=2, now=NOW) == Match((61,), 2, "code", 1)
    assert allow.check(code="24682468", door=7, now=NOW) == Match((62,), 7, "code", 1)
    assert allow.check(code="24682468", door=4, now=NOW) == NoMatch("no_match")  # used up


def test_lockout_status_counts_down_attempts_and_says_how_long_a_lockout_lasts(
    allow: AllowList,
) -> None:
    policy = LockoutPolicy()
    assert allow.lockout(now=NOW) == LockoutStatus(policy.cabinet_threshold, timedelta(0))
    for minute in range(policy.cabinet_threshold - 1):
        allow.check(code="00000000", now=NOW + timedelta(minutes=minute))
    later = NOW + timedelta(minutes=policy.cabinet_threshold - 1)
    assert allow.lockout(now=later) == LockoutStatus(1, timedelta(0))

    allow.check(code="00000000", now=later)

    # locked until the first failure leaves the 15-minute window
    assert allow.lockout(now=later) == LockoutStatus(0, policy.window - (later - NOW))
    assert allow.check(code="12345678", now=later) == NoMatch("locked_out")
