"""Typed server settings, read from ``LOCKER_*`` environment variables.

Settings are created once at the edge (CLI, app factory) and passed *into* the
services; nothing below imports a global settings object.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_mqtt_client_id() -> str:
    """``locker-server-<host>-<pid>``, kept within the 64 characters an id may have."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:32]
    return f"locker-server-{host}-{os.getpid()}"


_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "placeholder", "xxx", "todo"}


class Settings(BaseSettings):
    """Server configuration. Every field can be set as ``LOCKER_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LOCKER_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite file and keys live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    secrets_dir: Path | None = Field(
        default=None, description="Key files (outside the database); default: data_dir/secrets"
    )

    # Pickup credentials and lockout: 8 digits, 5 failures lock for 15 minutes (docs/server.md).
    pickup_code_digits: int = Field(default=8, ge=6, le=12)
    lockout_threshold: int = Field(default=5, ge=1, description="Failures that lock one door")
    lockout_cabinet_threshold: int = Field(
        default=5, ge=1, description="Failures at one cabinet (any doors) that lock the cabinet"
    )
    lockout_minutes: int = Field(default=15, ge=1)

    # Parcel lifecycle.
    reservation_minutes: int = Field(default=15, ge=1)
    pickup_hours: int = Field(default=72, ge=1)
    reminder_hours_before_expiry: int = Field(default=24, ge=1)
    extension_window_hours: int = Field(
        default=24, ge=1, description="A recipient may extend only this close to expiry"
    )
    max_extension_hours: int = Field(default=48, ge=1)
    max_extensions: int = Field(default=1, ge=0)

    # Authentication.
    access_token_minutes: int = Field(default=60, ge=1)

    # Reverse proxies whose X-Forwarded-For is believed (client address for the login
    # throttle and the audit log). Comma-separated addresses or networks; empty: none.
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=(), description="e.g. 127.0.0.1,10.0.0.0/8; empty: X-Forwarded-For is ignored"
    )

    # Notifications.
    public_base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "Parcel lockers <lockers@localhost>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    notification_max_attempts: int = Field(default=8, ge=1)
    notification_backoff_seconds: float = Field(default=30.0, gt=0)
    notification_timeout_seconds: float = Field(default=10.0, gt=0)

    # Audit log checkpoints (issue: at least every 5 minutes or 1,000 entries).
    audit_checkpoint_seconds: int = Field(default=300, ge=1, le=300)
    audit_checkpoint_entries: int = Field(default=1000, ge=1, le=1000)
    audit_witness_path: Path | None = Field(
        default=None,
        description="Append-only copy of every signed audit checkpoint, outside the database; "
        "default: data_dir/audit-witness.jsonl (put it on another volume or ship it off-host)",
    )

    # Cabinet link (MQTT). No URL: `serve` runs an embedded development broker (amqtt).
    mqtt_url: str | None = Field(
        default=None, description="mqtt://host:1883 or mqtts://host:8883; unset: embedded broker"
    )
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = Field(default=None, description="CA that signed the broker's cert")
    mqtt_client_id: str = Field(
        default_factory=_default_mqtt_client_id,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="fix it per server process so its persistent session survives a restart",
    )
    mqtt_share_group: str = Field(default="locker-server", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    mqtt_session_expiry_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    embedded_broker_port: int = Field(default=1883, ge=1, le=65535)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("mqtt_url must start with mqtt:// or mqtts://")
        return value

    @field_validator("smtp_password", "sms_gateway_token", "mqtt_password")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("a placeholder value is not a secret; set a real one")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'locker.sqlite3').resolve()}"

    @property
    def resolved_audit_witness_path(self) -> Path:
        if self.audit_witness_path is not None:
            return self.audit_witness_path
        return self.data_dir / "audit-witness.jsonl"

    @property
    def resolved_secrets_dir(self) -> Path:
        return self.secrets_dir if self.secrets_dir is not None else self.data_dir / "secrets"
