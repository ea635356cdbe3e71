"""Tables of the cabinet link: ingested event ids, cabinet presence, MQTT credentials.

``link_events`` makes ingestion idempotent: an event id is inserted *before* the event
is applied, in the same transaction, and a unique index turns a duplicate (a re-publish,
a redelivery, a second bridge racing us) into "already applied". ``cabinet_links`` holds
what presence and state messages told us about each cabinet's connection.
``cabinet_credentials`` holds the hash of each cabinet's broker password (written by
provisioning, read when the broker's ``passwd`` is generated).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from locker_server.models.types import UTCDateTime, utcnow

#: Event ids are uuid4 hex (32 characters); the column leaves room for a dashed spelling.
EVENT_ID_LENGTH = 36


class LinkEvent(SQLModel, table=True):
    """One cabinet event the server has stored (applied, or refused by the domain)."""

    __tablename__ = "link_events"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(sa_type=String(EVENT_ID_LENGTH), unique=True, index=True)
    cabinet_id: int = Field(foreign_key="cabinets.id", index=True)
    seq: int
    type: str = Field(sa_type=String(64))
    outcome: str = Field(default="applied", sa_type=String(32))
    device_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CabinetLink(SQLModel, table=True):
    """A cabinet's link: online or not, under which connection number, seen when."""

    __tablename__ = "cabinet_links"

    cabinet_id: int = Field(foreign_key="cabinets.id", primary_key=True)
    online: bool = False
    connection: int = 0
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agent_version: str | None = Field(default=None, sa_type=String(64))
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    state_version: int = -1


class CabinetLinkPublic(SQLModel):
    """The link fields the API adds to a cabinet (offline and never seen until it connects)."""

    online: bool = False
    last_seen: datetime | None = None
    connection: int | None = Field(default=None, description="the agent's connection counter")
    agent_version: str | None = None


class CabinetCredential(SQLModel, table=True):
    """One MQTT password of a cabinet; at most one per cabinet has ``revoked_at`` unset."""

    __tablename__ = "cabinet_credentials"

    id: int | None = Field(default=None, primary_key=True)
    cabinet_id: int = Field(foreign_key="cabinets.id", index=True)
    #: Mosquitto ``$7$`` (PBKDF2-SHA512) hash; the password itself is never stored
    password_hash: str = Field(sa_type=String(255))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
