"""Tables of the server's half of signed commands, the offline allow-list and kill switches.

* ``link_commands``: one row per signed door command, with its lifecycle::

      created ──▶ sent ──▶ delivered ──▶ succeeded | failed | rejected | expired
         │          │          │
         │          └──────────┴──▶ outcome_unknown   (no final result within the timeout;
         ▼                                            never sent again)
       failed   (no link to publish on)

* ``link_cabinet_controls``: one row per cabinet: the last command counter handed out
  (allocated under this row's lock), the last sync version, and the per-cabinet remote-open
  kill switch.
* ``link_site_controls``: the per-site remote-open kill switch.
* ``link_allow_list_entries``: what the server last sent each cabinet for its offline
  allow-list; the next delta is the difference between this and the database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import StrictBool
from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from locker_server.models.types import UTCDateTime, forbid_extra, utcnow, visible


class CommandStatus(StrEnum):
    created = "created"
    sent = "sent"
    delivered = "delivered"
    succeeded = "succeeded"
    failed = "failed"
    rejected = "rejected"
    expired = "expired"
    outcome_unknown = "outcome_unknown"


#: A command in one of these states never changes again.
FINAL_STATUSES = frozenset(
    {
        CommandStatus.succeeded,
        CommandStatus.failed,
        CommandStatus.rejected,
        CommandStatus.expired,
        CommandStatus.outcome_unknown,
    }
)
#: Waiting for the cabinet: the timeout turns these into ``outcome_unknown``.
OPEN_STATUSES = frozenset({CommandStatus.created, CommandStatus.sent, CommandStatus.delivered})


class LinkCommand(SQLModel, table=True):
    __tablename__ = "link_commands"
    __table_args__ = (
        UniqueConstraint("cabinet_id", "counter", name="uq_link_commands_cabinet_counter"),
        Index("ix_link_commands_status_issued", "status", "issued_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    command_id: str = Field(sa_type=String(32), unique=True)
    cabinet_id: int = Field(foreign_key="cabinets.id", index=True)
    counter: int
    action: str = Field(sa_type=String(16))
    door: int | None = None
    door_id: int | None = Field(default=None, foreign_key="doors.id")
    reason: str | None = Field(default=None, sa_type=String(255))
    issued_by_type: str = Field(sa_type=String(16))
    issued_by_id: str = Field(sa_type=String(64))
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=CommandStatus.created, sa_type=String(16))
    result_reason: str | None = Field(default=None, sa_type=String(64))
    result_outcome: str | None = Field(default=None, sa_type=String(32))
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LinkCommandPublic(SQLModel):
    command_id: str
    cabinet_id: int
    counter: int
    action: str
    door: int | None
    door_id: int | None
    reason: str | None
    issued_by_type: str
    issued_by_id: str
    issued_at: datetime
    expires_at: datetime
    status: CommandStatus
    result_reason: str | None
    result_outcome: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    finished_at: datetime | None


class LinkCabinetControl(SQLModel, table=True):
    __tablename__ = "link_cabinet_controls"

    cabinet_id: int = Field(foreign_key="cabinets.id", primary_key=True)
    last_counter: int = 0
    sync_version: int = 0
    #: A sync publish failed: the next allow-list message must be a full one.
    allow_list_resync: bool = False
    remote_open_enabled: bool = True
    remote_open_reason: str | None = Field(default=None, sa_type=String(255))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LinkSiteControl(SQLModel, table=True):
    __tablename__ = "link_site_controls"

    site_id: int = Field(foreign_key="sites.id", primary_key=True)
    remote_open_enabled: bool = True
    remote_open_reason: str | None = Field(default=None, sa_type=String(255))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LinkAllowListEntry(SQLModel, table=True):
    """One parcel as the cabinet was last told about it (hashes only, never codes)."""

    __tablename__ = "link_allow_list_entries"

    cabinet_id: int = Field(foreign_key="cabinets.id", primary_key=True)
    parcel_id: int = Field(foreign_key="parcels.id", primary_key=True)
    door: int
    code_hash: str | None = Field(default=None, sa_type=String(64))
    qr_hash: str | None = Field(default=None, sa_type=String(64))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    #: Sync version that last changed this entry.
    version: int
    #: Sync version that first carried the current hashes (a re-issue moves it forward).
    hashes_version: int


class RemoteOpenSwitch(SQLModel):
    """Body of the operator's kill switch for remote opening."""

    model_config = forbid_extra()

    enabled: StrictBool
    reason: str = Field(min_length=3, max_length=255, schema_extra=visible())


class RemoteOpenSwitchPublic(SQLModel):
    cabinet_id: int
    remote_open_enabled: bool
    site_remote_open_enabled: bool
    remote_open_reason: str | None
