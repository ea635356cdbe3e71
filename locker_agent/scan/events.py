"""What the scanning side tells the kiosk: a code was read, or the camera is down or back.

A :class:`CodeRead` always carries the contract's verdict on the text. The pickup flow
tries only ``verdict == PICKUP`` tokens; a ``FOREIGN`` or ``DAMAGED`` read is *ignored*
there — shown as "not a pickup code", never counted as a wrong code (so a parcel label
held up by mistake can never lock a recipient out). Courier flows read the same events
and use the foreign texts (parcel labels, badges) they expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from locker_agent.scan.decoders import Decoded, Symbology
from locker_contract.pickup_qr import QrVerdict, read_pickup_qr

Source = Literal["camera", "scanner"]


@dataclass(frozen=True)
class CodeRead:
    #: may be someone's pickup QR: kept out of the repr, and so out of logs
    text: str = field(repr=False)
    symbology: Symbology
    source: Source
    verdict: QrVerdict
    #: the pickup token when ``verdict`` is PICKUP, else None
    token: str | None = field(repr=False)

    @classmethod
    def of(cls, decoded: Decoded, *, source: Source) -> CodeRead:
        reading = read_pickup_qr(decoded.text)
        return cls(decoded.text, decoded.symbology, source, reading.verdict, reading.token)

    @property
    def ignored_for_pickup(self) -> bool:
        return self.verdict is not QrVerdict.PICKUP


@dataclass(frozen=True)
class CameraDown:
    """The camera could not be opened, or stopped giving frames; the kiosk may alarm.

    ``attempt`` is 0 when a running camera was lost, then 1, 2, ... for each failed reopen.
    """

    reason: str
    attempt: int


@dataclass(frozen=True)
class CameraUp:
    """The camera gives frames again after ``attempts`` failed reopenings."""

    attempts: int


ScanEvent = CodeRead | CameraDown | CameraUp
