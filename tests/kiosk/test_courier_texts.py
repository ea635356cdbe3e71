"""What the kiosk says to a courier, in both languages."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from locker_agent.kiosk.courier import Problem, Stage
from locker_agent.kiosk.machine import LANGUAGES, KioskState
from locker_agent.kiosk.texts import CATALOG, wording
from locker_contract.desk import RefusalReason
from tests.kiosk.test_courier_machine import ALL_ROWS, MACHINE, RESERVED, at, problem

CHINESE = re.compile(r"[\u4e00-\u9fff]")
SCREENS = {f"{name} (after)": row[2] for name, row in ALL_ROWS.items()} | {
    f"{name} (before)": row[0] for name, row in ALL_ROWS.items()
}


@pytest.mark.parametrize("state", SCREENS.values(), ids=SCREENS)
def test_every_courier_screen_of_the_tables_is_worded_in_both_languages(
    state: KioskState,
) -> None:
    english = wording(MACHINE.screen(replace(state, language="en")))
    chinese = wording(MACHINE.screen(replace(state, language="zh-CN")))

    assert english.title
    assert not CHINESE.search(english.title + " ".join(english.lines))
    assert CHINESE.search(chinese.title)


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_refusal_of_the_desk_has_its_own_sentence_and_whom_to_call(
    reason: RefusalReason,
) -> None:
    for language in LANGUAGES:
        state = problem(Problem.REFUSED, refusal=reason, language=language)
        said = wording(MACHINE.screen(state))

        assert said.lines == (CATALOG[language][f"courier.refusal.{reason}"],)
        assert said.help


def test_a_recipient_without_consent_is_told_to_deliver_another_way() -> None:
    state = problem(Problem.REFUSED, refusal=RefusalReason.NO_CONSENT, language="en")

    assert "has not agreed to locker delivery" in wording(MACHINE.screen(state)).lines[0]


def test_registering_while_the_server_is_out_of_reach_says_it_needs_the_server() -> None:
    state = problem(Problem.UNREACHABLE, failed="register_parcel", language="en")

    said = wording(MACHINE.screen(state))

    assert said.title == "The server cannot be reached"
    assert said.lines == (
        "Registering an unannounced parcel needs the server. Please try again when it can be"
        " reached.",
    )


def test_the_door_screen_names_the_door_and_when_the_parcel_counts() -> None:
    state = at(Stage.CONFIRM, tracking="SF1", reservation=RESERVED, offline=True, language="en")

    said = wording(MACHINE.screen(state))

    assert said.title == "Door 5 is ready for parcel SF1"
    assert said.door == 5
    assert "the cabinet's own list of reservations" in said.lines[1]
