"""The ``alarms`` table: what went wrong at a cabinet, for operators and security staff.

An alarm is *open* until someone acknowledges it or its condition ends (*cleared*: the
board answers again, the cabinet is back online). While it is open, the same kind at
the same cabinet and door counts up ``repeats`` instead of adding a row; ``open_key``
makes that safe between server processes: it is set only while the alarm is open and is
unique, so two processes raising the same alarm at once end with one row.

``detail`` says what was seen in a few words; it never holds personal data or a code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from locker_server.models.types import UTCDateTime, forbid_extra, visible

#: Longest ``kind``: the contract's (its kinds are open: a newer agent may send others).
MAX_KIND = 200
MAX_DETAIL = 200
MAX_NOTE = 500


class AlarmState(StrEnum):
    """Acknowledged wins over cleared: an alarm someone has handled is ``acknowledged``."""

    open = "open"
    cleared = "cleared"
    acknowledged = "acknowledged"


class Alarm(SQLModel, table=True):
    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_site_raised", "site_id", "raised_at"),
        Index("ix_alarms_cabinet_kind", "cabinet_id", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(MAX_KIND))
    site_id: int = Field(foreign_key="sites.id")
    cabinet_id: int = Field(foreign_key="cabinets.id")
    #: The door's number in its cabinet; None for an alarm of the whole cabinet.
    door_number: int | None = None
    raised_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    #: How often it was seen again while open (0: seen once).
    repeats: int = 0
    detail: str | None = Field(default=None, sa_type=String(MAX_DETAIL))
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The user id of whoever acknowledged it.
    acknowledged_by: int | None = None
    note: str | None = Field(default=None, sa_type=String(MAX_NOTE))
    #: ``<cabinet>/<door or ->/<kind>`` while open, else None (unique: the dedupe rule).
    open_key: str | None = Field(default=None, sa_type=String(MAX_KIND + 40), unique=True)

    @property
    def state(self) -> AlarmState:
        if self.acknowledged_at is not None:
            return AlarmState.acknowledged
        if self.cleared_at is not None:
            return AlarmState.cleared
        return AlarmState.open


class AlarmPublic(SQLModel):
    id: int
    kind: str
    state: AlarmState
    site_id: int
    cabinet_id: int
    door_number: int | None
    raised_at: datetime
    last_seen_at: datetime
    repeats: int = Field(description="how often it was seen again while open")
    detail: str | None
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: int | None = Field(description="the user id of whoever acknowledged it")
    note: str | None


class AlarmAcknowledge(SQLModel):
    model_config = forbid_extra()

    note: str = Field(
        min_length=1,
        max_length=MAX_NOTE,
        schema_extra=visible(),
        description="What was done or found (no personal data)",
    )
