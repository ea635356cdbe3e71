"""Sites, cabinets, doors and the ordered size classes of doors.

A door keeps separate facts rather than one combined status: whether it is in
service (and why not), the last state the cabinet *reported* (open/closed/unknown,
with when), and its occupancy. ``held_parcels`` counts the parcels that hold the
door (reserved or inside) so one recipient's several parcels can share it and the
door is released exactly when the last one leaves.
"""

from datetime import datetime

from pydantic import StrictBool, field_validator
from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from locker_contract.topics import cabinet_id_problem
from locker_server.models.enums import DoorState, Occupancy, ServiceState
from locker_server.models.types import (
    STRICT,
    NotNull,
    UTCDateTime,
    forbid_extra,
    known_opening_hours,
    known_time_zone,
    utcnow,
    visible,
)

#: A cabinet code is its machine id and its MQTT user name: never ``+``, ``#`` or ``/``.
CABINET_CODE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class SizeClass(SQLModel, table=True):
    """An ordered door size (``rank``) with its inner dimensions in millimetres."""

    __tablename__ = "size_classes"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(8), unique=True)
    rank: int = Field(unique=True)
    inner_height_mm: int
    inner_width_mm: int
    inner_depth_mm: int


class SizeClassPublic(SQLModel):
    code: str
    rank: int
    inner_height_mm: int
    inner_width_mm: int
    inner_depth_mm: int


# --- sites ---------------------------------------------------------------------------------


class SiteBase(SQLModel):
    name: str = Field(
        min_length=1,
        max_length=120,
        sa_type=String(120),
        schema_extra=visible(),
        description="Shown to staff",
    )
    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        sa_type=String(64),
        description="IANA time zone (Europe/Berlin); times in e-mails are shown in it",
    )
    address: str | None = Field(default=None, max_length=255, sa_type=String(255))
    opening_hours: str | None = Field(
        default=None,
        max_length=11,
        sa_type=String(11),
        description="Daily access hours in the site's time zone, e.g. 07:00-20:00 "
        "(22:00-06:00 spans midnight); a door opened outside them raises an alarm. "
        "Empty: always open",
    )


class Site(SiteBase, table=True):
    __tablename__ = "sites"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SiteCreate(SiteBase):
    model_config = forbid_extra()

    _known_zone = field_validator("timezone")(known_time_zone)
    _known_hours = field_validator("opening_hours")(known_opening_hours)


class SiteUpdate(SQLModel):
    model_config = forbid_extra()

    name: NotNull[str] = Field(default=None, min_length=1, max_length=120, schema_extra=visible())
    timezone: NotNull[str] = Field(default=None, min_length=1, max_length=64)
    address: str | None = Field(default=None, max_length=255, description="null clears it")
    opening_hours: str | None = Field(
        default=None, max_length=11, description="e.g. 07:00-20:00; null: always open"
    )

    _known_zone = field_validator("timezone")(known_time_zone)
    _known_hours = field_validator("opening_hours")(known_opening_hours)


class SitePublic(SiteBase):
    id: int
    created_at: datetime


# --- cabinets ------------------------------------------------------------------------------


class CabinetBase(SQLModel):
    code: str = Field(
        schema_extra={"pattern": CABINET_CODE_PATTERN},
        sa_type=String(64),
        description="The cabinet's machine id (its MQTT user name)",
    )
    name: str = Field(min_length=1, max_length=120, sa_type=String(120), schema_extra=visible())


class Cabinet(CabinetBase, table=True):
    __tablename__ = "cabinets"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(64), unique=True)
    site_id: int = Field(foreign_key="sites.id", index=True)
    in_service: bool = True
    maintenance: bool = False
    maintenance_reason: str | None = Field(default=None, sa_type=String(255))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CabinetCreate(CabinetBase):
    model_config = forbid_extra()

    site_id: int = Field(ge=1, schema_extra=STRICT)

    @field_validator("code")
    @classmethod
    def _usable_as_broker_name(cls, code: str) -> str:
        """The code is the cabinet's MQTT username and client id: refuse names that are
        path words or that belong to the server on the broker (the contract's rule)."""
        problem = cabinet_id_problem(code)
        if problem is not None:
            raise ValueError(problem)
        return code


