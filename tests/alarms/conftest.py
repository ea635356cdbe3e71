"""Fixtures for the alarm service: the domain tests' world and real dependencies, with the
staff directory wired (so new alarms are mailed to operators), and staff accounts.

Every test runs on SQLite and on PostgreSQL (the ``engine`` fixture is parametrised).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_server.audit import AuditLog
from locker_server.auth.roles import Role
from locker_server.auth.users import NewUser, alarm_contacts, create_user
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import Alarm
from locker_server.notifications import NotificationMessage
from locker_server.services import DomainDeps
from tests.api.conftest import TEST_ORIGIN, TEST_PASSWORD
from tests.domain import conftest as domain
from tests.domain.conftest import CapturingNotifier, FakeClock

# The domain tests' fixtures: clock, audit log, capturing notifier, world.
clock = domain.clock
audit_log = domain.audit_log
notifier = domain.notifier
world = domain.world


@pytest.fixture
def deps(
    settings: Settings,
    server_keys: ServerKeys,
    audit_log: AuditLog,
    clock: FakeClock,
    notifier: CapturingNotifier,
) -> DomainDeps:
    return DomainDeps(
        settings=settings, keys=server_keys, audit=audit_log, notifier=notifier, clock=clock,
        staff=alarm_contacts,
    )  # fmt: skip


MakeStaff = Callable[..., int]


@pytest.fixture
def make_staff(engine: Engine, audit_log: AuditLog) -> MakeStaff:
    """A staff account; answers its user id."""
    counter = iter(range(1, 1000))

    def _make(
        role: Role, *, email: str | None = None, sites: tuple[int, ...] = (), active: bool = True
    ) -> int:
        new = NewUser(
            username=f"{role.value}-{next(counter)}", password=TEST_PASSWORD, role=role,
            site_ids=sites, email=email,
        )  # fmt: skip
        with session_scope(engine) as session:
            user = create_user(session, audit_log, TEST_ORIGIN, new)
            user.active = active
            assert user.id is not None
            return user.id

    return _make


def alarms_of(engine: Engine, cabinet_id: int) -> list[Alarm]:
    with Session(engine) as session:
        query = select(Alarm).where(Alarm.cabinet_id == cabinet_id).order_by(col(Alarm.id))
        return list(session.exec(query).all())


def alarm_mail(engine: Engine) -> list[NotificationMessage]:
    with Session(engine) as session:
        query = select(NotificationMessage).where(NotificationMessage.event == "alarm_raised")
        return list(session.exec(query.order_by(col(NotificationMessage.id))).all())
