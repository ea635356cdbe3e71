"""What the kiosk says, in both languages."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from locker_agent.kiosk.machine import LANGUAGES, DoorProgress, DoorStatus, Phase, Refusal
from locker_agent.kiosk.texts import CATALOG, wording
from tests.kiosk.test_machine import HOME, MACHINE, doors, refused

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_both_languages_have_every_text() -> None:
    assert set(CATALOG["en"]) == set(CATALOG["zh-CN"])
    assert set(CATALOG) == set(LANGUAGES)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (refused(Refusal.WRONG_CODE, attempts=3), "3 more wrong codes"),
        (refused(Refusal.WRONG_CODE, attempts=1), "One more wrong code"),
        (refused(Refusal.WRONG_CODE, attempts=0, minutes=15), "try again in 15 min"),
        (refused(Refusal.LOCKED_OUT, attempts=0, minutes=13), "again in 13 min"),
        (refused(Refusal.EXPIRED), "Contact the sender"),
        (refused(Refusal.NOT_READY), "try again in a few minutes"),
        (doors((5, DoorStatus.NOT_OPENED)), "Door 5 did not open"),
        (doors((5, DoorStatus.UNKNOWN)), "could not tell whether door 5 opened"),
    ],
)
def test_each_refusal_and_door_failure_says_what_now_and_whom_to_call(
    state: object, expected: str
) -> None:
    said = wording(MACHINE.screen(replace(state, language="en")))  # type: ignore[type-var]

    assert expected in " ".join(said.lines)
    assert said.help == "Need help? Call 400-1."


def test_the_door_screen_names_every_door_and_asks_for_no_help_when_all_is_well() -> None:
    state = doors((5, DoorStatus.OPEN), (2, DoorStatus.WAITING), language="en")

    said = wording(MACHINE.screen(state))

    assert said.title == "Go to doors 5 and 2"
    assert said.lines[0] == "Door 5 is open: take your parcel and close the door."
    assert said.help is None


@pytest.mark.parametrize("phase", list(Phase))
def test_every_screen_has_a_chinese_title(phase: Phase) -> None:
    state = replace(
        HOME,
        phase=phase,
        refusal=Refusal.WRONG_CODE if phase is Phase.REFUSED else None,
        doors=(DoorProgress(5, DoorStatus.OPEN),),
    )

    assert CHINESE.search(wording(MACHINE.screen(state)).title)


def test_an_offline_cabinet_with_no_camera_says_so_and_that_codes_still_work() -> None:
    state = replace(HOME, language="en", link_up=False, readers_down=frozenset({"camera"}))

    assert wording(MACHINE.screen(state)).notices == (
        "Offline: pickups still work.",
        "The camera is not working: please type your code.",
    )
