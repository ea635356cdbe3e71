"""A new alarm reaches the site's operators by e-mail through the outbox and the real SMTP
server; the message names the kind, site, cabinet, door and time (in the site's zone)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from locker_server.audit import Actor, AuditLog
from locker_server.auth.origin import Origin
from locker_server.auth.roles import Role
from locker_server.auth.users import NewUser, alarm_contacts, create_user
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import CabinetCreate, DoorCreate, DoorEvent, SiteCreate
from locker_server.notifications import NotificationWorker, Notifier
from locker_server.services import Caller, DomainDeps
from locker_server.services import layout as config_service
from locker_server.services.cabinets import cabinet_caller
from locker_server.services.doors import record_door_event
from tests.notifications.notification_support import FakeClock, MailSink

OPERATOR = Caller(actor=Actor(type="user", id="1"), channel="api")
ADMIN = Origin(Actor(type="system"), channel="cli")


def _deps(settings: Settings, keys: ServerKeys, clock: FakeClock) -> DomainDeps:
    return DomainDeps(
        settings=settings,
        keys=keys,
        audit=AuditLog(signing_key=keys.audit_signing_key, clock=clock),
        notifier=Notifier(settings=settings, keys=keys, clock=clock),
        clock=clock,
        staff=alarm_contacts,
    )


def _cabinet_with_an_operator(engine: Engine, deps: DomainDeps) -> int:
    with session_scope(engine) as session:
        body = SiteCreate(name="North campus", timezone="Asia/Shanghai")
        site = config_service.create_site(session, deps, body, caller=OPERATOR)
        assert site.id is not None
        cabinet_body = CabinetCreate(site_id=site.id, code="CAB-7", name="Library")
        cabinet = config_service.create_cabinet(session, deps, cabinet_body, caller=OPERATOR)
        assert cabinet.id is not None
        door = DoorCreate(number=4, size="M", board=1, lock=4)
        config_service.add_doors(session, deps, cabinet.id, [door], caller=OPERATOR)
        assert isinstance(deps.audit, AuditLog)
        operator = NewUser(
            username="night-operator", password="correct horse battery staple",
            role=Role.operator, site_ids=(site.id,), email="night.operator@campus.example",
        )  # fmt: skip
        create_user(session, deps.audit, ADMIN, operator)
        return cabinet.id


def test_the_sites_operator_gets_an_email_naming_the_forced_open_door_and_when(
    engine: Engine,
    live_settings: Settings,
    server_keys: ServerKeys,
    clock: FakeClock,
    make_worker: Callable[..., NotificationWorker],
    mail_sink: MailSink,
) -> None:
    deps = _deps(live_settings, server_keys, clock)
    cabinet_id = _cabinet_with_an_operator(engine, deps)
    with session_scope(engine) as session:
        record_door_event(
            session, deps, cabinet_id=cabinet_id, door_number=4, event=DoorEvent.forced_open,
            caller=cabinet_caller("CAB-7"),
        )  # fmt: skip

    make_worker().run_once()

    (email,) = mail_sink.messages
    assert email["To"] == "night.operator@campus.example"
    assert email["Subject"] == "Alarm: door forced open at Library, door 4"
    body = email.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    for expected in (
        "door forced open",
        "North campus",
        "Library (CAB-7)",
        "Door:    4",
        "Thursday 26 November 2026, 17:00 (Asia/Shanghai)",  # 09:00 UTC in the site's zone
        "door opened without a command",
    ):
        assert expected in text, expected
