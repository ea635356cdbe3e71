"""API fixtures for every part of the server.

* ``app``: ``create_app(settings)`` on the parametrised ``settings`` (SQLite and PostgreSQL).
* ``client``: a ``TestClient`` running the app's lifespan.
* ``make_user(role, sites=None, courier_id=None)``: creates an active user and answers
  its auth headers (an ``AuthHeaders`` dict with ``.user_id``). A courier without a
  ``courier_id`` gets a fresh carrier and courier; ``headers.carrier_id`` names them.
* ``admin_headers``: headers of a fresh admin.
* ``make_api_key(carrier_id=None)``: headers carrying a new carrier API key.
* ``make_site(name)``: a site id, for scoping tests.
* ``audit_entries(action=None)``: the audit entries recorded so far, oldest first.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from locker_server.api.app import create_app
from locker_server.audit import Actor, AuditLog
from locker_server.audit.models import AuditEntry
from locker_server.auth.api_key_admin import create_api_key
from locker_server.auth.origin import Origin
from locker_server.auth.roles import Role
from locker_server.auth.tokens import issue_access_token, password_stamp
from locker_server.auth.users import NewUser, create_user
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import Carrier, Courier, Site

TEST_PASSWORD = "correct horse battery staple"
TEST_ORIGIN = Origin(Actor(type="system"), channel="cli")


class AuthHeaders(dict[str, str]):
    """``{"Authorization": "Bearer ..."}`` plus who it is (``principal_id``: user or key id)."""

    def __init__(self, token: str, *, principal_id: int, carrier_id: int | None = None) -> None:
        super().__init__(Authorization=f"Bearer {token}")
        self.principal_id = principal_id
        self.user_id = principal_id
        self.carrier_id = carrier_id


MakeUser = Callable[..., AuthHeaders]


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def new_carrier_and_courier(session: Session) -> tuple[int, int]:
    carrier = Carrier(name=f"carrier-{secrets.token_hex(4)}")
    session.add(carrier)
    session.flush()
    assert carrier.id is not None
    courier = Courier(carrier_id=carrier.id, name="test courier", code_hash=secrets.token_hex(32))
    session.add(courier)
    session.flush()
    assert courier.id is not None
    return carrier.id, courier.id


@pytest.fixture
def make_user(app: FastAPI) -> MakeUser:
    audit: AuditLog = app.state.audit
    keys: ServerKeys = app.state.keys

    def _make(
        role: Role | str,
        sites: list[int] | None = None,
        courier_id: int | None = None,
        username: str | None = None,
    ) -> AuthHeaders:
        role = Role(role)
        with session_scope(app.state.engine) as session:
            carrier_id = None
            if role is Role.courier and courier_id is None:
                carrier_id, courier_id = new_carrier_and_courier(session)
            new = NewUser(
                username=username or f"{role.value}-{secrets.token_hex(4)}",
                password=TEST_PASSWORD,
                role=role,
                site_ids=tuple(sites or ()),
                courier_id=courier_id,
            )
            user = create_user(session, audit, TEST_ORIGIN, new)
            assert user.id is not None
            user_id = user.id
            stamp = password_stamp(keys.token_signing_key, user.password_hash)
        token = issue_access_token(
            keys.token_signing_key,
            user_id=user_id,
            role=role.value,
            stamp=stamp,
            lifetime=timedelta(hours=1),
        )
        return AuthHeaders(token.access_token, principal_id=user_id, carrier_id=carrier_id)

    return _make


@pytest.fixture
def admin_headers(make_user: MakeUser) -> AuthHeaders:
    return make_user(Role.admin)


@pytest.fixture
def make_site(app: FastAPI) -> Callable[[str], int]:
    def _make(name: str = "Site") -> int:
        with session_scope(app.state.engine) as session:
            site = Site(name=name)
            session.add(site)
            session.flush()
            assert site.id is not None
            return site.id

    return _make


@pytest.fixture
def make_api_key(app: FastAPI) -> Callable[..., AuthHeaders]:
    def _make(carrier_id: int | None = None) -> AuthHeaders:
        with session_scope(app.state.engine) as session:
            if carrier_id is None:
                carrier_id, _courier = new_carrier_and_courier(session)
            created = create_api_key(
                session,
                app.state.audit,
                app.state.keys,
                TEST_ORIGIN,
                carrier_id=carrier_id,
                name="test integration",
            )
            assert created.row.id is not None
            return AuthHeaders(created.key, principal_id=created.row.id, carrier_id=carrier_id)

    return _make


@pytest.fixture
def audit_entries(app: FastAPI) -> Callable[..., list[AuditEntry]]:
    def _read(action: str | None = None) -> list[AuditEntry]:
        with Session(app.state.engine) as session:
            query = select(AuditEntry).order_by(col(AuditEntry.seq))
            if action is not None:
                query = query.where(AuditEntry.action == action)
            return list(session.exec(query).all())

    return _read
