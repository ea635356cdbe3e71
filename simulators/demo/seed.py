"""The demo's installation and people, created through the server's own services.

One site with two cabinets of 12 doors (S, M and L), staff accounts with known
passwords, a carrier with one courier (and the courier's login and courier code), and
three recipients at example.org who consented to locker delivery. Everything goes
through the same services as the API and the CLI, so every creation is in the audit log.
A ``--data-dir`` that was seeded before is found again, not seeded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.audit import Actor, AuditLog
from locker_server.auth.origin import Origin
from locker_server.auth.roles import Role
from locker_server.auth.users import NewUser, create_user
from locker_server.db import session_scope
from locker_server.models import (
    Cabinet,
    CabinetCreate,
    Carrier,
    CarrierCreate,
    Courier,
    CourierCreate,
    DoorCreate,
    Recipient,
    RecipientCreate,
    Site,
    SiteCreate,
)
from locker_server.services import Caller, DomainDeps, directory
from locker_server.services import layout as layout_service

SEEDER: Final = Actor(type="system", id="locker-demo")
CALLER: Final = Caller(actor=SEEDER, channel="cli")
ORIGIN: Final = Origin(SEEDER, channel="cli")

SITE_NAME: Final = "Demo Tower"
CABINET_CODES: Final = ("LOBBY-A", "LOBBY-B")
DOORS_PER_CABINET: Final = 12
CARRIER_NAME: Final = "Demo Express"
COURIER_NAME: Final = "Wang Lei"
COURIER_CODE: Final = "DEMO2025"


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: Role


#: demo passwords, printed on start: this is a demo on 127.0.0.1, not an installation
ACCOUNTS: Final = (
    Account("admin", "demo-admin-password", Role.admin),
    Account("operator", "demo-operator-password", Role.operator),
    Account("security", "demo-security-password", Role.security),
    Account("courier", "demo-courier-password", Role.courier),
)
RECIPIENTS: Final = (
    ("Alice Chen", "alice@example.org"),
    ("Bob Li", "bob@example.org"),
    ("Carol Wu", "carol@example.org"),
)


def door_size(number: int) -> str:
    """Doors 1-4 small, 5-9 medium, 10-12 large."""
    return "S" if number <= 4 else "M" if number <= 9 else "L"


@dataclass(frozen=True)
class DemoData:
    site_id: int
    #: cabinet code → database id
    cabinets: dict[str, int]
    #: e-mail address → recipient id
    recipients: dict[str, int]
    carrier_id: int
    courier_id: int

    def account(self, role: Role) -> Account:
        return next(account for account in ACCOUNTS if account.role is role)


def seed(engine: Engine, deps: DomainDeps, audit: AuditLog) -> DemoData:
    """Create the demo data, or find it when this database has it already."""
    with session_scope(engine) as session:
        if session.exec(select(Site).where(Site.name == SITE_NAME)).first() is None:
            _create(session, deps, audit)
    with session_scope(engine) as session:
        return _load(session)


def _create(session: Session, deps: DomainDeps, audit: AuditLog) -> None:
    site = layout_service.create_site(session, deps, SiteCreate(name=SITE_NAME), caller=CALLER)
    for code in CABINET_CODES:
        spec = CabinetCreate(site_id=_id(site.id), code=code, name=f"Lobby cabinet {code[-1]}")
        cabinet = layout_service.create_cabinet(session, deps, spec, caller=CALLER)
        doors = [
            DoorCreate(number=n, size=door_size(n), board=1, lock=n)
            for n in range(1, DOORS_PER_CABINET + 1)
        ]
        layout_service.add_doors(session, deps, _id(cabinet.id), doors, caller=CALLER)
    carrier = directory.create_carrier(
        session, deps, CarrierCreate(name=CARRIER_NAME), caller=CALLER
    )
    courier_body = CourierCreate(carrier_id=_id(carrier.id), name=COURIER_NAME, code=COURIER_CODE)
    courier = directory.create_courier(session, deps, courier_body, caller=CALLER)
    for name, email in RECIPIENTS:
        person = RecipientCreate(name=name, email=email, consent_locker_delivery=True)
        directory.create_recipient(session, deps, person, caller=CALLER)
    for account in ACCOUNTS:
        courier_id = courier.id if account.role is Role.courier else None
        new = NewUser(account.username, account.password, account.role, courier_id=courier_id)
        create_user(session, audit, ORIGIN, new)


def _load(session: Session) -> DemoData:
    site = session.exec(select(Site).where(Site.name == SITE_NAME)).one()
    cabinets = session.exec(select(Cabinet).where(Cabinet.site_id == site.id)).all()
    carrier = session.exec(select(Carrier).where(Carrier.name == CARRIER_NAME)).one()
    courier = session.exec(select(Courier).where(Courier.carrier_id == carrier.id)).first()
    recipients = session.exec(select(Recipient)).all()
    return DemoData(
        site_id=_id(site.id),
        cabinets={cabinet.code: _id(cabinet.id) for cabinet in cabinets},
        recipients={str(r.email): _id(r.id) for r in recipients if r.email is not None},
        carrier_id=_id(carrier.id),
        courier_id=_id(courier.id if courier is not None else None),
    )


def _id(value: int | None) -> int:
    assert value is not None  # flushed or loaded from the database
    return value
