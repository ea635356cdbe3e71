"""Byte-level protocols of real lock-control boards. Sans-IO: no serial, no asyncio.

Look a protocol up by its configured name with :func:`get_protocol`; everything it
returns follows the contract in :mod:`firmware_protocol.base`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from firmware_protocol import kerong, xor8a80
from firmware_protocol.base import NEED_DATA, BoardProtocol, Garbage, NeedData
from firmware_protocol.errors import (
    ChecksumError,
    EncodeError,
    FrameError,
    ProtocolError,
    UnexpectedFrameError,
    UnknownProtocolError,
)

#: Every supported protocol by its configuration name.
PROTOCOLS: Final[Mapping[str, BoardProtocol]] = MappingProxyType(
    {protocol.name: protocol for protocol in (xor8a80.PROTOCOL, kerong.PROTOCOL)}
)


def get_protocol(name: str) -> BoardProtocol:
    """The protocol called ``name`` (e.g. "8a80", "kerong")."""
    try:
        return PROTOCOLS[name]
    except KeyError as exc:
        known = ", ".join(sorted(PROTOCOLS))
        raise UnknownProtocolError(f"unknown board protocol {name!r}; known: {known}") from exc


__all__ = [
    "NEED_DATA",
    "PROTOCOLS",
    "BoardProtocol",
    "ChecksumError",
    "EncodeError",
    "FrameError",
    "Garbage",
    "NeedData",
    "ProtocolError",
    "UnexpectedFrameError",
    "UnknownProtocolError",
    "get_protocol",
]
