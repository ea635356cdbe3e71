"""Parcels, their recorded transitions, pickup credentials and failed pickup attempts.

Credentials are stored only as HMAC-SHA256 hashes under a key kept outside the
database; the plaintext goes to the notifier once and nowhere else.
"""

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from locker_server.models.enums import ParcelState
from locker_server.models.types import STRICT, UTCDateTime, forbid_extra, utcnow, visible


class Parcel(SQLModel, table=True):
    __tablename__ = "parcels"
    __table_args__ = (
        UniqueConstraint("carrier_id", "tracking_number", name="uq_parcels_carrier_tracking"),
        Index("ix_parcels_door_state", "door_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    carrier_id: int = Field(foreign_key="carriers.id")
    tracking_number: str = Field(sa_type=String(64))
    recipient_id: int = Field(foreign_key="recipients.id", index=True)
    size_class_id: int | None = Field(default=None, foreign_key="size_classes.id")
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    state: str = Field(default=ParcelState.announced, sa_type=String(24), index=True)
    site_id: int | None = Field(default=None, foreign_key="sites.id", index=True)
    cabinet_id: int | None = Field(default=None, foreign_key="cabinets.id")
    door_id: int | None = Field(default=None, foreign_key="doors.id")
    reserved_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deposited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pickup_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    extensions_used: int = 0
    reminder_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    picked_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ParcelAnnounce(SQLModel):
    """A courier or carrier registers a parcel for a recipient who consented."""

    model_config = forbid_extra()

    carrier_id: int | None = Field(
        default=None, ge=1, schema_extra=STRICT, description="implied for couriers"
    )
    tracking_number: str = Field(
        min_length=1, max_length=64, schema_extra={"pattern": r"^[A-Za-z0-9_.-]+$"}
    )
    recipient_id: int = Field(ge=1, schema_extra=STRICT)
    site_id: int | None = Field(
        default=None, ge=1, schema_extra=STRICT, description="the site it is delivered to"
    )
    size: str | None = Field(
        default=None, min_length=1, max_length=8, description="size class code"
    )
    length_mm: int | None = Field(default=None, ge=1, le=5000, schema_extra=STRICT)
    width_mm: int | None = Field(default=None, ge=1, le=5000, schema_extra=STRICT)
    height_mm: int | None = Field(default=None, ge=1, le=5000, schema_extra=STRICT)


class ParcelPublic(SQLModel):
    id: int
    carrier_id: int
    tracking_number: str
    recipient_id: int
    state: ParcelState
    size: str | None
    site_id: int | None
    cabinet_id: int | None
    door_id: int | None
    door_number: int | None
    reserved_until: datetime | None
    deposited_at: datetime | None
    pickup_deadline: datetime | None
    extensions_used: int
    picked_up_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ParcelTransition(SQLModel, table=True):
    """One recorded lifecycle step: who moved the parcel from which state to which, when."""

    __tablename__ = "parcel_transitions"

    id: int | None = Field(default=None, primary_key=True)
    parcel_id: int = Field(foreign_key="parcels.id", index=True)
    from_state: str | None = Field(default=None, sa_type=String(24))
    to_state: str = Field(sa_type=String(24))
    actor_type: str = Field(sa_type=String(16))
    actor_id: str = Field(sa_type=String(64))
    at: datetime = Field(sa_type=UTCDateTime)
    device_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, sa_type=String(255))


class ParcelTransitionPublic(SQLModel):
    from_state: ParcelState | None
    to_state: ParcelState
    actor_type: str
    actor_id: str
    at: datetime
    reason: str | None


class PickupCredential(SQLModel, table=True):
    __tablename__ = "pickup_credentials"
    __table_args__ = (Index("ix_pickup_credentials_cabinet_kind", "cabinet_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    parcel_id: int = Field(foreign_key="parcels.id", index=True)
    cabinet_id: int = Field(foreign_key="cabinets.id")
    kind: str = Field(sa_type=String(8))
    credential_hash: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PickupFailure(SQLModel, table=True):
    """A failed pickup attempt, counted per door and per cabinet for the lockout window."""

    __tablename__ = "pickup_failures"
    __table_args__ = (Index("ix_pickup_failures_cabinet_at", "cabinet_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    cabinet_id: int = Field(foreign_key="cabinets.id")
    door_number: int | None = None
    at: datetime = Field(sa_type=UTCDateTime)


class PickupAttempt(SQLModel):
    model_config = forbid_extra()

    cabinet_id: int = Field(ge=1, schema_extra=STRICT)
    code: str | None = Field(
        default=None, min_length=1, max_length=32, description="the pickup code; or qr_token"
    )
    qr_token: str | None = Field(default=None, min_length=1, max_length=128)
    door_number: int | None = Field(default=None, ge=1, le=9999, schema_extra=STRICT)


class PickupGranted(SQLModel):
    cabinet_id: int
    door_numbers: list[int]
    parcel_ids: list[int]


class ExtendRequest(SQLModel):
    model_config = forbid_extra()

    hours: int = Field(ge=1, le=24 * 30, schema_extra=STRICT)


class SiteExtendRequest(SQLModel):
    model_config = forbid_extra()

    hours: int = Field(ge=1, le=24 * 30, schema_extra=STRICT)
    reason: str = Field(min_length=3, max_length=255, schema_extra=visible())


class ReasonRequest(SQLModel):
    model_config = forbid_extra()

    reason: str | None = Field(default=None, max_length=255, schema_extra=visible())


class ReserveRequest(SQLModel):
    model_config = forbid_extra()

    cabinet_id: int = Field(ge=1, schema_extra=STRICT)


class DepositRequest(SQLModel):
    model_config = forbid_extra()

    door_number: int | None = Field(default=None, ge=1, le=9999, schema_extra=STRICT)
