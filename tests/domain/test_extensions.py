"""Reminders before expiry, the recipient's own extension, and the operator's site-wide one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from locker_server.db import session_scope
from locker_server.errors import Conflict, ValidationFailed
from locker_server.services import DomainDeps
from locker_server.services.parcels import (
    expire_overdue,
    extend_for_recipient,
    extend_site,
    send_due_reminders,
)
from locker_server.services.pickup import attempt_pickup
from tests.domain.conftest import (
    KIOSK,
    OPERATOR,
    CapturingNotifier,
    Deliver,
    FakeClock,
    World,
    audit_actions,
    audit_rows,
    load_parcel,
)


def test_one_reminder_is_sent_shortly_before_expiry_and_never_repeats_the_code(
    engine: Engine,
    deps: DomainDeps,
    deliver: Deliver,
    clock: FakeClock,
    notifier: CapturingNotifier,
) -> None:
    delivered = deliver()
    lead = deps.settings.pickup_hours - deps.settings.reminder_hours_before_expiry
    clock.advance(hours=lead - 1)
    with session_scope(engine) as session:
        assert send_due_reminders(session, deps, now=clock.now) == 0
    clock.advance(hours=1, seconds=1)
    for expected in (1, 0):
        with session_scope(engine) as session:
            assert send_due_reminders(session, deps, now=clock.now) == expected
    reminders = notifier.of("reminder")
    assert [r["parcel_id"] for r in reminders] == [delivered.parcel_id]
    assert "code" not in reminders[0]
    assert load_parcel(engine, delivered.parcel_id).reminder_sent_at == clock.now
    assert "parcel.reminder_sent" in audit_actions(engine, parcel_id=delivered.parcel_id)


def test_recipient_extends_only_in_the_last_hours_and_only_as_often_as_allowed(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock
) -> None:
    rules = deps.settings
    delivered = deliver()
    deadline = load_parcel(engine, delivered.parcel_id).pickup_deadline
    assert deadline is not None
    with pytest.raises(ValidationFailed, match="last"), session_scope(engine) as session:
        extend_for_recipient(
            session, deps, parcel_id=delivered.parcel_id, hours=12, caller=OPERATOR
        )
    clock.now = deadline - timedelta(hours=rules.extension_window_hours - 1)
    with pytest.raises(ValidationFailed, match="hours: at most"), session_scope(engine) as session:
        extend_for_recipient(
            session,
            deps,
            parcel_id=delivered.parcel_id,
            hours=rules.max_extension_hours + 1,
            caller=OPERATOR,
        )
    with session_scope(engine) as session:
        extend_for_recipient(
            session, deps, parcel_id=delivered.parcel_id, hours=24, caller=OPERATOR
        )
    parcel = load_parcel(engine, delivered.parcel_id)
    assert parcel.pickup_deadline == deadline + timedelta(hours=24)
    assert parcel.extensions_used == 1
    clock.now = deadline + timedelta(hours=24 - 1)
    with pytest.raises(Conflict, match="already extended"), session_scope(engine) as session:
        extend_for_recipient(session, deps, parcel_id=delivered.parcel_id, hours=1, caller=OPERATOR)
    with session_scope(engine) as session:  # the old deadline has passed: code still works
        decision = attempt_pickup(
            session, deps, cabinet_id=world.cabinet_id, code=delivered.code, caller=KIOSK
        )
    assert decision.granted


def test_site_wide_extension_moves_every_waiting_parcel_and_is_audited_once_and_per_parcel(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock
) -> None:
    parcels = [deliver(world.alice), deliver(world.bob)]
    before = {p.parcel_id: load_parcel(engine, p.parcel_id).pickup_deadline for p in parcels}
    with session_scope(engine) as session:
        extended = extend_site(
            session,
            deps,
            site_id=world.site_id,
            hours=48,
            reason="storm: building closed",
            caller=OPERATOR,
        )
    assert sorted(extended) == sorted(before)
    for parcel_id, old in before.items():
        assert old is not None
        parcel = load_parcel(engine, parcel_id)
        assert parcel.pickup_deadline == old + timedelta(hours=48)
        assert parcel.extensions_used == 0  # the recipient keeps their own extension
        assert audit_actions(engine, parcel_id=parcel_id).count("parcel.extended") == 1
    site_rows = audit_rows(engine, "site.parcels_extended")
    assert len(site_rows) == 1
    assert site_rows[0].site_id == world.site_id
    clock.advance(hours=deps.settings.pickup_hours + 1)
    with session_scope(engine) as session:
        assert expire_overdue(session, deps, now=clock.now) == 0
