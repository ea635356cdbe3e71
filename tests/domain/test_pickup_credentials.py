"""Pickup credentials: how they are made and stored, how they are checked, and the lockout."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, MetaData, select
from sqlmodel import Session

from locker_contract.lockout import LockoutPolicy
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.errors import LockedOut, PickupRefused
from locker_server.models import ParcelState, PickupCredential
from locker_server.services import DomainDeps, credentials
from locker_server.services.credentials import lockout_policy
from locker_server.services.parcels import reissue_credentials
from locker_server.services.pickup import PickupDecision, attempt_pickup
from tests.domain.conftest import (
    KIOSK,
    OPERATOR,
    CapturingNotifier,
    Deliver,
    FakeClock,
    World,
    audit_rows,
    load_parcel,
)

Attempt = Callable[..., PickupDecision]


@pytest.fixture
def attempt(engine: Engine, deps: DomainDeps, world: World) -> Attempt:
    """One pickup attempt at the test cabinet, in its own committed transaction."""

    def _attempt(deps_: DomainDeps | None = None, **presented: object) -> PickupDecision:
        with session_scope(engine) as session:
            return attempt_pickup(
                session, deps_ or deps, cabinet_id=world.cabinet_id, caller=KIOSK, **presented
            )  # type: ignore[arg-type]

    return _attempt


def _refusal(decision: PickupDecision) -> tuple[type[Exception], str, str]:
    with pytest.raises(PickupRefused) as caught:
        decision.raise_if_refused()
    return type(caught.value), caught.value.code, caught.value.message


def _every_stored_text(engine: Engine) -> str:
    """Every value of every row of every table, as one string."""
    metadata = MetaData()
    metadata.reflect(engine)
    parts: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
    return "\n".join(parts)


def test_code_has_eight_digits_and_qr_token_carries_at_least_128_random_bits(
    deliver: Deliver,
) -> None:
    delivered = deliver()
    assert len(delivered.code) == 8
    assert delivered.code.isdigit()
    raw = base64.urlsafe_b64decode(delivered.qr_token + "=" * (-len(delivered.qr_token) % 4))
    assert len(raw) * 8 >= 128
    assert delivered.qr_token != deliver().qr_token


def test_only_keyed_hashes_are_stored_the_plaintext_is_in_no_column_of_any_table(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver
) -> None:
    delivered = deliver()
    stored = _every_stored_text(engine)
    assert delivered.code not in stored
    assert delivered.qr_token not in stored
    expected = credentials.credential_hash(
        deps.pickup_hmac_key, credentials.CredentialKind.code, world.cabinet_id, delivered.code
    )
    with Session(engine) as session:
        hashes = {c.credential_hash for c in session.exec(select(PickupCredential)).scalars()}
    assert expected in hashes


def test_codes_are_compared_with_compare_digest_on_their_hmacs(
    monkeypatch: pytest.MonkeyPatch,
    deps: DomainDeps,
    world: World,
    deliver: Deliver,
    attempt: Attempt,
) -> None:
    delivered = deliver()
    compared: list[tuple[str, str]] = []
    real_compare = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    assert attempt(code=delivered.code).granted
    presented = credentials.credential_hash(
        deps.pickup_hmac_key, credentials.CredentialKind.code, world.cabinet_id, delivered.code
    )
    assert compared
    assert all(b == presented for _, b in compared)


def test_the_qr_token_opens_the_door_too(deliver: Deliver, attempt: Attempt) -> None:
    delivered = deliver()
    decision = attempt(qr_token=delivered.qr_token)
    assert decision.granted
    assert decision.door_numbers == (delivered.door_number,)


def test_a_code_works_once_only(engine: Engine, deliver: Deliver, attempt: Attempt) -> None:
    delivered = deliver()
    assert attempt(code=delivered.code).granted
    second = attempt(code=delivered.code)
    assert second.outcome == "wrong_code"
    assert second.door_numbers == ()
    assert attempt(qr_token=delivered.qr_token).outcome == "wrong_code"


def test_unknown_wrong_and_used_codes_get_the_same_refusal_but_distinct_audit_entries(
    engine: Engine, deliver: Deliver, attempt: Attempt
) -> None:
    first, second = deliver(), deliver()
    assert attempt(code=first.code).granted
    unknown = attempt(code="00000000" if first.code != "00000000" else "11111111")
    wrong_door = attempt(code=second.code, door_number=second.door_number + 1)
    used = attempt(code=first.code)
    assert _refusal(unknown) == _refusal(wrong_door) == _refusal(used)
    assert _refusal(unknown)[1] == "pickup_refused"
    outcomes = [row.outcome for row in audit_rows(engine, "pickup.attempt")]
    assert outcomes == ["granted", "wrong_code", "wrong_code", "wrong_code"]


def test_recipient_with_an_expired_code_gets_a_clear_refusal_audited_as_expired(
    engine: Engine, deps: DomainDeps, deliver: Deliver, attempt: Attempt, clock: FakeClock
) -> None:
    delivered = deliver()
    clock.advance(hours=deps.settings.pickup_hours)
    decision = attempt(code=delivered.code)
    assert decision.outcome == "expired"
    assert "over" in _refusal(decision)[2]
    assert load_parcel(engine, delivered.parcel_id).state == ParcelState.notified
    assert audit_rows(engine, "pickup.attempt")[-1].outcome == "expired"


def test_reissue_voids_the_earlier_code_and_the_new_one_works(
    engine: Engine,
    deps: DomainDeps,
    deliver: Deliver,
    attempt: Attempt,
    notifier: CapturingNotifier,
) -> None:
    delivered = deliver()
    with session_scope(engine) as session:
        reissue_credentials(session, deps, parcel_id=delivered.parcel_id, caller=OPERATOR)
    new_code, new_token = notifier.last_credentials(delivered.parcel_id)
    assert (new_code, new_token) != (delivered.code, delivered.qr_token)
    assert attempt(code=delivered.code).outcome == "wrong_code"
    assert attempt(qr_token=delivered.qr_token).outcome == "wrong_code"
    assert attempt(code=new_code).granted
    assert len(audit_rows(engine, "parcel.credentials_reissued")) == 1


def test_one_recipients_parcels_sharing_a_door_are_all_collected_with_one_code(
    engine: Engine, world: World, deliver: Deliver, attempt: Attempt
) -> None:
    first = deliver(world.alice, size="S")
    second = deliver(world.alice, size="S")
    assert first.door_number == second.door_number
    decision = attempt(code=second.code)
    assert decision.granted
    assert sorted(decision.parcel_ids) == sorted([first.parcel_id, second.parcel_id])
    assert load_parcel(engine, first.parcel_id).state == ParcelState.picked_up
    assert attempt(code=first.code).outcome == "wrong_code"  # already collected


def test_five_failures_lock_the_whole_cabinet_for_fifteen_minutes(
    engine: Engine, deps: DomainDeps, deliver: Deliver, attempt: Attempt, clock: FakeClock
) -> None:
    delivered = deliver()
    wrong = "99999999" if delivered.code != "99999999" else "88888888"
    for _ in range(deps.settings.lockout_cabinet_threshold):
        assert attempt(code=wrong).outcome == "wrong_code"
        clock.advance(seconds=10)
    locked = attempt(code=delivered.code)
    assert locked.outcome == "locked_out"
    with pytest.raises(LockedOut) as caught:
        locked.raise_if_refused()
    assert caught.value.http_status == 429
    clock.advance(minutes=deps.settings.lockout_minutes)
    assert attempt(code=delivered.code).granted
    outcomes = [row.outcome for row in audit_rows(engine, "pickup.attempt")]
    assert outcomes == ["wrong_code"] * 5 + ["locked_out", "granted"]


def test_failures_at_one_door_lock_that_door_before_the_cabinet(
    deps: DomainDeps, world: World, deliver: Deliver, attempt: Attempt, clock: FakeClock
) -> None:
    policy = LockoutPolicy(door_threshold=3, cabinet_threshold=10, window=timedelta(minutes=15))
    strict = DomainDeps(
        settings=deps.settings,
        keys=deps.keys,
        audit=deps.audit,
        notifier=deps.notifier,
        clock=deps.clock,
        lockout_policy=policy,
    )
    mine, other = deliver(world.alice, size="S"), deliver(world.bob, size="S")
    assert mine.door_number != other.door_number
    for _ in range(3):
        bad = attempt(strict, code=other.code, door_number=mine.door_number)
        assert bad.outcome == "wrong_code"
    assert attempt(strict, code=mine.code, door_number=mine.door_number).outcome == "locked_out"
    assert attempt(strict, code=other.code, door_number=other.door_number).granted
    clock.advance(minutes=15)
    assert attempt(strict, code=mine.code, door_number=mine.door_number).granted


def _outbox(engine: Engine, parcel_id: int) -> list[tuple[str, str, bool]]:
    from locker_server.notifications.models import NotificationMessage

    with Session(engine) as session:
        rows = session.exec(
            select(NotificationMessage)  # type: ignore[call-overload]
            .where(NotificationMessage.parcel_id == parcel_id)
            .order_by(NotificationMessage.id)
        ).all()
        return [(m.event, m.status, m.sealed_secret is not None) for (m,) in rows]


def test_reissue_cancels_unsent_messages_that_carry_the_voided_code(
    engine: Engine, deps: DomainDeps, deliver: Deliver
) -> None:
    delivered = deliver()
    before = _outbox(engine, delivered.parcel_id)
    assert ("pickup_ready", "pending", True) in before
    with session_scope(engine) as session:
        reissue_credentials(session, deps, parcel_id=delivered.parcel_id, caller=OPERATOR)
    after = _outbox(engine, delivered.parcel_id)
    old, new = after[: len(before)], after[len(before) :]
    assert {status for event, status, _ in old if event == "pickup_ready"} == {"cancelled"}
    assert not any(sealed for event, _, sealed in old if event == "pickup_ready")
    assert ("pickup_ready", "pending", True) in new


def test_a_picked_up_parcel_leaves_no_code_waiting_in_the_outbox(
    engine: Engine, deliver: Deliver, attempt: Attempt
) -> None:
    delivered = deliver()
    assert attempt(code=delivered.code).granted
    waiting = [row for row in _outbox(engine, delivered.parcel_id) if row[1] == "pending"]
    assert all(not sealed for _, _, sealed in waiting)
    assert not [row for row in waiting if row[0] == "pickup_ready"]


def test_door_and_cabinet_lockout_thresholds_are_configured_separately() -> None:
    settings = Settings(lockout_threshold=3, lockout_cabinet_threshold=12, lockout_minutes=20)
    policy = lockout_policy(settings)
    assert (policy.door_threshold, policy.cabinet_threshold) == (3, 12)
    assert policy.window == timedelta(minutes=20)
