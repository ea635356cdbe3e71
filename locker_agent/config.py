"""Typed settings of a provisioned agent, read from its ``agent.toml``.

``locker-server cabinet provision CABINET_ID --out DIR`` writes the file (see
docs/link.md); the installer fills in ``[serial]``. Everything is validated when the
file is loaded, so a bad file stops the agent at start-up with a message naming the
key, never at the first command. The settings fail closed: an unknown key, a missing
secret, a cabinet id that could widen a topic filter (``+``, ``#``, ``/``) or a public
key that is not 32 raw bytes is refused.

The values are passed *into* the lower layers (journal, MQTT adapter, door layer);
nothing below this module imports it. ``[control]`` and the timing keys of ``[serial]``
are optional: left out, the agent runs with the defaults of ``ControllerSettings`` and
``LinkSettings``, which stay the one place those values are written down.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from firmware_protocol import PROTOCOLS
from firmware_protocol.base import BoardProtocol
from locker_agent.doors import ControllerSettings
from locker_agent.errors import ConfigError
from locker_agent.layout import BoardConfig, CabinetLayout, DoorAddress, reports_items
from locker_agent.scan.settings import CameraSettings, ScannerSettings

if TYPE_CHECKING:
    from locker_agent.scan.decoders import DecoderChain
from locker_agent.serial_link import LinkSettings

CABINET_ID_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
DEFAULT_JOURNAL_PATH: Final = Path("/var/lib/locker-agent/journal.sqlite3")
#: values the provisioning step writes where the installer must fill something in
PLACEHOLDERS: Final = frozenset({"", "CHANGE-ME", "CHANGEME", "TODO"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: the defaults the agent has always run with; only their timings are read here
_CONTROL_DEFAULTS: Final = ControllerSettings()
_LINK_DEFAULTS: Final = LinkSettings(baudrate=9600)
#: the cabinet-wide remote open budget per minute (the command guard's default)
DEFAULT_MAX_REMOTE_OPENS_PER_MINUTE: Final = 30

#: a positive, finite duration in seconds; strict, so a quoted number is refused, not guessed
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
PositiveCount = Annotated[int, Field(ge=1, strict=True)]
#: the MQTT versions the agent speaks, as written in ``[broker] protocol``
MqttProtocol = Literal["5", "3.1.1"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BrokerSettings(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = False
    ca_file: Path | None = None
    username: str = Field(min_length=1)
    password: SecretStr
    keepalive: int = Field(default=10, ge=2, le=600)
    #: the MQTT version spoken: "5" (Mosquitto), or "3.1.1" only for a broker that knows
    #: nothing newer, such as ``locker-server serve``'s embedded development broker
    protocol: MqttProtocol = "5"

    @field_validator("password")
    @classmethod
    def _password_given(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() in PLACEHOLDERS:
            raise ValueError("the broker password is missing")
        return value

    @model_validator(mode="after")
    def _tls_needs_a_ca(self) -> BrokerSettings:
        if self.tls and self.ca_file is None:
            raise ValueError("tls = true needs ca_file (the broker's CA certificate)")
        return self


class SecuritySettings(_Section):
    #: base64 of raw 32-byte Ed25519 public keys whose signatures open doors
    command_public_keys: Annotated[list[str], Field(min_length=1)]
    #: hex of this cabinet's pickup key (HMAC key of the offline allow-list hashes)
    pickup_key: SecretStr
    #: hex SHA-256 of the maintenance token that "open_all" must carry
    maintenance_token_hash: str | None = None

    @field_validator("command_public_keys")
    @classmethod
    def _raw_ed25519_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            try:
                raw = base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("a command public key is not base64") from None
            if len(raw) != 32:
                raise ValueError("a command public key is not a raw 32-byte Ed25519 key")
        return keys

    @field_validator("pickup_key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret in PLACEHOLDERS:
            raise ValueError("the pickup key is missing")
        try:
            raw = bytes.fromhex(secret)
        except ValueError:
            raise ValueError("the pickup key is not hex") from None
        if len(raw) < 16:
            raise ValueError("the pickup key is shorter than 16 bytes")
        return value

    @field_validator("maintenance_token_hash")
    @classmethod
    def _sha256_hex(cls, value: str | None) -> str | None:
        if value is not None and not _HEX64.match(value):
            raise ValueError("maintenance_token_hash must be 64 lowercase hex digits (SHA-256)")
        return value

    @property
    def public_key_bytes(self) -> list[bytes]:
        return [base64.b64decode(key) for key in self.command_public_keys]

    @property
    def pickup_key_bytes(self) -> bytes:
        return bytes.fromhex(self.pickup_key.get_secret_value())


class SerialSettings(_Section):
    port: str = ""
    protocol: str = "8a80"
    baud: int | None = Field(default=None, gt=0)
    #: the adapter hands back every byte we send (some 2-wire RS485 adapters do)
    echo: bool = Field(default=_LINK_DEFAULTS.echo, strict=True)
    #: how long an unlock may take to be answered (8A/80 boards answer after the pulse)
    unlock_timeout: Seconds = _LINK_DEFAULTS.unlock_timeout
    query_timeout: Seconds = _LINK_DEFAULTS.query_timeout
    #: after the port failed (adapter unplugged or reset): the first wait before
    #: reopening it, doubled after each failed attempt up to the maximum
    reopen_backoff_initial: Seconds = _LINK_DEFAULTS.reopen_backoff_initial
    reopen_backoff_max: Seconds = _LINK_DEFAULTS.reopen_backoff_max

    @model_validator(mode="after")
    def _backoff_in_order(self) -> SerialSettings:
        if self.reopen_backoff_max < self.reopen_backoff_initial:
            raise ValueError("reopen_backoff_max is shorter than reopen_backoff_initial")
        return self

    @property
    def port_given(self) -> bool:
        return self.port not in PLACEHOLDERS

    def link_settings(self, protocol: BoardProtocol) -> LinkSettings:
        """The serial link options; without ``baud`` the protocol's own rate."""
        return LinkSettings(
            baudrate=self.baud or protocol.default_baud,
            unlock_timeout=self.unlock_timeout,
            query_timeout=self.query_timeout,
            echo=self.echo,
            reopen_backoff_initial=self.reopen_backoff_initial,
            reopen_backoff_max=self.reopen_backoff_max,
        )


