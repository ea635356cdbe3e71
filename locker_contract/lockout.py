"""The pickup lockout rule, applied the same way by the server and by a cabinet offline.

Wrong codes are counted in a sliding window, per door and per cabinet. A cabinet that
decides a pickup on its own (from its allow-list) must lock out exactly when the server
would, or an attacker would simply wait for the link to drop. Each side counts its own
failures (the server in its database, the agent in its journal); this module holds only
the thresholds and the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Failures counted in a sliding window; a door or a cabinet at its threshold is locked."""

    door_threshold: int = 5
    cabinet_threshold: int = 5
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.door_threshold < 1 or self.cabinet_threshold < 1:
            raise ValueError("lockout thresholds must be at least 1")
        if self.window <= timedelta(0):
            raise ValueError("the lockout window must be positive")

    def locks(self, *, cabinet_failures: int, door_failures: int | None) -> bool:
        """Whether these failure counts (within the window) lock the attempt out.

        ``door_failures`` is None when the attempt names no door (a code typed at the
        cabinet): then only the cabinet's count applies.
        """
        if cabinet_failures >= self.cabinet_threshold:
            return True
        return door_failures is not None and door_failures >= self.door_threshold
