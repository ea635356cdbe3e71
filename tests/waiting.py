"""Waiting on a condition instead of sleeping a fixed time.

A test that sleeps long enough on an idle machine fails on a loaded one, and sleeps far
too long on both. ``wait_until`` polls a predicate and returns as soon as it holds.

A negative ("nothing opened") cannot be waited for: wait for a positive marker that
proves the input was processed (the refusal journaled, the alarm published, a later
sentinel handled), then assert the negative.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: how often a predicate is asked again: short next to every timeout in the suite, long
#: enough not to steal the two cores from the code under test
POLL_INTERVAL_S = 0.02


def wait_until(predicate: Callable[[], T], timeout: float, every: float = POLL_INTERVAL_S) -> T:
    """Ask ``predicate`` until it returns something truthy or ``timeout`` seconds pass.

    Returns its last answer: truthy on success (often the thing waited for), falsy on
    timeout, so ``assert wait_until(...)`` reads as the condition it waits on.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(every)
