"""The production set-up of docs/audit.md: the app's role does not own the log.

Such a role can append, but cannot change rows, nor switch the guarding triggers off.
PostgreSQL only: roles and ownership do not exist in SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from locker_server.audit import AuditLog
from locker_server.db import make_engine, session_scope
from locker_server.keys import ServerKeys
from tests.audit.conftest import sample_event
from tests.conftest import _pg_admin, pg_url

pytestmark = pytest.mark.postgres

APP_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT ON audit_entries, audit_checkpoints TO {role}",
    "GRANT SELECT, UPDATE ON audit_head TO {role}",
)


@pytest.fixture
def app_role_engine(pg_template: str) -> Iterator[Engine]:
    """A fresh database owned by the superuser, and an engine logged in as a plain app role."""
    suffix = uuid.uuid4().hex[:12]
    database, role = f"locker_t_{suffix}", f"locker_app_{suffix}"
    _pg_admin(f'CREATE DATABASE "{database}" TEMPLATE "{pg_template}"')
    _pg_admin(f'CREATE ROLE "{role}" LOGIN')
    owner = make_engine(pg_url(database))
    with owner.begin() as conn:
        for grant in APP_GRANTS:
            conn.execute(text(grant.format(role=f'"{role}"')))
    owner.dispose()
    engine = make_engine(pg_url(database).replace("://postgres@", f"://{role}@"))
    try:
        yield engine
    finally:
        engine.dispose()
        _pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _pg_admin(f'DROP ROLE IF EXISTS "{role}"')


def test_app_role_that_does_not_own_the_log_can_append_and_nothing_else(
    app_role_engine: Engine, server_keys: ServerKeys
) -> None:
    audit = AuditLog(signing_key=server_keys.audit_signing_key)
    with session_scope(app_role_engine) as session:
        audit.record(session, sample_event(1))
        audit.record(session, sample_event(2))

    refused = (
        "UPDATE audit_entries SET outcome = 'granted'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_entries",
        "ALTER TABLE audit_entries DISABLE TRIGGER ALL",
        "SET session_replication_role = replica",
    )
    for statement in refused:
        with (
            pytest.raises(DBAPIError, match=r"permission denied|must be owner"),
            app_role_engine.begin() as conn,
        ):
            conn.execute(text(statement))

    with session_scope(app_role_engine) as session:
        assert audit.verify(session).ok
