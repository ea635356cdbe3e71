"""Fixtures for the domain services: real audit log and notifier, a controllable clock, and a
small world (one site, one cabinet with doors of several sizes, recipients, a carrier).

Every test runs on SQLite and on PostgreSQL (the ``engine`` fixture is parametrised).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from locker_server.audit import Actor, AuditLog
from locker_server.audit.models import AuditEntry
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import (
    CabinetCreate,
    CarrierCreate,
    Door,
    DoorCreate,
    Parcel,
    RecipientCreate,
    SiteCreate,
)
from locker_server.notifications import Notifier
from locker_server.services import Caller, DomainDeps, directory
from locker_server.services import layout as config_service
from locker_server.services.parcels import Announcement, announce, record_deposit, reserve

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit_log(server_keys: ServerKeys, clock: FakeClock) -> AuditLog:
    return AuditLog(signing_key=server_keys.audit_signing_key, clock=clock)


COURIER = Caller(actor=Actor(type="courier", id="1"), channel="api", source="192.0.2.10")
OPERATOR = Caller(actor=Actor(type="user", id="7"), channel="api", source="192.0.2.20")
KIOSK = Caller(actor=Actor(type="cabinet", id="CAB-1"), channel="kiosk", source="CAB-1")


@dataclass
class World:
    """Ids of what the tests deliver to. Doors by number: 1-2 S, 3-4 M, 5 L, 6 M accessible."""

    site_id: int
    cabinet_id: int
    carrier_id: int
    alice: int  # consents
    bob: int  # consents
    wheelchair: int  # consents, needs an accessible-height door
    no_consent: int
    door_ids: dict[int, int] = field(default_factory=dict)


DOOR_PLAN = (
    (1, "S", False),
    (2, "S", False),
    (3, "M", False),
    (4, "M", False),
    (5, "L", False),
    (6, "M", True),
)


def _recipient(session: Session, deps: DomainDeps, name: str, **extra: object) -> int:
    body = RecipientCreate.model_validate(
        {"name": name, "email": f"{name.lower()}@example.org", "consent_locker_delivery": True}
        | extra
    )
    recipient = directory.create_recipient(session, deps, body, caller=OPERATOR)
    assert recipient.id is not None
    return recipient.id


def new_recipient(engine: Engine, deps: DomainDeps, name: str, **extra: object) -> int:
    """A consenting recipient without special needs, unless ``extra`` says otherwise."""
    with session_scope(engine) as session:
        return _recipient(session, deps, name, **extra)


def build_world(engine: Engine, deps: DomainDeps) -> World:
    with session_scope(engine) as session:
        site = config_service.create_site(session, deps, SiteCreate(name="HQ"), caller=OPERATOR)
        assert site.id is not None
        cabinet = config_service.create_cabinet(
            session,
            deps,
            CabinetCreate(site_id=site.id, code="CAB-1", name="Lobby"),
            caller=OPERATOR,
        )
        assert cabinet.id is not None
        bodies = [
            DoorCreate(number=n, size=s, board=1, lock=n, accessible_height=a)
            for n, s, a in DOOR_PLAN
        ]
        doors = config_service.add_doors(session, deps, cabinet.id, bodies, caller=OPERATOR)
        carrier = directory.create_carrier(
            session,
            deps,
            CarrierCreate(name="SwiftPost", webhook_url="https://carrier.example/hook"),
            caller=OPERATOR,
        )
        assert carrier.id is not None
        return World(
            site_id=site.id,
            cabinet_id=cabinet.id,
            carrier_id=carrier.id,
            alice=_recipient(session, deps, "Alice"),
            bob=_recipient(session, deps, "Bob", language="zh-CN"),
            wheelchair=_recipient(session, deps, "Wen", accessibility_need=True),
            no_consent=_recipient(session, deps, "Nora", consent_locker_delivery=False),
            door_ids={door.number: door.id for door in doors if door.id is not None},
        )


@pytest.fixture
def world(engine: Engine, deps: DomainDeps) -> World:
    return build_world(engine, deps)


Announce = Callable[..., int]


@pytest.fixture
def announce_parcel(engine: Engine, deps: DomainDeps, world: World) -> Announce:
    counter = iter(range(1, 10_000))

    def _announce(recipient_id: int | None = None, **extra: object) -> int:
        spec = Announcement(
            carrier_id=world.carrier_id,
            tracking_number=f"TRK{next(counter):05d}",
            recipient_id=recipient_id or world.alice,
            **extra,  # type: ignore[arg-type]
        )
        with session_scope(engine) as session:
            parcel = announce(session, deps, spec, caller=COURIER)
            assert parcel.id is not None
            return parcel.id

    return _announce


@dataclass
class Delivered:
    parcel_id: int
    door_number: int
    code: str
    qr_token: str


class CapturingNotifier:
    """The real notifier (outbox rows are still written) that also keeps what it was
    handed, so a test can act as the recipient who received the message."""

    def __init__(self, inner: Notifier) -> None:
        self._inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def pickup_ready(self, session: Session, **kwargs: Any) -> Any:
        self.calls.append(("pickup_ready", kwargs))
        return self._inner.pickup_ready(session, **kwargs)

    def reminder(self, session: Session, **kwargs: Any) -> Any:
        self.calls.append(("reminder", kwargs))
        return self._inner.reminder(session, **kwargs)

    def expired(self, session: Session, **kwargs: Any) -> Any:
        self.calls.append(("expired", kwargs))
        return self._inner.expired(session, **kwargs)

    def cancel_pending(self, session: Session, **kwargs: Any) -> int:
        self.calls.append(("cancel_pending", kwargs))
        return self._inner.cancel_pending(session, **kwargs)

    def carrier_event(self, session: Session, **kwargs: Any) -> Any:
        self.calls.append(("carrier_event", kwargs))
        return self._inner.carrier_event(session, **kwargs)

    def alarm_raised(self, session: Session, **kwargs: Any) -> Any:
        self.calls.append(("alarm_raised", kwargs))
        return self._inner.alarm_raised(session, **kwargs)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]

    def last_credentials(self, parcel_id: int) -> tuple[str, str]:
        sent = [k for k in self.of("pickup_ready") if k["parcel_id"] == parcel_id][-1]
        return sent["code"], sent["qr_token"]


@pytest.fixture
def notifier(settings: Settings, server_keys: ServerKeys, clock: FakeClock) -> CapturingNotifier:
    return CapturingNotifier(Notifier(settings=settings, keys=server_keys, clock=clock))


@pytest.fixture
def deps(
    settings: Settings,
    server_keys: ServerKeys,
    audit_log: AuditLog,
    clock: FakeClock,
    notifier: CapturingNotifier,
) -> DomainDeps:
    return DomainDeps(
        settings=settings, keys=server_keys, audit=audit_log, notifier=notifier, clock=clock
    )


Deliver = Callable[..., Delivered]


@pytest.fixture
def deliver(
    engine: Engine,
    deps: DomainDeps,
    world: World,
    announce_parcel: Announce,
    notifier: CapturingNotifier,
) -> Deliver:
    """Announce, reserve and deposit a parcel; answer what the recipient was sent."""

    def _deliver(recipient_id: int | None = None, **extra: object) -> Delivered:
        parcel_id = announce_parcel(recipient_id, **extra)
        with session_scope(engine) as session:
            parcel = reserve(
                session, deps, parcel_id=parcel_id, cabinet_id=world.cabinet_id, caller=COURIER
            )
            door_number = door_number_of(session, parcel)
        with session_scope(engine) as session:
            record_deposit(
                session,
                deps,
                cabinet_id=world.cabinet_id,
                door_number=door_number,
                parcel_id=parcel_id,
                caller=COURIER,
            )
        code, qr_token = notifier.last_credentials(parcel_id)
        return Delivered(parcel_id, door_number, code, qr_token)

    return _deliver


def door_number_of(session: Session, parcel: Parcel) -> int:
    door = session.get(Door, parcel.door_id)
    assert door is not None
    return door.number


def load_parcel(engine: Engine, parcel_id: int) -> Parcel:
    with Session(engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        return parcel


def audit_actions(engine: Engine, **where: object) -> list[str]:
    """Actions of the audit entries, oldest first, optionally filtered by column values."""
    with Session(engine) as session:
        query = select(AuditEntry).order_by(AuditEntry.seq)  # type: ignore[arg-type]
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return [entry.action for entry in session.exec(query).all()]


def audit_rows(engine: Engine, action: str) -> list[AuditEntry]:
    with Session(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(AuditEntry.seq)).all())  # type: ignore[arg-type]


def count_rows(engine: Engine, model: type[Any]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())
