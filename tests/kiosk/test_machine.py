"""The kiosk's pickup flow, row by row: (state, input) → (state, actions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from locker_agent.doors import OpenOutcome
from locker_agent.kiosk.machine import (
    CheckCredential,
    ChooseLanguage,
    Decided,
    DoorClosed,
    DoorNotOpened,
    DoorOpened,
    DoorProgress,
    DoorStatus,
    Hint,
    JournalAlarm,
    KeyPress,
    KioskAction,
    KioskInput,
    KioskMachine,
    KioskRules,
    KioskState,
    LinkChanged,
    OpenDoor,
    Phase,
    ReaderChanged,
    Refusal,
    Scanned,
    Tick,
)
from locker_agent.pickup import Granted, LockoutStatus, Refused, ScannedToken, TypedCode
from locker_contract.pickup_qr import encode_pickup_qr

RULES = KioskRules(idle_timeout=30, thanks_timeout=5, doors_timeout=90, help_contact="400-1")
MACHINE = KioskMachine(RULES)
HOME = MACHINE.initial(100.0)
CODE = "48151623"
TYPED = TypedCode(CODE)
TOKEN = "Zm9vYmFyLXRva2VuLW9mLXBhcmNlbC00MQ"
QR = encode_pickup_qr(TOKEN)
SCANNED = ScannedToken(TOKEN)
DAMAGED = QR[:-4] + ("0000" if not QR.endswith("0000") else "1111")
LABEL = "JJD000123456789"
NO_LOCKOUT = LockoutStatus(4, timedelta(0))


def typing(digits: str, **changes: object) -> KioskState:
    return replace(HOME, phase=Phase.TYPING, digits=digits, **changes)  # type: ignore[arg-type]


def checking(credential: TypedCode | ScannedToken = TYPED) -> KioskState:
    return replace(HOME, phase=Phase.CHECKING, credential=credential)


def doors(*progress: tuple[int, DoorStatus], **changes: object) -> KioskState:
    lines = tuple(DoorProgress(door, status) for door, status in progress)
    state = replace(HOME, phase=Phase.DOORS, credential=TYPED, doors=lines)
    return replace(state, **changes)  # type: ignore[arg-type]


def refused(refusal: Refusal, attempts: int | None = 4, minutes: int | None = None) -> KioskState:
    return replace(
        HOME,
        phase=Phase.REFUSED,
        credential=TYPED,
        refusal=refusal,
        attempts_left=attempts,
        locked_minutes=minutes,
    )


def key(name: str) -> KeyPress:
    return KeyPress(name)


OPENING, WAITING, OPEN = DoorStatus.OPENING, DoorStatus.WAITING, DoorStatus.OPEN
CLOSED = DoorStatus.CLOSED
THANKS = replace(doors((5, CLOSED)), phase=Phase.THANKS)  # every door of the pickup closed again

Row = tuple[KioskState, KioskInput, KioskState, tuple[KioskAction, ...]]

TYPING_A_CODE: dict[str, Row] = {
    "a digit at home starts the code": (HOME, key("4"), typing("4"), ()),
    "the 8th digit submits the code": (
        typing(CODE[:7]),
        key(CODE[7]),
        checking(),
        (CheckCredential(TYPED),),
    ),
    "backspace takes the last digit back": (typing("481"), key("backspace"), typing("48"), ()),
    "clear empties the field": (typing("481"), key("clear"), typing(""), ()),
    "enter on a short code explains, counts nothing": (
        typing("481"),
        key("enter"),
        typing("481", hint=Hint.CODE_TOO_SHORT),
        (),
    ),
    "cancel goes home": (typing("481"), key("cancel"), HOME, ()),
    "enter at home does nothing": (HOME, key("enter"), HOME, ()),
    "keys wait while the code is checked": (checking(), key("7"), checking(), ()),
    "keys wait while a door opens": (
        doors((5, OPENING)),
        key("7"),
        doors((5, OPENING)),
        (),
    ),
    "a digit on a refusal starts again": (
        refused(Refusal.WRONG_CODE),
        key("7"),
        typing("7", credential=TYPED),
        (),
    ),
    "enter on a refusal goes home": (refused(Refusal.WRONG_CODE), key("enter"), HOME, ()),
    "a digit while a door stands open starts the next pickup": (
        doors((5, OPEN)),
        key("1"),
        typing("1", credential=TYPED),
        (),
    ),
}

SCANNING: dict[str, Row] = {
    "our QR acts like a code": (
        HOME,
        Scanned(QR),
        checking(SCANNED),
        (CheckCredential(SCANNED),),
    ),
    "our QR while typing replaces the digits": (
        typing("48"),
        Scanned(QR),
        checking(SCANNED),
        (CheckCredential(SCANNED),),
    ),
    "a parcel label is ignored silently": (HOME, Scanned(LABEL), HOME, ()),
    "a label while typing keeps the digits": (typing("48"), Scanned(LABEL), typing("48"), ()),
    "a damaged QR of ours is ignored silently": (HOME, Scanned(DAMAGED), HOME, ()),
    "the same QR again while it is checked acts once": (
        checking(SCANNED),
        Scanned(QR),
        checking(SCANNED),
        (),
    ),
    "the same QR again after its door opened acts once": (
        doors((5, OPEN), credential=SCANNED),
        Scanned(QR),
        doors((5, OPEN), credential=SCANNED),
        (),
    ),
    "the same QR again after it was refused acts once": (
        replace(refused(Refusal.WRONG_CODE), credential=SCANNED),
        Scanned(QR),
        replace(refused(Refusal.WRONG_CODE), credential=SCANNED),
        (),
    ),
}

DOORS: dict[str, Row] = {
    "granted: go to the door while it opens": (
        checking(),
        Decided(Granted(5, (11,))),
        doors((5, OPENING)),
        (OpenDoor(Granted(5, (11,))),),
    ),
    "several doors: the first opens, the others wait their turn": (
        checking(),
        Decided(Granted(5, (11,), more_doors=(2, 7))),
        doors((5, OPENING), (2, WAITING), (7, WAITING)),
        (OpenDoor(Granted(5, (11,))),),
    ),
    "the first door open: the next door is claimed": (
        doors((5, OPENING), (2, WAITING)),
        DoorOpened(5),
        doors((5, OPEN), (2, WAITING), claiming=2),
        (CheckCredential(TYPED, door=2),),
    ),
    "the next door granted: it opens": (
        doors((5, OPEN), (2, WAITING), claiming=2),
        Decided(Granted(2, (12,))),
        doors((5, OPEN), (2, OPENING)),
        (OpenDoor(Granted(2, (12,))),),
    ),
    "the next door no longer granted: nothing opens": (
        doors((5, OPEN), (2, WAITING), claiming=2),
        Decided(Refused("no_match", 2), NO_LOCKOUT),
        doors((5, OPEN), (2, DoorStatus.WITHDRAWN)),
        (),
    ),
    "a door that did not open: the next door still comes": (
        doors((5, OPENING), (2, WAITING)),
        DoorNotOpened(5, OpenOutcome.JAMMED),
        doors((5, DoorStatus.NOT_OPENED), (2, WAITING), claiming=2),
        (CheckCredential(TYPED, door=2),),
    ),
    "a door seen jammed is reported as not opened": (
        doors((5, OPENING)),
        DoorNotOpened(5, OpenOutcome.JAMMED),
        doors((5, DoorStatus.NOT_OPENED)),
        (),
    ),
    "an unanswered unlock is reported as unknown, never retried": (
        doors((5, OPENING)),
        DoorNotOpened(5, OpenOutcome.OUTCOME_UNKNOWN),
        doors((5, DoorStatus.UNKNOWN)),
        (),
    ),
    "a rate-limited door is reported as not opened": (
        doors((5, OPENING)),
        DoorNotOpened(5, OpenOutcome.RATE_LIMITED),
        doors((5, DoorStatus.NOT_OPENED)),
        (),
    ),
    "every door closed again: thank you": (doors((5, OPEN)), DoorClosed(5), THANKS, ()),
    "one of two doors closed: wait for the other": (
        doors((5, OPEN), (2, OPEN)),
        DoorClosed(5),
        doors((5, CLOSED), (2, OPEN)),
        (),
    ),
    "a close seen before the open result counts as closed": (
        doors((5, OPENING)),
        DoorClosed(5),
        replace(doors((5, CLOSED)), phase=Phase.THANKS),
        (),
    ),
    "the open result after an early close claims the next door": (
        doors((5, CLOSED), (2, WAITING)),
        DoorOpened(5),
        doors((5, CLOSED), (2, WAITING), claiming=2),
        (CheckCredential(TYPED, door=2),),
    ),
    "a second open result asks for nothing": (
        doors((5, OPEN), (2, WAITING), claiming=2),
        DoorOpened(5),
        doors((5, OPEN), (2, WAITING), claiming=2),
        (),
    ),
    "another door closing is not ours": (doors((5, OPEN)), DoorClosed(7), doors((5, OPEN)), ()),
    "a door that never opened cannot close": (
        doors((5, DoorStatus.NOT_OPENED)),
        DoorClosed(5),
        doors((5, DoorStatus.NOT_OPENED)),
        (),
    ),
    "a stale grant at home opens nothing": (HOME, Decided(Granted(5, (11,))), HOME, ()),
    "a stale grant on a refusal opens nothing": (
        refused(Refusal.WRONG_CODE),
        Decided(Granted(5, (11,))),
        refused(Refusal.WRONG_CODE),
        (),
    ),
}

REFUSALS: dict[str, Row] = {
    "wrong code: attempts left": (
        checking(),
        Decided(Refused("no_match"), LockoutStatus(3, timedelta(0))),
        refused(Refusal.WRONG_CODE, attempts=3),
        (),
    ),
    "wrong code that locks the cabinet: for how long": (
        checking(),
        Decided(Refused("no_match"), LockoutStatus(0, timedelta(minutes=15))),
        refused(Refusal.WRONG_CODE, attempts=0, minutes=15),
        (),
    ),
    "expired": (
        checking(),
        Decided(Refused("expired"), NO_LOCKOUT),
        refused(Refusal.EXPIRED),
        (),
    ),
    "locked out: minutes rounded up": (
        checking(),
        Decided(Refused("locked_out"), LockoutStatus(0, timedelta(minutes=12, seconds=30))),
        refused(Refusal.LOCKED_OUT, attempts=0, minutes=13),
        (),
    ),
    "no allow-list yet": (
        checking(),
        Decided(Refused("no_list"), NO_LOCKOUT),
        refused(Refusal.NOT_READY),
        (),
    ),
}

TIME: dict[str, Row] = {
    "typing just before the idle timeout stays": (
        typing("48"),
        Tick(129.0),
        typing("48", now=129.0),
        (),
    ),
    "typing left idle goes home": (
        typing("48"),
        Tick(130.0),
        replace(HOME, now=130.0, last_activity=130.0),
        (),
    ),
    "a refusal left idle goes home": (
        refused(Refusal.WRONG_CODE),
        Tick(130.0),
        replace(HOME, now=130.0, last_activity=130.0),
        (),
    ),
    "thank you, then home": (
        THANKS,
        Tick(105.0),
        replace(HOME, now=105.0, last_activity=105.0),
        (),
    ),
    "a check is waited for however long": (
        checking(),
        Tick(1000.0),
        replace(checking(), now=1000.0),
        (),
    ),
    "a door still opening is waited for": (
        doors((5, OPENING)),
        Tick(1000.0),
        doors((5, OPENING), now=1000.0),
        (),
    ),
    "a door left open: the screen goes home after a while": (
        doors((5, OPEN)),
        Tick(190.0),
        replace(HOME, now=190.0, last_activity=190.0),
        (),
    ),
    "the home screen left idle returns to the default language": (
        replace(HOME, language="en"),
        Tick(130.0),
        replace(HOME, now=130.0),
        (),
    ),
}

CABINET: dict[str, Row] = {
    "language switch while typing keeps the digits": (
        typing("48"),
        ChooseLanguage("en"),
        typing("48", language="en"),
        (),
    ),
    "language switch at any time": (
        checking(),
        ChooseLanguage("en"),
        replace(checking(), language="en"),
        (),
    ),
    "link down is shown": (HOME, LinkChanged(up=False), replace(HOME, link_up=False), ()),
    "camera down: one alarm": (
        HOME,
        ReaderChanged("camera", up=False, detail="lost"),
        replace(HOME, readers_down=frozenset({"camera"})),
        (JournalAlarm("camera_lost", "lost"),),
    ),
    "camera still down on a reopen attempt: no second alarm": (
        replace(HOME, readers_down=frozenset({"camera"})),
        ReaderChanged("camera", up=False, detail="attempt 2"),
        replace(HOME, readers_down=frozenset({"camera"})),
        (),
    ),
    "camera back: the alarm is cleared": (
        replace(HOME, readers_down=frozenset({"camera"})),
        ReaderChanged("camera", up=True),
        HOME,
        (JournalAlarm("camera_lost", cleared=True),),
    ),
    "scanner back without having been down: nothing": (
        HOME,
        ReaderChanged("scanner", up=True),
        HOME,
        (),
    ),
}

ALL_ROWS = {**TYPING_A_CODE, **SCANNING, **DOORS, **REFUSALS, **TIME, **CABINET}


@pytest.mark.parametrize(("state", "event", "after", "actions"), ALL_ROWS.values(), ids=ALL_ROWS)
def test_each_input_moves_the_kiosk_as_the_flow_says(
    state: KioskState, event: KioskInput, after: KioskState, actions: tuple[KioskAction, ...]
) -> None:
    step = MACHINE.step(state, event)

    assert step.state == after
    assert step.actions == actions


def test_a_recipient_with_parcels_behind_two_doors_sees_both_open_one_after_the_other() -> None:
    state = HOME
    unlocks: list[int] = []
    script: list[KioskInput] = [*(key(d) for d in CODE)]
    for event in script:
        state, actions = MACHINE.step(state, event)
    assert actions == (CheckCredential(TYPED),)
    answers: list[KioskInput] = [
        Decided(Granted(3, (31,), more_doors=(6,))),
        DoorOpened(3),
        Decided(Granted(6, (32,))),
        DoorOpened(6),
        DoorClosed(6),
        DoorClosed(3),
    ]
    for event in answers:
        state, actions = MACHINE.step(state, event)
        unlocks += [a.granted.door for a in actions if isinstance(a, OpenDoor)]

    assert unlocks == [3, 6]
    assert state.phase is Phase.THANKS
    assert MACHINE.screen(state).doors == (DoorProgress(3, CLOSED), DoorProgress(6, CLOSED))


def test_the_code_never_appears_in_a_state_an_input_or_the_screen() -> None:
    state, actions = MACHINE.step(typing(CODE[:7]), key(CODE[7]))
    shown = MACHINE.screen(typing(CODE[:7]))

    assert CODE not in repr(state) + repr(actions)
    assert CODE[:7] not in repr(shown)
    assert shown.digits_entered == 7
    assert TOKEN not in repr(MACHINE.step(HOME, Scanned(QR))) + repr(Scanned(QR))
    assert "4" not in repr(KeyPress("4")).removeprefix("KeyPress")


def test_a_key_that_is_not_on_the_keypad_is_refused() -> None:
    with pytest.raises(ValueError, match="not a kiosk key"):
        KeyPress("a")
