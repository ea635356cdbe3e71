"""The courier desk's requests (``req``, cabinet → server) and the server's signed replies
(``res``, server → cabinet).

What a courier session at the kiosk needs from the server travels as one request and one
reply, matched by ``request_id``: signing in, finding (or reserving) the door for a
parcel, registering an unannounced parcel, a larger door, a broken door, and collecting
expired parcels for return. A request names an ``expires_at``: the server acts on no
request past it (the kiosk has stopped waiting), and the reply repeats it, so the cabinet
drops a reply that arrives too late.

After signing in, a courier's requests carry the :class:`CourierSession` the server
handed out: a keyed hash the server can check without storing anything, binding the
courier to this cabinet until its expiry. A cabinet therefore acts only for couriers who
signed in at it, and never for another cabinet.

Replies are signed like every server message (``UnsignedReply`` → ``Reply``, see
:mod:`locker_contract.signing`): whoever can publish on the broker cannot hand a kiosk a
made-up door or courier.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, StringConstraints

from locker_contract.bodies import Base64Text, SizeCode
from locker_contract.envelope import Body, Envelope
from locker_contract.types import (
    MODEL_CONFIG,
    DoorNumber,
    HexId,
    PositiveInt,
    Sha256Hex,
    ShortText,
    UtcTimestamp,
)

#: A tracking number as scanned from a Code 128 or QR label, or typed.
TrackingNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
#: A courier code typed at the keypad or read from the courier's badge QR.
CourierSecret = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MAX_EXPIRED_PARCELS = 200


class CourierSession(BaseModel):
    """Proof that ``courier_id`` signed in at this cabinet, valid until ``expires_at``."""

    model_config = MODEL_CONFIG
    courier_id: PositiveInt
    expires_at: UtcTimestamp
    token: Sha256Hex


# --- operations ------------------------------------------------------------------------


class CourierSignIn(BaseModel):
    """Who is this courier? ``credential`` says where the secret came from (audited)."""

    model_config = MODEL_CONFIG
    op: Literal["courier_sign_in"] = "courier_sign_in"
    credential: Literal["code", "badge"]
    secret: CourierSecret = Field(repr=False)


class DepositLookup(BaseModel):
    """The door for a scanned parcel: its reservation here, or a door of ``size`` now."""

    model_config = MODEL_CONFIG
    op: Literal["deposit_lookup"] = "deposit_lookup"
    session: CourierSession
    tracking_number: TrackingNumber
    size: SizeCode | None = None


class RecipientKey(BaseModel):
    """How the courier names the recipient of an unannounced parcel, as on its label."""

    model_config = MODEL_CONFIG
    kind: Literal["email", "phone"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=254)]


class RegisterParcel(BaseModel):
    """Register an unannounced parcel for a directory recipient and reserve its door."""

    model_config = MODEL_CONFIG
    op: Literal["register_parcel"] = "register_parcel"
    session: CourierSession
    tracking_number: TrackingNumber
    recipient: RecipientKey
    size: SizeCode


class LargerDoor(BaseModel):
    """The parcel does not fit its door: release it and reserve one of ``size``."""

    model_config = MODEL_CONFIG
    op: Literal["larger_door"] = "larger_door"
    session: CourierSession
    parcel_id: PositiveInt
    size: SizeCode


class DoorBroken(BaseModel):
    """Take ``door`` out of service: it would not open, or cannot hold a parcel."""

    model_config = MODEL_CONFIG
    op: Literal["door_broken"] = "door_broken"
    session: CourierSession
    door: DoorNumber
    reason: ShortText


class ExpiredParcels(BaseModel):
    """Expired parcels at this cabinet that the courier's carrier takes back."""

    model_config = MODEL_CONFIG
    op: Literal["expired_parcels"] = "expired_parcels"
    session: CourierSession


class CollectedForReturn(BaseModel):
    """The courier took the expired parcel out, and its door closed again."""

    model_config = MODEL_CONFIG
    op: Literal["collected_for_return"] = "collected_for_return"
    session: CourierSession
    parcel_id: PositiveInt


Operation = Annotated[
    CourierSignIn
    | DepositLookup
    | RegisterParcel
    | LargerDoor
    | DoorBroken
    | ExpiredParcels
    | CollectedForReturn,
    Field(discriminator="op"),
]


class Request(Body):
    """``req``: one courier-desk operation; the server answers once on ``res``."""

    MESSAGE_TYPE: ClassVar = "req"
    request_id: HexId
    expires_at: UtcTimestamp
    operation: Operation


# --- answers ---------------------------------------------------------------------------


class SignedIn(BaseModel):
    model_config = MODEL_CONFIG
    result: Literal["signed_in"] = "signed_in"
    courier_id: PositiveInt
    carrier_id: PositiveInt
    carrier_name: ShortText
    display_name: ShortText
    session: CourierSession


class DoorReserved(BaseModel):
    """Open ``door`` for parcel ``parcel_id`` (of size ``size``), held until the time."""

    model_config = MODEL_CONFIG
    result: Literal["door_reserved"] = "door_reserved"
    parcel_id: PositiveInt
    door: DoorNumber
    size: SizeCode
    reserved_until: UtcTimestamp


class ExpiredParcel(BaseModel):
    model_config = MODEL_CONFIG
    parcel_id: PositiveInt
    door: DoorNumber
    tracking_number: TrackingNumber


class ExpiredList(BaseModel):
    model_config = MODEL_CONFIG
    result: Literal["expired_list"] = "expired_list"
    parcels: Annotated[list[ExpiredParcel], Field(max_length=MAX_EXPIRED_PARCELS)]


class Done(BaseModel):
    """The operation was carried out (a broken door recorded, a return collected)."""

    model_config = MODEL_CONFIG
    result: Literal["done"] = "done"


class RefusalReason(enum.StrEnum):
    """Why the server did not do what the cabinet asked (the kiosk words it)."""

    BAD_CREDENTIAL = "bad_credential"
    SESSION_INVALID = "session_invalid"
    REQUEST_EXPIRED = "request_expired"
    NOT_ANNOUNCED = "not_announced"
    ALREADY_REGISTERED = "already_registered"
    WRONG_CABINET = "wrong_cabinet"
    WRONG_STATE = "wrong_state"
    RECIPIENT_UNKNOWN = "recipient_unknown"
    NO_CONSENT = "no_consent"
    NO_FREE_DOOR = "no_free_door"
    UNKNOWN_SIZE = "unknown_size"
    UNKNOWN_DOOR = "unknown_door"
    UNKNOWN_PARCEL = "unknown_parcel"
    TOO_MANY_ATTEMPTS = "too_many_attempts"


class RequestRefused(BaseModel):
    """Nothing was done, because of ``reason``; ``message`` is for the screen."""

    model_config = MODEL_CONFIG
    result: Literal["refused"] = "refused"
    reason: RefusalReason
    message: ShortText


Answer = Annotated[
    SignedIn | DoorReserved | ExpiredList | Done | RequestRefused,
    Field(discriminator="result"),
]


class UnsignedReply(Body):
    """A reply before signing; ``Reply`` adds the signature (see ``signing``)."""

    MESSAGE_TYPE: ClassVar = "res"
    request_id: HexId
    expires_at: UtcTimestamp
    answer: Answer
    key_id: Sha256Hex


class Reply(UnsignedReply):
    """``res``: the server's answer to the request ``request_id``; signed."""

    signature: Base64Text


RequestMessage = Envelope[Request]
UnsignedReplyMessage = Envelope[UnsignedReply]
ReplyMessage = Envelope[Reply]
