"""The fault menu (what real lines and boards do wrong; docs/hardware.md), switchable at runtime.

Fault holders are deliberately mutable: a test flips ``board.faults.silent = True``
in the middle of a conversation and the very next reply obeys. Reads happen on the
simulator's threads; single attribute assignments are atomic in CPython, which is
all the consistency these flags need.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from simulators.serving import Burst


@dataclass(slots=True)
class BusFaults:
    """Faults of the USB-RS485 adapter, seen by every board."""

    #: Half-duplex adapter echo: every request byte comes straight back to the host.
    echo: bool = False


@dataclass(slots=True)
class BoardFaults:
    """Faults of one lock-control board.

    ``silent``: the board hears and obeys (doors still open) but its transmitter is
    dead, so the host never gets an answer. ``offline``: unpowered or unplugged; it
    neither answers nor moves a door.
    """

    reply_delay: float = 0.0
    fragment: int = 1
    fragment_gap: float = 0.02
    drop_first_byte: bool = False
    corrupt_checksum: bool = False
    silent: bool = False
    late_reply: float | None = None
    unsolicited_every: float | None = None
    inverted_polarity: bool = False
    offline: bool = False

    @property
    def answers(self) -> bool:
        """True when replies of this board can reach the wire."""
        return not (self.silent or self.offline)


@dataclass(slots=True)
class DoorFaults:
    """Faults of one door and its latch."""

    #: The unlock is acknowledged but the door stays shut and the latch re-engages.
    jammed: bool = False
    #: Seconds between the unlock pulse and the door springing open (None: Timing).
    slow_open: float | None = None


def on_the_wire(frame: bytes, faults: BoardFaults) -> Burst:
    """How a board with these faults actually transmits ``frame``."""
    data = bytearray(frame)
    if faults.corrupt_checksum and data:
        data[-1] ^= 0xFF  # every bit of the check byte wrong: no check can pass
    if faults.drop_first_byte:
        del data[:1]
    return Burst(_split(bytes(data), faults.fragment), faults.fragment_gap)


def _split(data: bytes, pieces: int) -> tuple[bytes, ...]:
    """``data`` cut into ``pieces`` nearly equal, non-empty chunks."""
    count = max(1, min(pieces, len(data)))
    bounds = [round(index * len(data) / count) for index in range(count + 1)]
    return tuple(data[start:end] for start, end in itertools.pairwise(bounds))
