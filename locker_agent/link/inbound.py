"""What the server sends besides commands — ``evt/ack`` and ``sync`` — checked before use.

An attacker who can publish on the broker could otherwise make the cabinet forget door
and custody events the server never stored (a forged ``evt/ack``: the journal deletes
what it names), open a door offline for a made-up code (a forged allow-list ``sync``) or
move the clock that command expiry is judged by (a forged ``time`` sync). The server
signs both like commands (same key, same canonical bytes); :class:`InboundGate` lets a
message through only if, in this order,

1. it decodes as the signed message type  → else ``malformed`` (``unsigned`` if it
   lacks only its signature: a server that does not sign yet)
2. its key id is one of the trusted keys  → ``unknown_key``
3. its Ed25519 signature verifies         → ``bad_signature``
4. it is addressed to this cabinet         → ``wrong_cabinet``

A refused message is dropped, logged (reason and message id, never its content: an
allow-list carries credential hashes) and journaled as a custody ``alarm``
(``ack_rejected`` / ``sync_rejected``), so the server's audit log shows every attempt —
through the :class:`~locker_agent.link.refusals.RefusalRecorder` the command runner
uses too: beyond its limit per window a flood is counted, by reason, into one summary
alarm per kind and window instead of growing the journal without bound. Every one of
these reasons can be caused by anyone on the broker, so every one counts toward it.

Authentic is not the same as new: a recorded sync can be published again. The allow-list
ignores versions not above its own; :meth:`InboundGate.time_sync_is_new` does the same
for time syncs, persisted in the journal, so a replayed old ``server_time`` cannot pull
the clock offset back and make an expired command look valid. A replayed ``evt/ack``
names events the server has already committed: deleting them again changes nothing.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from locker_agent.journal import Journal
from locker_agent.link.refusals import RefusalRecorder
from locker_contract import (
    MAX_PAYLOAD_BYTES,
    BadSignature,
    ContractError,
    EventAckMessage,
    SyncMessage,
    TimeSync,
    UnknownKey,
    decode,
    verify_message,
)
from locker_contract.envelope import EnvelopeT

logger = logging.getLogger(__name__)

_ALARM_KINDS: Final = {"evt_ack": "ack_rejected", "sync": "sync_rejected"}
#: journal meta key: the version of the newest time sync the clock offset learned from
_TIME_SYNC_VERSION: Final = "time_sync_version"
_MESSAGE_ID: Final = re.compile(r"[0-9a-f]{32}")


class Refusal(enum.StrEnum):
    """Why a received ``evt/ack`` or ``sync`` was not acted on."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_CABINET = "wrong_cabinet"


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal
    message_id: str | None


def authenticate(
    payload: bytes,
    message_type: type[EnvelopeT],
    *,
    cabinet_id: str,
    trusted_keys: Mapping[str, Ed25519PublicKey],
) -> EnvelopeT | Refused:
    """The message, if it is a signed ``message_type`` from the server for ``cabinet_id``."""
    try:
        envelope = decode(payload, message_type)
    except ContractError:
        return _undecodable(payload)
    try:
        verify_message(envelope, trusted_keys)
    except UnknownKey:
        return Refused(Refusal.UNKNOWN_KEY, envelope.id)
    except BadSignature:
        return Refused(Refusal.BAD_SIGNATURE, envelope.id)
    if envelope.cabinet_id != cabinet_id:
        return Refused(Refusal.WRONG_CABINET, envelope.id)
    return envelope


def _undecodable(payload: bytes) -> Refused:
    """``unsigned`` when the body has no signature at all; the id only if it looks like one."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Refused(Refusal.MALFORMED, None)
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return Refused(Refusal.MALFORMED, None)
    if not isinstance(document, dict):
        return Refused(Refusal.MALFORMED, None)
    message_id = document.get("id")
    readable_id = message_id if isinstance(message_id, str) else ""
    body = document.get("body")
    unsigned = isinstance(body, dict) and "signature" not in body
    return Refused(
        Refusal.UNSIGNED if unsigned else Refusal.MALFORMED,
        readable_id if _MESSAGE_ID.fullmatch(readable_id) else None,
    )


class InboundGate:
    """Admits authentic ``evt/ack`` and ``sync`` messages; journals every refusal."""

    def __init__(
        self,
        cabinet_id: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        journal: Journal,
        refusals: RefusalRecorder | None = None,
    ) -> None:
        """``refusals``: the runtime's recorder, shared with the command runner."""
        self._cabinet_id = cabinet_id
        self._trusted_keys = trusted_keys
        self._journal = journal
        self._refusals = refusals or RefusalRecorder(journal)

    def ack(self, payload: bytes) -> EventAckMessage | None:
        return self._admit(payload, EventAckMessage, "evt_ack")

    def sync(self, payload: bytes) -> SyncMessage | None:
        return self._admit(payload, SyncMessage, "sync")

    def _admit(
        self, payload: bytes, message_type: type[EnvelopeT], type_name: str
    ) -> EnvelopeT | None:
        if not payload:  # a retained message being cleared: no claim to refuse
            logger.info("ignored an empty %s", type_name)
            return None
        verdict = authenticate(
            payload, message_type, cabinet_id=self._cabinet_id, trusted_keys=self._trusted_keys
        )
        if isinstance(verdict, Refused):
            self._journal_refusal(verdict, type_name)
            return None
        return verdict

    def _journal_refusal(self, refused: Refused, type_name: str) -> None:
        message = refused.message_id or "unidentified"
        detail = f"{refused.reason}: {type_name} {message}"
        kind, reason = _ALARM_KINDS[type_name], refused.reason.value
        with self._journal.transaction() as tx:
            journaled = self._refusals.record(tx, kind, reason, detail)
        # a flood beyond the limit is summed up in the journal; one log line each is noise
        level = logging.WARNING if journaled else logging.DEBUG
        logger.log(level, "%s %s refused: %s", type_name, message, reason)

    def time_sync_is_new(self, sync: TimeSync, allow_list_version: int | None) -> bool:
        """True (and remembered) if ``sync`` is newer than every time sync and allow-list
        applied so far: the server takes every sync's version from one rising counter."""
        held = -1 if allow_list_version is None else allow_list_version
        with self._journal.transaction() as tx:
            newest = max(tx.get(_TIME_SYNC_VERSION, -1), held)
            if sync.version <= newest:
                logger.warning("time sync %d ignored: not newer than %d", sync.version, newest)
                return False
            tx.put(_TIME_SYNC_VERSION, sync.version)
        return True
