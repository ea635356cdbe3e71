"""Guessing courier codes at a kiosk is slow: after a few wrong codes the cabinet refuses
every sign-in for a while, the right code too, and every refusal is in the audit log."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from locker_contract.desk import Answer, CourierSignIn, RefusalReason, RequestRefused, SignedIn
from locker_server.audit.models import AuditEntry
from locker_server.models import Alarm
from locker_server.services.courier_desk import SIGN_IN_FAILURE_WINDOW, SIGN_IN_FAILURES_ALLOWED
from simulators.courier_desk import ServerCourierDesk

RIGHT = "471100"


@pytest.fixture
def desk() -> Iterator[ServerCourierDesk]:
    with ServerCourierDesk(doors={1: "M"}) as desk:
        desk.add_courier(RIGHT, name="Wang Lei")
        yield desk


def _sign_in(desk: ServerCourierDesk, code: str) -> Answer:
    return desk.ask(CourierSignIn(credential="code", secret=code))


def _refusal(answer: Answer) -> RefusalReason | None:
    return answer.reason if isinstance(answer, RequestRefused) else None


def test_after_the_allowed_wrong_codes_even_the_right_one_is_refused(
    desk: ServerCourierDesk,
) -> None:
    wrong = [_sign_in(desk, f"99990{n}") for n in range(SIGN_IN_FAILURES_ALLOWED)]
    locked = _sign_in(desk, RIGHT)

    assert [_refusal(answer) for answer in wrong] == [RefusalReason.BAD_CREDENTIAL] * len(wrong)
    assert _refusal(locked) == RefusalReason.TOO_MANY_ATTEMPTS
    with Session(desk.engine) as session:
        reasons = session.exec(
            select(AuditEntry.reason)
            .where(col(AuditEntry.action) == "courier_desk.courier_sign_in")
            .order_by(col(AuditEntry.seq))
        ).all()
    assert reasons[-1] == "too_many_attempts"
    assert reasons.count("bad_credential") == SIGN_IN_FAILURES_ALLOWED
    [alarm] = _alarms(desk)
    assert (alarm.kind, alarm.cabinet_id, alarm.repeats) == (
        "courier_code_burst", desk.cabinet_id, 1,  # raised by the 5th, seen again at the lock
    )  # fmt: skip


def test_one_wrong_code_fewer_still_lets_the_right_one_in(desk: ServerCourierDesk) -> None:
    for n in range(SIGN_IN_FAILURES_ALLOWED - 1):
        _sign_in(desk, f"99990{n}")

    assert isinstance(_sign_in(desk, RIGHT), SignedIn)
    assert _alarms(desk) == []


def _alarms(desk: ServerCourierDesk) -> list[Alarm]:
    with Session(desk.engine) as session:
        return list(session.exec(select(Alarm)).all())


def test_once_the_wrong_codes_are_out_of_the_window_the_right_one_signs_in(
    desk: ServerCourierDesk,
) -> None:
    for n in range(SIGN_IN_FAILURES_ALLOWED):
        _sign_in(desk, f"99990{n}")
    assert _refusal(_sign_in(desk, RIGHT)) == RefusalReason.TOO_MANY_ATTEMPTS
    real_clock = desk.deps.clock
    later = SIGN_IN_FAILURE_WINDOW + timedelta(seconds=1)
    desk.deps = dataclasses.replace(desk.deps, clock=lambda: real_clock() + later)

    assert isinstance(_sign_in(desk, RIGHT), SignedIn)
