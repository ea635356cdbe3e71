"""Everything the server sends a cabinet is signed here: ``cmd``, ``sync``, ``evt/ack``, ``res``.

A cabinet acts on no server message that does not verify against the public keys it
holds (``[security] command_public_keys``). Someone who can publish on the broker could
otherwise open a door (``cmd``), slip a made-up pickup code into a cabinet's offline
allow-list or move its clock (``sync``), or make it delete door events the server never
stored (``evt/ack``), or send a courier to the wrong door (``res``). All are signed with
``ServerKeys.command_signing_key`` over the contract's canonical bytes
(``locker_contract.signing``); callers build the ``Unsigned…`` body naming :func:`key_id`
and hand it to :func:`signed_message`.

The services publish through a :class:`Publisher`: the MQTT bridge in a running server
(``locker_server.link.bridge``), a recording fake in tests. They never import the bridge.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from locker_contract import (
    EventAckMessage,
    SyncMessage,
    UnsignedAllowListSync,
    UnsignedConfigSync,
    UnsignedEventAck,
    UnsignedReservationSync,
    UnsignedTimeSync,
    encode,
    key_id_of,
    new_envelope,
    sign_message,
)
from locker_contract.desk import ReplyMessage, UnsignedReply
from locker_contract.envelope import Body, EnvelopeT
from locker_server.keys import ServerKeys

UnsignedSync = (
    UnsignedAllowListSync | UnsignedConfigSync | UnsignedTimeSync | UnsignedReservationSync
)


class Publisher(Protocol):
    """Publish one message to the cabinets' broker; safe to call from any thread."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any: ...


def key_id(keys: ServerKeys) -> str:
    """The ``key_id`` an unsigned body names: the id of the command key's public half."""
    return key_id_of(keys.command_signing_key.public_key())


def signed_message(
    keys: ServerKeys,
    cabinet_code: str,
    body: Body,
    signed_type: type[EnvelopeT],
    *,
    sent_at: datetime | None = None,
) -> EnvelopeT:
    """``body`` in a fresh envelope to ``cabinet_code``, signed: a ``signed_type``."""
    unsigned = new_envelope(cabinet_code, body, sent_at=sent_at)
    return sign_message(unsigned, keys.command_signing_key, signed_type)


def event_ack(
    keys: ServerKeys,
    cabinet_code: str,
    event_ids: Iterable[str],
    *,
    result_ids: Iterable[str] = (),
) -> bytes:
    """The ``evt/ack`` payload naming ``event_ids`` and ``result_ids`` (the envelope ids
    of final ``cmd/res`` messages): all committed, the cabinet deletes them."""
    body = UnsignedEventAck(
        event_ids=list(event_ids), result_ids=list(result_ids), key_id=key_id(keys)
    )
    return encode(signed_message(keys, cabinet_code, body, EventAckMessage))


def sync(keys: ServerKeys, cabinet_code: str, body: UnsignedSync) -> bytes:
    """The ``sync`` payload carrying ``body`` (an allow-list, config or time sync)."""
    return encode(signed_message(keys, cabinet_code, body, SyncMessage))


def reply(keys: ServerKeys, cabinet_code: str, body: UnsignedReply) -> bytes:
    """The ``res`` payload answering one courier-desk request of ``cabinet_code``."""
    return encode(signed_message(keys, cabinet_code, body, ReplyMessage))
