"""Message bodies: one frozen pydantic model per message type (sync has three kinds).

Unknown fields are rejected everywhere (``extra="forbid"``): a sender that adds a field
must bump the envelope version, a receiver never half-understands a message.

What the server sends a cabinet (``cmd``, ``evt_ack``, ``sync``) is signed, and each of
those bodies comes in two forms: ``Unsigned…`` (what the server builds; it names the
``key_id`` it will sign with) and the signed model the wire carries, which adds
``signature``. Only the signed form decodes as a ``CommandMessage``, ``EventAckMessage``
or ``SyncMessage``; ``signing.sign_message`` turns one into the other.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, JsonValue, StringConstraints, model_validator

from locker_contract.envelope import Body, Envelope
from locker_contract.types import (
    MODEL_CONFIG,
    DoorNumber,
    HexId,
    NonNegativeInt,
    PositiveInt,
    Sha256Hex,
    ShortText,
    UtcTimestamp,
)

MAX_EVENTS_PER_MESSAGE = 100
MAX_ACK_IDS = 1000
MAX_ALLOW_LIST_ENTRIES = 10_000
#: A door size class code (``S``, ``M``, ``L`` …), as the server's size table names it.
SizeCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,8}$")]
#: An Ed25519 signature (64 bytes) in base64: the ``signature`` of every signed body.
Base64Text = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$")]


def _empty(value: list[str]) -> bool:
    return not value


# --- presence / state --------------------------------------------------------------------


class Presence(Body):
    """Cabinet online/offline; also the last will (offline, same connection number)."""

    MESSAGE_TYPE: ClassVar = "presence"
    status: Literal["online", "offline"]
    connection: PositiveInt
    agent_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DoorSnapshot(BaseModel):
    model_config = MODEL_CONFIG
    state: Literal["open", "closed", "unknown"]
    occupied: bool | None


DoorKey = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,3}$")]


class State(Body):
    """Full snapshot of every door; ``version`` strictly increases (persisted by the agent)."""

    MESSAGE_TYPE: ClassVar = "state"
    version: PositiveInt
    doors: dict[DoorKey, DoorSnapshot]

    def door(self, number: int) -> DoorSnapshot | None:
        return self.doors.get(str(number))


# --- events ----------------------------------------------------------------------------


class EventType(enum.StrEnum):
    """Event types with a fixed meaning; ``telemetry.<name>`` types may also be sent."""

    DOOR_OPENED = "door.opened"
    DOOR_CLOSED = "door.closed"
    DOOR_FORCED_OPEN = "door.forced_open"
    DOOR_LEFT_OPEN = "door.left_open"
    DOOR_JAMMED = "door.jammed"
    DOOR_OPEN_CONFIRMED = "door.open_confirmed"
    DOOR_OPEN_OUTCOME_UNKNOWN = "door.open_outcome_unknown"
    DEPOSIT = "deposit"
    PICKUP = "pickup"
    PICKUP_REFUSED = "pickup.refused"
    ALARM = "alarm"


TELEMETRY_PREFIX = "telemetry."
EVENT_TYPE_PATTERN = (
    r"^(door\.(opened|closed|forced_open|left_open|jammed|open_confirmed|open_outcome_unknown)"
    r"|deposit|pickup|pickup\.refused|alarm|telemetry\.[a-z0-9_.]{1,48})$"
)


def is_droppable(event_type: str) -> bool:
    """Only telemetry may be dropped from a full journal; door and custody events never."""
    return event_type.startswith(TELEMETRY_PREFIX)


class DoorMoveData(BaseModel):
    """``door.opened`` / ``door.closed`` data. ``observed`` false: nobody saw the move as it
    happened — the cabinet found the door in this state after a gap in its observation
    (the agent was down, the board did not answer), last seen in the other state; the
    move happened at some time during the gap and ``device_time`` is when it was found.
    Such an event never confirms an open anyone asked for."""

    model_config = MODEL_CONFIG
    observed: bool = True
    detail: ShortText | None = None


class OfflinePickupData(BaseModel):
    """``pickup`` event data: a pickup the agent validated locally while the link was down."""

    model_config = MODEL_CONFIG
    mode: Literal["offline"]
    parcel_ids: Annotated[list[PositiveInt], Field(min_length=1, max_length=100)]
    credential: Literal["code", "qr"]
    allow_list_version: NonNegativeInt


class DepositData(BaseModel):
    """``deposit`` data: the parcel whose door opened and closed again with it inside.

    ``parcel_id`` is absent only for a deposit the cabinet cannot attribute (the server
    audits it as unmatched); ``courier`` is the signed-in courier's id, as text.
    """

    model_config = MODEL_CONFIG
    parcel_id: PositiveInt | None = None
    courier: ShortText | None = None


class PickupRefusedData(BaseModel):
    """``pickup.refused`` data: why, and never the code or token that was presented."""

    model_config = MODEL_CONFIG
    reason: ShortText
    credential: Literal["code", "qr"] | None = None


class AlarmKind(enum.StrEnum):
    """Alarm kinds a cabinet raises; ``kind`` is open (a newer agent may send others),
    these are the ones both sides name."""

    BOARD_NOT_ANSWERING = "board_not_answering"
    DOOR_UNOBSERVED = "door_unobserved"
    DOOR_MOVED_UNOBSERVED = "door_moved_unobserved"
    DOOR_OPEN_RATE_LIMITED = "door_open_rate_limited"
    PICKUP_DOOR_NOT_OPENED = "pickup_door_not_opened"
    WRONG_CODE_BURST = "wrong_code_burst"
    CAMERA_LOST = "camera_lost"
    SCANNER_LOST = "scanner_lost"
    COMMAND_REJECTED = "command_rejected"


class AlarmData(BaseModel):
    """``alarm`` data. An alarm with ``cleared`` true ends the open alarm of the same
    kind (and door) instead of raising one: e.g. the board answers again."""

    model_config = MODEL_CONFIG
    kind: ShortText
    detail: ShortText | None = None
    cleared: bool = False


TYPED_EVENT_DATA: dict[str, type[BaseModel]] = {
    EventType.DOOR_OPENED: DoorMoveData,
    EventType.DOOR_CLOSED: DoorMoveData,
    EventType.DEPOSIT: DepositData,
    EventType.PICKUP: OfflinePickupData,
    EventType.PICKUP_REFUSED: PickupRefusedData,
    EventType.ALARM: AlarmData,
}


class Event(BaseModel):
    """One journal event; ``event_id`` is stable across re-publishes, ``seq`` is journal order."""

    model_config = MODEL_CONFIG
    event_id: HexId
    seq: PositiveInt
    type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]
    device_time: UtcTimestamp
    door: DoorNumber | None
    data: dict[str, JsonValue]

    @model_validator(mode="after")
    def _data_fits_the_type(self) -> Event:
        model = TYPED_EVENT_DATA.get(self.type)
        if model is not None:
            model.model_validate(self.data)
        return self

    def typed_data(self) -> BaseModel | None:
        """The data as its model for ``door.opened``/``door.closed``, ``deposit``,
        ``pickup``, ``pickup.refused`` and ``alarm``; else None."""
        model = TYPED_EVENT_DATA.get(self.type)
        return None if model is None else model.model_validate(self.data)


def _absent(value: str | None) -> bool:
    return value is None


class EventBatch(Body):
    """``evt``: 1..100 events in journal order.

    ``after_event`` names the newest event older than this batch's first that the cabinet
    still holds unacknowledged (left out when there is none). The server applies the
    batch only once it has stored that event: a batch that overtook an earlier one lost
    on the way (a broker that dropped it, a server that gave up on it) waits for the
    cabinet's re-publish instead of being applied out of journal order.
    """

    MESSAGE_TYPE: ClassVar = "evt"
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS_PER_MESSAGE)]
    after_event: Annotated[HexId | None, Field(exclude_if=_absent)] = None

    @model_validator(mode="after")
    def _follows_an_earlier_event(self) -> EventBatch:
        if self.after_event is not None and any(
            event.event_id == self.after_event for event in self.events
        ):
            raise ValueError("after_event names an event older than the batch, not in it")
        return self

    @model_validator(mode="after")
    def _event_ids_unique(self) -> EventBatch:
        if len({event.event_id for event in self.events}) != len(self.events):
            raise ValueError("event ids in one batch must be unique")
        return self


class UnsignedEventAck(Body):
    """An ``evt/ack`` before signing; ``EventAck`` adds the signature (see ``signing``).

    ``result_ids`` names final ``cmd_res`` messages (their envelope ids) the server has
    taken. It is left out of the message when empty, so an ack naming only events is
    exactly what an agent that predates the field accepts.
    """

    MESSAGE_TYPE: ClassVar = "evt_ack"
    event_ids: Annotated[list[HexId], Field(max_length=MAX_ACK_IDS)]
    result_ids: Annotated[
        list[HexId], Field(default_factory=list, max_length=MAX_ACK_IDS, exclude_if=_empty)
    ]
    key_id: Sha256Hex

    @model_validator(mode="after")
    def _names_something(self) -> UnsignedEventAck:
        if not self.event_ids and not self.result_ids:
            raise ValueError("an ack names at least one event or command result")
        return self


class EventAck(UnsignedEventAck):
    """``evt/ack``: ids of events the server has committed (not merely received) and of
    final command results it has taken, signed with Ed25519 over the whole envelope like a
    command: the agent deletes what it names."""

    signature: Base64Text


# --- commands --------------------------------------------------------------------------


class RejectReason(enum.StrEnum):
    """Why the agent refused a command (reported in ``cmd/res``)."""

    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    WRONG_CABINET = "wrong_cabinet"
    UNKNOWN_DOOR = "unknown_door"
    EXPIRED = "expired"
    REPLAYED_COUNTER = "replayed_counter"
    DUPLICATE_COMMAND = "duplicate_command"
    RETAINED = "retained"
    RATE_LIMITED = "rate_limited"
    MAINTENANCE_REQUIRED = "maintenance_required"
    MALFORMED = "malformed"


Action = Literal["open_door", "open_all", "ping"]


class UnsignedCommand(Body):
    """A command before signing; ``Command`` adds the signature (see ``signing``)."""

    MESSAGE_TYPE: ClassVar = "cmd"
    command_id: HexId
    counter: PositiveInt
    issued_at: UtcTimestamp
    expires_at: UtcTimestamp
    action: Action
    door: DoorNumber | None
    reason: ShortText | None
    maintenance_token: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None
    key_id: Sha256Hex

    @model_validator(mode="after")
    def _door_only_for_open_door(self) -> Any:
        if (self.action == "open_door") != (self.door is not None):
            raise ValueError("'door' is required for open_door and forbidden otherwise")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self


class Command(UnsignedCommand):
    """``cmd``: a server command signed with Ed25519 over the whole envelope."""

    signature: Base64Text


class CommandResult(Body):
    """``cmd/res``: "received" on arrival, then exactly one final status.

    "received" is sent once and may be lost; a final result is kept by the agent and sent
    again until an ``evt/ack`` names its envelope id in ``result_ids``.
    """

    MESSAGE_TYPE: ClassVar = "cmd_res"
    command_id: HexId
    status: Literal["received", "succeeded", "failed", "rejected", "expired"]
    reason: ShortText | None
    outcome: Literal["confirmed", "jammed", "outcome_unknown", "rate_limited"] | None
    counter: PositiveInt | None

    @property
    def is_final(self) -> bool:
        return self.status != "received"

    @model_validator(mode="after")
    def _rejection_names_a_reason(self) -> CommandResult:
        if self.status == "rejected" and self.reason not in set(RejectReason):
            raise ValueError("a rejected command's reason must be a RejectReason")
        return self


# --- sync ------------------------------------------------------------------------------


class AllowListEntry(BaseModel):
    """One parcel that may be picked up offline: its door and keyed credential hashes."""

    model_config = MODEL_CONFIG
    parcel_id: PositiveInt
    door: DoorNumber
    code_hash: Sha256Hex | None
    qr_hash: Sha256Hex | None
    expires_at: UtcTimestamp

    @model_validator(mode="after")
    def _has_a_credential(self) -> AllowListEntry:
        if self.code_hash is None and self.qr_hash is None:
            raise ValueError("an entry needs a code_hash or a qr_hash")
        return self


class _UnsignedSyncBody(Body):
    MESSAGE_TYPE: ClassVar = "sync"
    version: NonNegativeInt
    server_time: UtcTimestamp
    key_id: Sha256Hex


class UnsignedAllowListSync(_UnsignedSyncBody):
    """An allow-list sync before signing; ``AllowListSync`` adds the signature."""

    kind: Literal["allow_list"]
    full: bool
    entries: Annotated[list[AllowListEntry], Field(max_length=MAX_ALLOW_LIST_ENTRIES)]
    removed: Annotated[list[PositiveInt], Field(max_length=MAX_ALLOW_LIST_ENTRIES)]


class AllowListSync(UnsignedAllowListSync):
    """The offline allow-list: a full replacement or a delta; newer versions only; signed."""

    signature: Base64Text


class UnsignedConfigSync(_UnsignedSyncBody):
    """A config sync before signing; ``ConfigSync`` adds the signature."""

    kind: Literal["config"]
    settings: dict[str, JsonValue]


class ConfigSync(UnsignedConfigSync):
    """Agent settings pushed by the server (key → JSON value); signed."""

    signature: Base64Text


class UnsignedTimeSync(_UnsignedSyncBody):
    """A time sync before signing; ``TimeSync`` adds the signature."""

    kind: Literal["time"]


class TimeSync(UnsignedTimeSync):
    """Only ``server_time`` (and ``sent_at``): lets the agent learn its clock offset; signed."""

    signature: Base64Text


class ReservationEntry(BaseModel):
    """A door held at this cabinet for an announced parcel, until ``reserved_until``.

    The tracking number travels only as its keyed hash (``credentials.tracking_hash``);
    ``carrier_id`` tells two carriers' equal numbers apart.
    """

    model_config = MODEL_CONFIG
    parcel_id: PositiveInt
    carrier_id: PositiveInt
    door: DoorNumber
    size: SizeCode
    tracking_hash: Sha256Hex
    reserved_until: UtcTimestamp


class UnsignedReservationSync(_UnsignedSyncBody):
    """A reservations sync before signing; ``ReservationSync`` adds the signature."""

    kind: Literal["reservations"]
    entries: Annotated[list[ReservationEntry], Field(max_length=MAX_ALLOW_LIST_ENTRIES)]


class ReservationSync(UnsignedReservationSync):
    """Every door currently reserved at the cabinet (always the full list); signed. Lets a
    courier deposit an announced parcel while the server is out of reach."""

    signature: Base64Text


SyncBody = Annotated[
    AllowListSync | ConfigSync | TimeSync | ReservationSync, Field(discriminator="kind")
]

# The concrete envelope types, for decode(payload, PresenceMessage) and for the schemas.
PresenceMessage = Envelope[Presence]
StateMessage = Envelope[State]
EventMessage = Envelope[EventBatch]
EventAckMessage = Envelope[EventAck]
CommandMessage = Envelope[Command]
UnsignedCommandMessage = Envelope[UnsignedCommand]
CommandResultMessage = Envelope[CommandResult]
SyncMessage = Envelope[SyncBody]
