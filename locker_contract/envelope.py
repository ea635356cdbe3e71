"""The envelope every message travels in, and its encoding to and from bytes.

``{"v": 1, "type": ..., "id": ..., "sent_at": ..., "cabinet_id": ..., "body": {...}}``.
``decode`` is the one door into the contract from the wire: whatever the bytes are, it
returns a validated envelope of the expected type or raises a :class:`ContractError`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ValidationError, model_validator

from locker_contract.errors import MalformedMessage, UnsupportedVersion
from locker_contract.types import (
    MODEL_CONFIG,
    CabinetId,
    HexId,
    UtcTimestamp,
    new_message_id,
    utc_now,
)

PROTOCOL_VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 256 * 1024

MessageType = Literal["presence", "state", "evt", "evt_ack", "cmd", "cmd_res", "sync", "req", "res"]


class Body(BaseModel):
    """Base of every body; ``MESSAGE_TYPE`` is the envelope ``type`` it travels under."""

    model_config = MODEL_CONFIG
    MESSAGE_TYPE: ClassVar[MessageType]


BodyT = TypeVar("BodyT", bound=Body)
EnvelopeT = TypeVar("EnvelopeT", bound="Envelope[Any]")


class Envelope(BaseModel, Generic[BodyT]):
    """One message: schema version, type, unique id, send time, cabinet, body."""

    model_config = MODEL_CONFIG

    v: Literal[1] = PROTOCOL_VERSION
    type: MessageType
    id: HexId
    sent_at: UtcTimestamp
    cabinet_id: CabinetId
    body: BodyT

    @model_validator(mode="after")
    def _type_names_the_body(self) -> Envelope[BodyT]:
        if self.type != self.body.MESSAGE_TYPE:
            raise ValueError(f"type {self.type!r} does not match a {self.body.MESSAGE_TYPE} body")
        return self


def new_envelope(
    cabinet_id: str,
    body: BodyT,
    *,
    message_id: str | None = None,
    sent_at: datetime | None = None,
) -> Envelope[BodyT]:
    """Wrap ``body`` in a fresh envelope (new id, sent now) addressed to/from ``cabinet_id``."""
    envelope_class = _envelope_class(type(body))
    try:
        return envelope_class(
            type=body.MESSAGE_TYPE,
            id=message_id or new_message_id(),
            sent_at=sent_at or utc_now(),
            cabinet_id=cabinet_id,
            body=body,
        )
    except ValidationError as exc:
        raise MalformedMessage(_summary(exc)) from exc


def _envelope_class(body_class: type[BodyT]) -> type[Envelope[BodyT]]:
    """``Envelope[body_class]`` for a body class known only at run time."""
    return cast("type[Envelope[BodyT]]", Envelope.__class_getitem__(body_class))


def encode(envelope: Envelope[Any]) -> bytes:
    """Compact UTF-8 JSON, as published."""
    return envelope.model_dump_json().encode()


def to_json_object(envelope: Envelope[Any]) -> dict[str, Any]:
    """The envelope as the JSON object it is on the wire (for schemas and signatures)."""
    return envelope.model_dump(mode="json")


def decode(payload: bytes, expected_type: type[EnvelopeT]) -> EnvelopeT:
    """Parse ``payload`` as an ``expected_type`` (e.g. ``Envelope[Presence]``, ``SyncMessage``).

    Raises ``UnsupportedVersion`` for a ``v`` other than 1, ``MalformedMessage`` for
    anything else that is not exactly such a message.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedMessage(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    _check_version(_load_object(payload))
    try:
        return expected_type.model_validate_json(payload)
    except ValidationError as exc:
        raise MalformedMessage(_summary(exc)) from exc


def _load_object(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedMessage(f"payload is not UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedMessage("payload is not a JSON object")
    return document


def _refuse_constant(name: str) -> object:
    """NaN and Infinity are not JSON; a float field would silently turn them into null."""
    raise ValueError(f"{name} is not a JSON number")


def _check_version(document: dict[str, Any]) -> None:
    version = document.get("v")
    if type(version) is not int:
        raise MalformedMessage("envelope has no integer schema version 'v'")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(f"unsupported schema version {version}", version=version)


def _summary(exc: ValidationError) -> str:
    """Field paths and messages only: never the input values (they may hold secrets)."""
    problems = (
        f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )
    return "; ".join(list(problems)[:5])
