"""Tables of the identity part: users, their site scope, and carrier API keys.

Secrets never live here in clear: passwords are argon2id hashes, API keys are keyed
hashes (HMAC-SHA256 with the token signing key, kept outside the database).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from locker_server.models.types import UTCDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(64), unique=True, index=True)
    password_hash: str = Field(sa_type=String(255))
    role: str = Field(sa_type=String(16))
    active: bool = True
    #: True: every site. False: only the sites linked in ``user_sites``.
    all_sites: bool = True
    courier_id: int | None = Field(default=None, foreign_key="couriers.id", ondelete="SET NULL")
    #: Where alarms of the user's sites are sent (operators); personal data, kept only here.
    email: str | None = Field(default=None, sa_type=String(254))
    #: The web console's language for this user (``en``, ``zh-CN``); None: the browser's.
    language: str | None = Field(default=None, sa_type=String(8))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserSite(SQLModel, table=True):
    __tablename__ = "user_sites"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    site_id: int = Field(foreign_key="sites.id", primary_key=True, ondelete="CASCADE")


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    #: Public part of the key (``lk_<prefix>_<secret>``), used to find the row.
    prefix: str = Field(sa_type=String(16), unique=True, index=True)
    secret_hash: str = Field(sa_type=String(64))
    name: str = Field(sa_type=String(100))
    role: str = Field(default="carrier", sa_type=String(16))
    carrier_id: int = Field(foreign_key="carriers.id", index=True, ondelete="CASCADE")
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