class CabinetUpdate(SQLModel):
    model_config = forbid_extra()

    name: NotNull[str] = Field(default=None, min_length=1, max_length=120, schema_extra=visible())
    in_service: NotNull[StrictBool] = None
    maintenance: NotNull[StrictBool] = None
    maintenance_reason: str | None = Field(
        default=None, max_length=255, schema_extra=visible(), description="null clears it"
    )


class CabinetPublic(CabinetBase):
    id: int
    site_id: int
    in_service: bool
    maintenance: bool
    maintenance_reason: str | None
    created_at: datetime


# --- doors ---------------------------------------------------------------------------------


class Door(SQLModel, table=True):
    __tablename__ = "doors"
    __table_args__ = (UniqueConstraint("cabinet_id", "number", name="uq_doors_cabinet_number"),)

    id: int | None = Field(default=None, primary_key=True)
    cabinet_id: int = Field(foreign_key="cabinets.id", index=True)
    number: int
    size_class_id: int = Field(foreign_key="size_classes.id")
    board: int
    lock: int
    accessible_height: bool = False
    service_state: str = Field(default=ServiceState.in_service, sa_type=String(16))
    service_reason: str | None = Field(default=None, sa_type=String(255))
    door_state: str = Field(default=DoorState.unknown, sa_type=String(16))
    door_state_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    occupancy: str = Field(default=Occupancy.empty, sa_type=String(16), index=True)
    occupant_recipient_id: int | None = Field(default=None, foreign_key="recipients.id")
    held_parcels: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DoorCreate(SQLModel):
    model_config = forbid_extra()

    number: int = Field(
        ge=1, le=9999, schema_extra=STRICT, description="Door number at the cabinet"
    )
    size: str = Field(min_length=1, max_length=8, description="size class code, e.g. M")
    board: int = Field(ge=0, le=255, schema_extra=STRICT, description="Lock board address")
    lock: int = Field(ge=0, le=255, schema_extra=STRICT, description="Lock channel on the board")
    accessible_height: bool = Field(default=False, schema_extra=STRICT)


class DoorUpdate(SQLModel):
    model_config = forbid_extra()

    service_state: NotNull[ServiceState] = None
    service_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        schema_extra=visible(),
        description="null clears it",
    )
    accessible_height: NotNull[StrictBool] = None


class DoorPublic(SQLModel):
    id: int
    cabinet_id: int
    number: int
    size: str
    board: int
    lock: int
    accessible_height: bool
    service_state: ServiceState
    service_reason: str | None
    door_state: DoorState
    door_state_at: datetime | None
    occupancy: Occupancy


class RemoteOpenRequest(SQLModel):
    model_config = forbid_extra()

    reason: str = Field(min_length=3, max_length=255, schema_extra=visible())


class DoorCommand(SQLModel, table=True):
    """An operator's queued remote open; nothing sends it (signed commands: ``link_commands``)."""

    __tablename__ = "door_commands"

    id: int | None = Field(default=None, primary_key=True)
    door_id: int = Field(foreign_key="doors.id", index=True)
    kind: str = Field(sa_type=String(16))
    reason: str = Field(sa_type=String(255))
    requested_by_type: str = Field(sa_type=String(16))
    requested_by_id: str = Field(sa_type=String(64))
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = Field(default="pending", sa_type=String(16))


class DoorCommandPublic(SQLModel):
    id: int
    door_id: int
    kind: str
    status: str
    requested_at: datetime
    note: str = "queued for the cabinet link; the door opens when the cabinet executes it"
