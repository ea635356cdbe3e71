"""The lockout rule both sides apply: a cabinet offline locks out exactly when the server would."""

from __future__ import annotations

from datetime import timedelta

import pytest

from locker_contract import LockoutPolicy


@pytest.mark.parametrize(
    ("cabinet_failures", "door_failures", "locked"),
    [
        (0, 0, False),
        (2, 2, False),
        (3, 3, True),  # the door's threshold
        (9, None, False),  # a code typed at the cabinet names no door
        (10, None, True),  # the cabinet's threshold
        (10, 0, True),
    ],
)
def test_a_door_or_a_cabinet_at_its_threshold_is_locked_out(
    cabinet_failures: int, door_failures: int | None, locked: bool
) -> None:
    policy = LockoutPolicy(door_threshold=3, cabinet_threshold=10)
    assert policy.locks(cabinet_failures=cabinet_failures, door_failures=door_failures) is locked


@pytest.mark.parametrize(
    "kwargs",
    [{"door_threshold": 0}, {"cabinet_threshold": 0}, {"window": timedelta(0)}],
)
def test_a_lockout_that_could_never_or_always_lock_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="lockout"):
        LockoutPolicy(**kwargs)  # type: ignore[arg-type]
