"""Exceptions raised by :mod:`locker_agent`.

Every error the agent raises derives from :class:`AgentError`. Library errors
(``serial.SerialException``, ``OSError``, ``sqlite3.Error``) are translated where they
enter our code::

    AgentError
    ├── ConfigError            the cabinet layout or a setting is invalid
    │   └── UnknownDoorError   a door number that the layout does not know
    ├── JournalError           the journal database cannot be opened, read or written
    ├── TransportError         the serial port cannot be opened, or I/O on it failed
    │   ├── LinkClosedError    the link was stopped while a request was waiting
    │   └── PortUnavailable    the port is gone (being reopened): the request was never sent
    ├── BoardError             a board gave no usable answer to a request
    │   ├── BoardTimeout       no valid answer before the request's timeout
    │   └── BoardReplyError    the board answered, but with something invalid
    │                          (bad check byte, truncated frame, missing locks)
    ├── RateLimited            a door was asked to open too often; nothing was sent
    ├── KioskError             the kiosk screen cannot be served (its [kiosk] port is taken)
    │   └── CourierDeskUnreachable  the courier desk's server did not answer a request
    └── ScanError              the code-reading side of the kiosk (locker_agent.scan)
        ├── ImageUnreadable    an image file that cannot be read or decoded as an image
        ├── CameraError        the camera cannot be used
        │   ├── CameraUnavailable  the device cannot be opened (absent, busy, bad URL)
        │   └── CameraLost         an open camera stopped giving frames (unplugged)
        └── ScannerError       the serial barcode scanner cannot be opened or read

"We sent something bad" is a ConfigError (or firmware_protocol's EncodeError, caught
at configuration time); "the board sent something bad" is a BoardReplyError.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class of every error raised by locker_agent."""


class ConfigError(AgentError):
    """The cabinet layout or a setting is invalid."""


class UnknownDoorError(ConfigError):
    """A door number that is not in the cabinet layout."""


class JournalError(AgentError):
    """The journal database cannot be opened, read or written."""


class TransportError(AgentError):
    """The serial port cannot be opened, or reading/writing it failed."""


class LinkClosedError(TransportError):
    """The serial link was stopped while a request was queued or in flight."""


class PortUnavailable(TransportError):
    """The serial port is gone (unplugged, I/O errors) and being reopened: the request was
    refused before anything was written, and is not kept to be sent later."""


class BoardError(AgentError):
    """A board gave no usable answer to a request."""

    def __init__(self, message: str, *, board: int, kind: str) -> None:
        super().__init__(message)
        self.board = board
        self.kind = kind


class BoardTimeout(BoardError):
    """No valid answer arrived before the request's timeout."""


class BoardReplyError(BoardError):
    """The board answered, but the answer was invalid (check byte, shape, content)."""


class RateLimited(AgentError):
    """A door was opened too often within the rolling window; no frame was sent."""

    def __init__(self, message: str, *, door: int, retry_after: float) -> None:
        super().__init__(message)
        self.door = door
        self.retry_after = retry_after


class KioskError(AgentError):
    """The kiosk page cannot be served: its address is taken or not this machine's."""


class CourierDeskUnreachable(KioskError):
    """The courier desk's request got no answer from the server (link down, timed out).

    Whether the server acted on it is not known; the request's ``expires_at`` bounds it.
    """


class ScanError(AgentError):
    """The camera, the barcode scanner or an image to decode could not be used."""


class ImageUnreadable(ScanError):
    """An image file that does not exist or is not an image OpenCV can decode."""


class CameraError(ScanError):
    """The camera cannot be used."""


class CameraUnavailable(CameraError):
    """The camera device cannot be opened (absent, busy, or a stream that does not answer)."""


class CameraLost(CameraError):
    """A camera that was open stopped delivering frames."""


class ScannerError(ScanError):
    """The serial barcode scanner's port cannot be opened or read."""
