"""Exceptions raised by :mod:`firmware_protocol`.

Every error this package raises derives from :class:`ProtocolError`, so callers
never see ``IndexError``, ``struct.error`` or ``ValueError`` from malformed bytes::

    ProtocolError
    ├── UnknownProtocolError no protocol of that name (get_protocol)
    ├── EncodeError          we were asked to build a frame that cannot exist
    │                        (board or lock out of range, bad status byte)
    └── FrameError           bytes from the wire do not form a valid frame
        ├── ChecksumError    the frame is well formed but its check byte is wrong
        └── UnexpectedFrameError  a valid frame of a kind we cannot decode here

"We sent something bad" (EncodeError) is kept apart from "the device sent something
bad" (FrameError).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by firmware_protocol."""


class UnknownProtocolError(ProtocolError):
    """No lock-board protocol is registered under that name."""


class EncodeError(ProtocolError):
    """A frame cannot be built from these values (out of range, wrong type)."""


class FrameError(ProtocolError):
    """Bytes that do not decode to a valid frame."""


class ChecksumError(FrameError):
    """The check byte (XOR or sum) does not match the frame's contents."""


class UnexpectedFrameError(FrameError):
    """A structurally valid frame whose command/function is not supported here."""
