"""Recipients (from the directory), carriers and their couriers.

A courier's code is never stored: only its keyed hash (HMAC with the pickup key,
domain-separated from pickup codes), so a courier can sign in at a cabinet without
the cabinet or the database ever holding the code.
"""

from datetime import datetime

from pydantic import StrictBool
from sqlalchemy import String
from sqlmodel import Field, SQLModel

from locker_server.models.enums import Language
from locker_server.models.types import STRICT, NotNull, UTCDateTime, forbid_extra, utcnow, visible

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9 ()-]{5,32}$"


class RecipientBase(SQLModel):
    name: str = Field(min_length=1, max_length=120, sa_type=String(120), schema_extra=visible())
    email: str | None = Field(
        default=None, max_length=254, schema_extra={"pattern": EMAIL_PATTERN}, sa_type=String(254)
    )
    phone: str | None = Field(
        default=None, max_length=32, schema_extra={"pattern": PHONE_PATTERN}, sa_type=String(32)
    )
    department: str | None = Field(default=None, max_length=120, sa_type=String(120))
    language: Language = Field(
        default=Language.en, sa_type=String(8), description="Language of the notifications"
    )
    accessibility_need: bool = Field(
        default=False, schema_extra=STRICT, description="Prefer doors at an accessible height"
    )
    consent_locker_delivery: bool = Field(
        default=False, schema_extra=STRICT, description="Parcels may be announced only with it"
    )
    active: bool = Field(default=True, schema_extra=STRICT)


class Recipient(RecipientBase, table=True):
    __tablename__ = "recipients"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RecipientCreate(RecipientBase):
    model_config = forbid_extra()


class RecipientUpdate(SQLModel):
    model_config = forbid_extra()

    name: NotNull[str] = Field(default=None, min_length=1, max_length=120, schema_extra=visible())
    email: str | None = Field(
        default=None,
        max_length=254,
        schema_extra={"pattern": EMAIL_PATTERN},
        description="null clears it",
    )
    phone: str | None = Field(
        default=None,
        max_length=32,
        schema_extra={"pattern": PHONE_PATTERN},
        description="null clears it",
    )
    department: str | None = Field(default=None, max_length=120, description="null clears it")
    language: NotNull[Language] = None
    accessibility_need: NotNull[StrictBool] = None
    consent_locker_delivery: NotNull[StrictBool] = None
    active: NotNull[StrictBool] = None


class RecipientPublic(RecipientBase):
    id: int
    created_at: datetime


class CarrierBase(SQLModel):
    name: str = Field(min_length=1, max_length=120, sa_type=String(120), schema_extra=visible())
    webhook_url: str | None = Field(
        default=None,
        max_length=500,
        schema_extra={"pattern": r"^https?://\S+$"},
        sa_type=String(500),
    )


class Carrier(CarrierBase, table=True):
    __tablename__ = "carriers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(120), unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CarrierCreate(CarrierBase):
    model_config = forbid_extra()


class CarrierUpdate(SQLModel):
    model_config = forbid_extra()

    name: NotNull[str] = Field(default=None, min_length=1, max_length=120, schema_extra=visible())
    webhook_url: str | None = Field(
        default=None,
        max_length=500,
        schema_extra={"pattern": r"^https?://\S+$"},
        description="null clears it",
    )


class CarrierPublic(CarrierBase):
    id: int
    created_at: datetime


class Courier(SQLModel, table=True):
    __tablename__ = "couriers"

    id: int | None = Field(default=None, primary_key=True)
    carrier_id: int = Field(foreign_key="carriers.id", index=True)
    name: str = Field(sa_type=String(120))
    code_hash: str = Field(sa_type=String(64), unique=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CourierCreate(SQLModel):
    model_config = forbid_extra()

    carrier_id: int = Field(ge=1, schema_extra=STRICT)
    name: str = Field(min_length=1, max_length=120, schema_extra=visible())
    code: str = Field(min_length=6, max_length=64, schema_extra={"pattern": r"^[0-9A-Za-z]+$"})


class CourierPublic(SQLModel):
    id: int
    carrier_id: int
    name: str
    active: bool
    created_at: datetime
