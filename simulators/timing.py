"""How fast the simulated hardware reacts. Realistic by default; tests shrink it."""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Start bit + 8 data bits + stop bit (8N1).
BITS_PER_BYTE = 10


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays of the simulated boards and doors, all in seconds.

    ``unlock_reply_delay`` is how long an 8A/80 board takes to answer an unlock (it
    replies after the pulse); Kerong boards answer every request after
    ``query_reply_delay``. ``baud`` ``None`` means the protocol's default rate; with
    ``pacing`` on, replies leave one byte every ``10 / baud`` seconds like a real UART.
    """

    unlock_reply_delay: float = 0.5
    query_reply_delay: float = 0.01
    spring_delay: float = 0.3
    pulse_duration: float = 0.5
    unlock_all_step: float = 0.3
    quiet_gap: float = 0.005
    baud: int | None = None
    pacing: bool = True

    def byte_time(self, default_baud: int) -> float:
        """Seconds one byte takes on the wire, or 0 when pacing is off."""
        if not self.pacing:
            return 0.0
        return BITS_PER_BYTE / (self.baud or default_baud)

    @classmethod
    def fast(cls, *, pacing: bool = True) -> Timing:
        """Short delays for tests: every reaction within a few tens of milliseconds."""
        return cls(
            unlock_reply_delay=0.05,
            query_reply_delay=0.002,
            spring_delay=0.02,
            pulse_duration=0.04,
            unlock_all_step=0.01,
            pacing=pacing,
        )

    def with_changes(self, **changes: float | int | bool | None) -> Timing:
        """A copy with some fields changed (``dataclasses.replace`` with a type)."""
        return replace(self, **changes)  # type: ignore[arg-type]
