"""Exceptions raised by :mod:`locker_contract`.

Everything the contract refuses derives from :class:`ContractError`; JSON, pydantic,
base64 and cryptography errors are translated where they enter (``raise ... from exc``),
so a caller handling one message needs one ``except ContractError``::

    ContractError
    ├── MalformedMessage     not JSON, not an object, wrong shape, unknown field, too large
    ├── UnsupportedVersion   a well-formed envelope whose ``v`` this code does not speak
    ├── InvalidTopic         a topic or cabinet id outside ``lockers/v1/{cabinet_id}/...``
    ├── InvalidKey           a public key (or signing key) that cannot be used
    └── BadSignature         a server message (cmd, evt_ack, sync) whose signature does not verify
        └── UnknownKey       ... because it names a key id we do not trust

``UnknownKey`` is a ``BadSignature`` so that ``verify_message`` only ever raises
``BadSignature`` as promised, while the agent can still tell the two apart.
"""

from __future__ import annotations


class ContractError(Exception):
    """Base class of every error raised by locker_contract."""


class MalformedMessage(ContractError):
    """The payload is not a valid message of the expected type."""


class UnsupportedVersion(ContractError):
    """The envelope's schema version is not one this code understands."""

    def __init__(self, message: str, *, version: object) -> None:
        super().__init__(message)
        self.version = version


class InvalidTopic(ContractError):
    """A topic or cabinet id that is not part of the contract's topic tree."""


class InvalidKey(ContractError):
    """A key that cannot be parsed or does not match what it claims to be."""


class BadSignature(ContractError):
    """A signed server message (or one that should be) does not verify with a trusted key."""


class UnknownKey(BadSignature):
    """A server message signed with a key id that is not among the trusted keys."""
