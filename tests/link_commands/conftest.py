"""Fixtures for signed commands, allow-list sync and offline reconciliation.

The domain fixtures (a world with one cabinet of six doors, a controllable clock, the real
audit log and notifier, ``deliver``) come from ``tests/domain/conftest.py``; every test
runs on SQLite and on PostgreSQL. ``RecordingPublisher`` stands in for the bridge where
the broker adds nothing; ``test_through_mosquitto.py`` publishes through the real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_contract import (
    AllowListSync,
    CommandMessage,
    SyncMessage,
    TimeSync,
    decode,
    trusted_keys,
)
from locker_contract.signing import encode_public_key
from locker_server.audit.models import AuditEntry
from locker_server.keys import ServerKeys
from locker_server.models.commands import LinkCommand
from tests.contract.schema_validation import assert_matches_schema
from tests.domain import conftest as domain

# The domain services' fixtures, shared with these tests.
clock = domain.clock
audit_log = domain.audit_log
world = domain.world
announce_parcel = domain.announce_parcel
notifier = domain.notifier
deps = domain.deps
deliver = domain.deliver


@dataclass(frozen=True)
class Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class RecordingPublisher:
    """A ``LinkPublisher`` that keeps what it was given; ``fail`` makes publishing raise.

    ``on_publish`` runs at publish time (e.g. to look at the database then).
    """

    fail: bool = False
    on_publish: Callable[[str, bytes], None] | None = None
    messages: list[Published] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        assert_matches_schema(payload)  # what the server sends fits docs/contract
        if self.on_publish is not None:
            self.on_publish(topic, payload)
        self.messages.append(Published(topic, payload, qos, retain))

    def on(self, suffix: str) -> list[Published]:
        return [m for m in self.messages if m.topic.endswith("/" + suffix)]

    def commands(self) -> list[Any]:
        return [decode(m.payload, CommandMessage) for m in self.on("cmd")]

    def syncs(self) -> list[Any]:
        return [decode(m.payload, SyncMessage) for m in self.on("sync")]

    def allow_lists(self) -> list[AllowListSync]:
        return [s.body for s in self.syncs() if isinstance(s.body, AllowListSync)]

    def times(self) -> list[TimeSync]:
        return [s.body for s in self.syncs() if isinstance(s.body, TimeSync)]


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def cabinet_trust(server_keys: ServerKeys) -> dict[str, Any]:
    """What a provisioned cabinet holds: the server's command public key, nothing secret."""
    public = encode_public_key(server_keys.command_signing_key.public_key())
    return trusted_keys([public])


def load_command(engine: Engine, command_id: str) -> LinkCommand:
    with Session(engine) as session:
        return session.exec(select(LinkCommand).where(LinkCommand.command_id == command_id)).one()


def details_of(row: AuditEntry) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(row.details)
    return found