class ControlSettings(_Section):
    """``[control]``: how the door controller polls, confirms and limits opens."""

    poll_interval: Seconds = _CONTROL_DEFAULTS.poll_interval
    confirm_window: Seconds = _CONTROL_DEFAULTS.confirm_window
    confirm_poll_interval: Seconds = _CONTROL_DEFAULTS.confirm_poll_interval
    left_open_after: Seconds = _CONTROL_DEFAULTS.left_open_after
    #: opens of one door within the controller's rate window (60 s)
    max_opens_per_door: PositiveCount = _CONTROL_DEFAULTS.max_opens_per_door
    #: remote (MQTT) opens of the whole cabinet per minute, checked by the command guard
    max_remote_opens_per_minute: PositiveCount = DEFAULT_MAX_REMOTE_OPENS_PER_MINUTE
    unanswered_poll_interval: Seconds = _CONTROL_DEFAULTS.unanswered_poll_interval
    board_alarm_after: Seconds = _CONTROL_DEFAULTS.board_alarm_after

    def controller_settings(self) -> ControllerSettings:
        return ControllerSettings(
            poll_interval=self.poll_interval,
            confirm_window=self.confirm_window,
            confirm_poll_interval=self.confirm_poll_interval,
            left_open_after=self.left_open_after,
            max_opens_per_door=self.max_opens_per_door,
            rate_window=_CONTROL_DEFAULTS.rate_window,
            unanswered_poll_interval=self.unanswered_poll_interval,
            board_alarm_after=self.board_alarm_after,
        )


class DoorSettings(_Section):
    number: int = Field(ge=1)
    board: int = Field(ge=0)
    lock: int = Field(ge=1)
    #: the compartment has a working item sensor wired to its board (Kerong only): a
    #: pickup then needs it to read empty, a deposit to read occupied. Off by default,
    #: because a board reports an item bit for every lock, wired or not
    item_sensor: bool = Field(default=False, strict=True)


class JournalSettings(_Section):
    path: Path = DEFAULT_JOURNAL_PATH
    max_telemetry_events: int = Field(default=10_000, ge=1)


_CAMERA_DEFAULTS: Final = CameraSettings()
DecoderName = Literal["zxing", "zbar"]


class CameraSection(_Section):
    """``[camera]``: the kiosk camera; absent, the cabinet has none."""

    #: a camera index ("0"), a /dev/video* path, or a stream URL
    device: str = Field(min_length=1, strict=True)
    width: int | None = Field(default=None, gt=0, strict=True)
    height: int | None = Field(default=None, gt=0, strict=True)
    #: full-resolution decoders, tried in order after the quick pass
    decoders: Annotated[list[DecoderName], Field(min_length=1)] = ["zxing"]
    #: width of the quick first pass (a 720p frame is halved); 0 turns the pass off
    fast_pass_width: int = Field(default=640, ge=0, strict=True)
    forget_frames: PositiveCount = _CAMERA_DEFAULTS.forget_frames
    forget_seconds: Seconds = _CAMERA_DEFAULTS.forget_seconds
    reconnect_initial: Seconds = _CAMERA_DEFAULTS.reconnect_initial
    reconnect_max: Seconds = _CAMERA_DEFAULTS.reconnect_max

    @field_validator("device")
    @classmethod
    def _device_given(cls, value: str) -> str:
        if value in PLACEHOLDERS:
            raise ValueError("the camera device is missing")
        return value

    @model_validator(mode="after")
    def _size_in_pairs(self) -> CameraSection:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max is shorter than reconnect_initial")
        return self

    def chain(self) -> DecoderChain:
        """The decoder chain these settings describe."""
        # imported here: loading agent.toml must not load OpenCV and the decoders
        from locker_agent.scan.decoders import chain_for

        return chain_for(self.decoders, fast_width=self.fast_pass_width or None)

    def camera_settings(self) -> CameraSettings:
        return CameraSettings(
            device=self.device,
            width=self.width,
            height=self.height,
            forget_frames=self.forget_frames,
            forget_seconds=self.forget_seconds,
            reconnect_initial=self.reconnect_initial,
            reconnect_max=self.reconnect_max,
        )


