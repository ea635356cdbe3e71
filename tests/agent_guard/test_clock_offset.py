"""The clock offset the agent learns from server timestamps."""

from __future__ import annotations

from datetime import timedelta

from locker_agent.link.guard import ClockOffset
from tests.contract import messages

T0 = messages.T0


def test_without_samples_the_local_clock_is_trusted() -> None:
    offset = ClockOffset()
    assert offset.offset == timedelta(0)
    assert offset.server_now(T0) == T0


def test_the_offset_is_the_median_so_a_late_delivery_does_not_drag_it() -> None:
    offset = ClockOffset()
    for seconds in (30, 31, 29, 30):  # server 30 s ahead of us
        offset.observe(T0 + timedelta(seconds=seconds), T0)
    offset.observe(T0 - timedelta(minutes=10), T0)  # a message delayed 10 minutes
    assert offset.offset == timedelta(seconds=30)
    assert offset.server_now(T0) == T0 + timedelta(seconds=30)


def test_old_samples_age_out_when_the_clock_is_corrected() -> None:
    offset = ClockOffset(max_samples=3)
    for _ in range(3):
        offset.observe(T0 + timedelta(hours=1), T0)
    for _ in range(2):
        offset.observe(T0, T0)  # NTP fixed the agent's clock
    assert offset.offset == timedelta(0)