class ScannerSection(_Section):
    """``[scanner]``: a serial barcode scanner module; absent, the cabinet has none."""

    port: str = Field(min_length=1, strict=True)
    baud: int = Field(default=9600, gt=0, strict=True)

    @field_validator("port")
    @classmethod
    def _port_given(cls, value: str) -> str:
        if value in PLACEHOLDERS:
            raise ValueError("the scanner port is missing")
        return value

    def scanner_settings(self) -> ScannerSettings:
        return ScannerSettings(port=self.port, baudrate=self.baud)


KioskLanguage = Literal["zh-CN", "en"]


class KioskSection(_Section):
    """``[kiosk]``: the pickup screen on the cabinet computer; absent, the cabinet has none.

    The page is served on ``host``:``port`` for the cabinet's own browser: keep the
    loopback default unless the screen is another machine on a closed network.
    """

    host: str = Field(default="127.0.0.1", min_length=1, strict=True)
    #: 0 takes any free port (tests); the kiosk browser needs a fixed one
    port: int = Field(default=8780, ge=0, le=65535, strict=True)
    #: the language the screen starts in and returns to when left idle
    language: KioskLanguage = "zh-CN"
    #: whom to call, shown on refusals and door failures (e.g. a service number)
    help_contact: str | None = Field(default=None, min_length=1, max_length=80, strict=True)
    #: seconds without a key or a scan before a half-typed code or a refusal is cleared
    idle_timeout: Seconds = 30.0


class AgentSettings(_Section):
    cabinet_id: Annotated[str, Field(pattern=CABINET_ID_PATTERN)]
    broker: BrokerSettings
    security: SecuritySettings
    serial: SerialSettings = SerialSettings()
    doors: Annotated[list[DoorSettings], Field(min_length=1)]
    journal: JournalSettings = JournalSettings()
    control: ControlSettings = ControlSettings()
    camera: CameraSection | None = None
    scanner: ScannerSection | None = None
    kiosk: KioskSection | None = None

    @field_validator("doors")
    @classmethod
    def _item_sensors_readable(
        cls, doors: list[DoorSettings], info: ValidationInfo
    ) -> list[DoorSettings]:
        serial = info.data.get("serial")
        protocol = PROTOCOLS.get(serial.protocol) if isinstance(serial, SerialSettings) else None
        if protocol is None or reports_items(protocol):
            return doors  # an unknown protocol is refused where the boards are built
        for door in doors:
            if door.item_sensor:
                raise ValueError(
                    f"item_sensor = true on door {door.number}, but serial.protocol"
                    f" {protocol.name!r} boards report no item sensor"
                )
        return doors

    @model_validator(mode="after")
    def _consistent(self) -> AgentSettings:
        if self.broker.username != self.cabinet_id:
            raise ValueError("broker.username must equal cabinet_id")
        numbers = [door.number for door in self.doors]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a door number appears twice in [[doors]]")
        return self

    def layout(self, protocol: BoardProtocol) -> CabinetLayout:
        """The door layout; each board has as many locks as its highest configured lock."""
        locks: dict[int, int] = {}
        for door in self.doors:
            locks[door.board] = max(locks.get(door.board, 0), door.lock)
        boards = [BoardConfig(address, count) for address, count in sorted(locks.items())]
        doors = {door.number: DoorAddress(door.board, door.lock) for door in self.doors}
        sensors = [door.number for door in self.doors if door.item_sensor]
        return CabinetLayout.build(protocol, boards, doors, item_sensors=sensors)


def parse_settings(document: dict[str, object], *, base_dir: Path | None = None) -> AgentSettings:
    """Validate an already-parsed TOML document; relative paths resolve from ``base_dir``."""
    try:
        settings = AgentSettings.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None  # the input may hold secrets: no chain
    return _resolved(settings, base_dir) if base_dir is not None else settings


def load_settings(path: Path) -> AgentSettings:
    """Read and validate ``agent.toml``; every problem is a :class:`ConfigError`."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_settings(document, base_dir=path.parent)


def _resolved(settings: AgentSettings, base_dir: Path) -> AgentSettings:
    """Paths in the file are relative to the file (the provisioned DIR moves as a whole)."""
    broker, journal = settings.broker, settings.journal
    if broker.ca_file is not None and not broker.ca_file.is_absolute():
        broker = broker.model_copy(update={"ca_file": base_dir / broker.ca_file})
    if not journal.path.is_absolute():
        journal = journal.model_copy(update={"path": base_dir / journal.path})
    return settings.model_copy(update={"broker": broker, "journal": journal})


def _describe(exc: ValidationError) -> str:
    """One line per problem, naming the key; never echoes the rejected value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(file)"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{where}: {message}")
    return "invalid agent configuration: " + "; ".join(problems)
