"""The courier's session at the kiosk, row by row: (state, input) → (state, actions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from locker_agent.doors import OpenOutcome
from locker_agent.kiosk.courier import (
    FIRE_AND_FORGET,
    AskDesk,
    BrokenReason,
    CourierAlarm,
    CourierKey,
    CourierPress,
    CourierRules,
    CourierState,
    Deposited,
    DeskAnswered,
    DeskUnreachable,
    DoorStatus,
    DoorUse,
    ExpiredDoor,
    Hint,
    OpenCourierDoor,
    Problem,
    Purpose,
    ReasonChosen,
    RecordDeposit,
    SizeChosen,
    Stage,
    TextEntered,
    Watched,
)
from locker_agent.kiosk.machine import (
    Decided,
    DoorClosed,
    DoorNotOpened,
    DoorOpened,
    KeyPress,
    KioskAction,
    KioskInput,
    KioskMachine,
    KioskRules,
    KioskState,
    Phase,
    Scanned,
    Tick,
)
from locker_agent.pickup import Granted
from locker_contract.desk import (
    CollectedForReturn,
    CourierSession,
    CourierSignIn,
    DepositLookup,
    Done,
    DoorBroken,
    DoorReserved,
    ExpiredList,
    ExpiredParcel,
    ExpiredParcels,
    LargerDoor,
    RecipientKey,
    RefusalReason,
    RegisterParcel,
    RequestRefused,
    SignedIn,
)
from locker_contract.pickup_qr import encode_pickup_qr

COURIER_RULES = CourierRules(sizes=("S", "M", "L"), idle_timeout=60, door_timeout=180)
RULES = KioskRules(idle_timeout=30, courier=COURIER_RULES)
MACHINE = KioskMachine(RULES)
HOME = MACHINE.initial(100.0)
UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
SESSION = CourierSession(courier_id=7, expires_at=UNTIL, token="ab" * 32)
SIGNED_IN = SignedIn(
    courier_id=7, carrier_id=3, carrier_name="SF Express", display_name="Li Wei", session=SESSION
)
TRACKING = "SF1234567890"
SECRET = "C0URIER-S3CRET"
RESERVED = DoorReserved(parcel_id=41, door=5, size="M", reserved_until=UNTIL)
LARGEST = DoorReserved(parcel_id=41, door=5, size="L", reserved_until=UNTIL)
SAME_SIZE = DoorReserved(parcel_id=41, door=6, size="M", reserved_until=UNTIL)
LOOKUP = DepositLookup(session=SESSION, tracking_number=TRACKING)
EMAIL = RecipientKey(kind="email", value="wang@example.com")
EXPIRED = ExpiredList(
    parcels=[
        ExpiredParcel(parcel_id=61, door=3, tracking_number="YT1"),
        ExpiredParcel(parcel_id=62, door=8, tracking_number="YT2"),
        ExpiredParcel(parcel_id=63, door=3, tracking_number="YT3"),
    ]
)
EXPIRED_DOORS = (
    ExpiredDoor(3, (EXPIRED.parcels[0], EXPIRED.parcels[2])),
    ExpiredDoor(8, (EXPIRED.parcels[1],)),
)


def refused(reason: RefusalReason) -> RequestRefused:
    return RequestRefused(reason=reason, message="no")


def kiosk(courier: CourierState, **changes: object) -> KioskState:
    state = replace(HOME, phase=Phase.COURIER, courier=courier)
    return replace(state, **changes)  # type: ignore[arg-type]


def at(stage: Stage, **changes: object) -> KioskState:
    """A signed-in session at ``stage`` (clock and language changes go to the kiosk)."""
    courier = CourierState(
        stage=stage, session=SESSION, courier_name="Li Wei", carrier_name="SF Express"
    )
    clock = {k: changes.pop(k) for k in ("now", "last_activity", "language") if k in changes}
    return kiosk(replace(courier, **changes), **clock)  # type: ignore[arg-type]


def waiting(operation: object, serial: int = 1, **changes: object) -> KioskState:
    return at(Stage.WAITING, asked=operation, serial=serial, **changes)


def confirm(reservation: DoorReserved = RESERVED, **changes: object) -> KioskState:
    stage = changes.pop("stage", Stage.CONFIRM)
    return at(stage, tracking=TRACKING, reservation=reservation, **changes)  # type: ignore[arg-type]


def door(status: DoorStatus, purpose: Purpose = Purpose.DEPOSIT, **changes: object) -> KioskState:
    use = DoorUse(RESERVED.door, purpose, status)
    stage = changes.pop("stage", Stage.DOOR)
    return at(stage, tracking=TRACKING, reservation=RESERVED, door=use, **changes)  # type: ignore[arg-type]


def problem(kind: Problem, **changes: object) -> KioskState:
    return at(Stage.PROBLEM, problem=kind, **changes)


def press(key: CourierKey) -> CourierPress:
    return CourierPress(key)


def answered(answer: object, serial: int = 1) -> DeskAnswered:
    return DeskAnswered(serial, answer)  # type: ignore[arg-type]


SIGN_IN = kiosk(CourierState())
_code = CourierSignIn(credential="code", secret=SECRET)
_badge = CourierSignIn(credential="badge", secret=SECRET)
_sized = DepositLookup(session=SESSION, tracking_number=TRACKING, size="L")
_damaged = DoorBroken(session=SESSION, door=5, reason="damaged")
DEPOSITED = at(Stage.SCAN, last_deposit=Deposited(5, 41), deposits=1)
OPENING, OPEN, UNKNOWN = DoorStatus.OPENING, DoorStatus.OPEN, DoorStatus.UNKNOWN

Row = tuple[KioskState, KioskInput, KioskState, tuple[KioskAction, ...]]

SIGNING_IN: dict[str, Row] = {
    "the courier key at home opens the sign-in": (HOME, press(CourierKey.COURIER), SIGN_IN, ()),
    "a typed courier code is checked by the server": (
        SIGN_IN,
        TextEntered(f"  {SECRET} "),
        kiosk(CourierState(stage=Stage.WAITING, serial=1, asked=_code)),
        (AskDesk(1, _code),),
    ),
    "a badge held up is checked by the server": (
        SIGN_IN,
        Scanned(SECRET),
        kiosk(CourierState(stage=Stage.WAITING, serial=1, asked=_badge)),
        (AskDesk(1, _badge),),
    ),
    "an empty code explains, asks nothing": (
        SIGN_IN,
        TextEntered("   "),
        kiosk(CourierState(hint=Hint.EMPTY_SIGN_IN)),
        (),
    ),
    "a recipient's pickup QR is never taken for a badge": (
        SIGN_IN,
        Scanned(encode_pickup_qr("Zm9vYmFyLXRva2VuLW9mLXBhcmNlbC00MQ")),
        SIGN_IN,
        (),
    ),
    "signed in: scan the first parcel": (
        kiosk(CourierState(stage=Stage.WAITING, serial=1, asked=_code)),
        answered(SIGNED_IN),
        at(Stage.SCAN, serial=1),
        (),
    ),
    "a wrong courier code is refused clearly": (
        kiosk(CourierState(stage=Stage.WAITING, serial=1, asked=_code)),
        answered(refused(RefusalReason.BAD_CREDENTIAL)),
        kiosk(
            CourierState(
                stage=Stage.PROBLEM,
                serial=1,
                problem=Problem.REFUSED,
                refusal=RefusalReason.BAD_CREDENTIAL,
                failed="courier_sign_in",
            )
        ),
        (),
    ),
    "back from a refused sign-in: sign in again": (
        kiosk(CourierState(stage=Stage.PROBLEM, problem=Problem.REFUSED)),
        press(CourierKey.BACK),
        SIGN_IN,
        (),
    ),
    "the server out of reach at sign-in is said so": (
        kiosk(CourierState(stage=Stage.WAITING, serial=1, asked=_code)),
        DeskUnreachable(1),
        kiosk(
            CourierState(
                stage=Stage.PROBLEM,
                serial=1,
                problem=Problem.UNREACHABLE,
                failed="courier_sign_in",
            )
        ),
        (),
    ),
    "cancel at sign-in goes home": (SIGN_IN, KeyPress("cancel"), HOME, ()),
    "the keypad's digits do nothing in a session": (SIGN_IN, KeyPress("4"), SIGN_IN, ()),
    "no courier key without a courier desk": (HOME, press(CourierKey.COURIER), HOME, ()),
}
# the last row runs on a kiosk without a courier desk (see the test below)

DEPOSITING: dict[str, Row] = {
    "a scanned label is looked up": (
        at(Stage.SCAN),
        Scanned(TRACKING),
        waiting(LOOKUP, tracking=TRACKING),
        (AskDesk(1, LOOKUP),),
    ),
    "a typed tracking number is looked up": (
        at(Stage.SCAN),
        TextEntered(TRACKING),
        waiting(LOOKUP, tracking=TRACKING),
        (AskDesk(1, LOOKUP),),
    ),
    "a text that is no tracking number explains, asks nothing": (
        at(Stage.SCAN),
        TextEntered("SF 123/45"),
        at(Stage.SCAN, hint=Hint.NOT_A_TRACKING_NUMBER),
        (),
    ),
    "the door reserved: confirm it before it opens": (
        waiting(LOOKUP, tracking=TRACKING),
        answered(RESERVED),
        confirm(serial=1),
        (),
    ),
    "a reservation from the cabinet's copy (server out of reach) is marked so": (
        waiting(LOOKUP, tracking=TRACKING),
        DeskAnswered(1, RESERVED, offline=True),
        confirm(serial=1, offline=True),
        (),
    ),
    "an answer to an earlier request is not acted on": (
        waiting(LOOKUP, serial=2, tracking=TRACKING),
        answered(RESERVED, serial=1),
        waiting(LOOKUP, serial=2, tracking=TRACKING),
        (),
    ),
    "the server wants a size: the courier chooses one": (
        waiting(LOOKUP, tracking=TRACKING),
        answered(refused(RefusalReason.UNKNOWN_SIZE)),
        at(Stage.SIZE, serial=1, tracking=TRACKING, size_for="lookup"),
        (),
    ),
    "the size chosen: looked up again with it": (
        at(Stage.SIZE, serial=1, tracking=TRACKING, size_for="lookup"),
        SizeChosen("L"),
        waiting(_sized, serial=2, tracking=TRACKING, size_for="lookup"),
        (AskDesk(2, _sized),),
    ),
    "open: the reserved door opens, once": (
        confirm(),
        press(CourierKey.OPEN),
        door(OPENING),
        (OpenCourierDoor(5),),
    ),
    "the door seen open: put the parcel in": (door(OPENING), DoorOpened(5), door(OPEN), ()),
    "the door closed again: the deposit is recorded, next parcel": (
        door(OPEN),
        DoorClosed(5),
        DEPOSITED,
        (RecordDeposit(5, 41, 7),),
    ),
    "a close before the open result still counts (the sensor saw both)": (
        door(OPENING),
        DoorClosed(5),
        DEPOSITED,
        (RecordDeposit(5, 41, 7),),
    ),
    "an item sensor reading empty: nothing recorded, reopen offered": (
        door(OPEN),
        DoorClosed(5, occupied=False),
        problem(Problem.DOOR_EMPTY, tracking=TRACKING, reservation=RESERVED),
        (),
    ),
    "reopen after an empty close opens the same door": (
        problem(Problem.DOOR_EMPTY, tracking=TRACKING, reservation=RESERVED),
        press(CourierKey.OPEN),
        door(OPENING),
        (OpenCourierDoor(5),),
    ),
    "another door closing is not this session's": (door(OPEN), DoorClosed(2), door(OPEN), ()),
    "reopen the door just used": (
        DEPOSITED,
        press(CourierKey.REOPEN),
        replace(
            DEPOSITED,
            courier=replace(
                DEPOSITED.courier,  # type: ignore[arg-type]
                stage=Stage.DOOR,
                door=DoorUse(5, Purpose.REOPEN),
            ),
        ),
        (OpenCourierDoor(5),),
    ),
    "the reopened door closed: nothing recorded twice": (
        replace(
            DEPOSITED,
            courier=replace(
                DEPOSITED.courier,  # type: ignore[arg-type]
                stage=Stage.DOOR,
                door=DoorUse(5, Purpose.REOPEN, OPEN),
            ),
        ),
        DoorClosed(5),
        DEPOSITED,
        (),
    ),
    "no reopen before a deposit": (at(Stage.SCAN), press(CourierKey.REOPEN), at(Stage.SCAN), ()),
    "the next label after a deposit": (
        DEPOSITED,
        Scanned(TRACKING),
        waiting(LOOKUP, tracking=TRACKING, deposits=1),
        (AskDesk(1, LOOKUP),),
    ),
    "back on the confirmation: this parcel is not deposited": (
        confirm(),
        press(CourierKey.BACK),
        at(Stage.SCAN),
        (),
    ),
    "a parcel not announced: refused, registering offered": (
        waiting(LOOKUP, tracking=TRACKING),
        answered(refused(RefusalReason.NOT_ANNOUNCED)),
        problem(
            Problem.REFUSED,
            serial=1,
            tracking=TRACKING,
            refusal=RefusalReason.NOT_ANNOUNCED,
            failed="deposit_lookup",
        ),
        (),
    ),
    "finish: the session ends": (at(Stage.SCAN), press(CourierKey.FINISH), HOME, ()),
    "escape at the scan screen ends the session": (DEPOSITED, KeyPress("cancel"), HOME, ()),
    "a pickup answer during a session opens nothing": (
        at(Stage.SCAN),
        Decided(Granted(5, (11,))),
        at(Stage.SCAN),
        (),
    ),
}

_REGISTER = RegisterParcel(session=SESSION, tracking_number=TRACKING, recipient=EMAIL, size="S")
REGISTERING: dict[str, Row] = {
    "register: scan the unannounced parcel": (
        at(Stage.SCAN),
        press(CourierKey.REGISTER),
        at(Stage.SCAN, registering=True),
        (),
    ),
    "its label: the recipient next": (
        at(Stage.SCAN, registering=True),
        Scanned(TRACKING),
        at(Stage.RECIPIENT, registering=True, tracking=TRACKING),
        (),
    ),
    "from 'not announced': the scanned parcel is kept": (
        problem(Problem.REFUSED, tracking=TRACKING, refusal=RefusalReason.NOT_ANNOUNCED),
        press(CourierKey.REGISTER),
        at(Stage.RECIPIENT, registering=True, tracking=TRACKING),
        (),
    ),
    "an e-mail names the recipient: the size next": (
        at(Stage.RECIPIENT, registering=True, tracking=TRACKING),
        TextEntered("wang@example.com"),
        at(Stage.SIZE, registering=True, tracking=TRACKING, recipient=EMAIL, size_for="register"),
        (),
    ),
    "a phone number, written with spaces and dashes": (
        at(Stage.RECIPIENT, registering=True, tracking=TRACKING),
        TextEntered("+86 138-0013-8000"),
        at(
            Stage.SIZE,
            registering=True,
            tracking=TRACKING,
            recipient=RecipientKey(kind="phone", value="+8613800138000"),
            size_for="register",
        ),
        (),
    ),
    "neither e-mail nor phone: explains": (
        at(Stage.RECIPIENT, registering=True, tracking=TRACKING),
        TextEntered("Mr Wang"),
        at(Stage.RECIPIENT, registering=True, tracking=TRACKING, hint=Hint.NOT_A_CONTACT),
        (),
    ),
    "the size chosen: registered with the server": (
        at(Stage.SIZE, registering=True, tracking=TRACKING, recipient=EMAIL, size_for="register"),
        SizeChosen("S"),
        waiting(
            _REGISTER,
            registering=True,
            tracking=TRACKING,
            recipient=EMAIL,
            size_for="register",
        ),
        (AskDesk(1, _REGISTER),),
    ),
    "a size the cabinet does not have is not taken": (
        at(Stage.SIZE, registering=True, tracking=TRACKING, recipient=EMAIL, size_for="register"),
        SizeChosen("XXL"),
        at(Stage.SIZE, registering=True, tracking=TRACKING, recipient=EMAIL, size_for="register"),
        (),
    ),
    "a recipient without consent is refused clearly": (
        waiting(_REGISTER, registering=True, tracking=TRACKING),
        answered(refused(RefusalReason.NO_CONSENT)),
        problem(
            Problem.REFUSED,
            serial=1,
            registering=True,
            tracking=TRACKING,
            refusal=RefusalReason.NO_CONSENT,
            failed="register_parcel",
        ),
        (),
    ),
    "registering needs the server: said so when it is out of reach": (
        waiting(_REGISTER, registering=True, tracking=TRACKING),
        DeskUnreachable(1),
        problem(
            Problem.UNREACHABLE,
            serial=1,
            registering=True,
            tracking=TRACKING,
            failed="register_parcel",
        ),
        (),
    ),
    "registered: its door is confirmed like any other": (
        waiting(_REGISTER, registering=True, tracking=TRACKING),
        answered(RESERVED),
        at(Stage.CONFIRM, serial=1, registering=True, tracking=TRACKING, reservation=RESERVED),
        (),
    ),
}

_LARGER = LargerDoor(session=SESSION, parcel_id=41, size="L")
_BROKEN = DoorBroken(session=SESSION, door=5, reason="did not open")
_SAME = LargerDoor(session=SESSION, parcel_id=41, size="M")
EXCEPTIONS: dict[str, Row] = {
    "larger door on the confirmation: only larger sizes": (
        confirm(),
        press(CourierKey.LARGER),
        confirm(stage=Stage.SIZE, size_for="larger"),
        (),
    ),
    "the parcel does not fit the open door: no deposit counted for it": (
        door(OPEN),
        press(CourierKey.LARGER),
        door(OPEN, Purpose.EMPTY, stage=Stage.SIZE, size_for="larger"),
        (),
    ),
    "the larger size chosen: the first door is released for it": (
        confirm(stage=Stage.SIZE, size_for="larger"),
        SizeChosen("L"),
        waiting(_LARGER, tracking=TRACKING, size_for="larger"),
        (AskDesk(1, _LARGER),),
    ),
    "a smaller size is not a larger door": (
        confirm(stage=Stage.SIZE, size_for="larger"),
        SizeChosen("S"),
        confirm(stage=Stage.SIZE, size_for="larger"),
        (),
    ),
    "the emptied first door closing records nothing": (
        door(OPEN, Purpose.EMPTY, stage=Stage.SIZE, size_for="larger"),
        DoorClosed(5),
        confirm(stage=Stage.SIZE, size_for="larger"),
        (),
    ),
    "already the largest size: said so": (
        confirm(LARGEST),
        press(CourierKey.LARGER),
        confirm(
            LARGEST,
            stage=Stage.PROBLEM,
            size_for="larger",
            problem=Problem.NO_LARGER_SIZE,
        ),
        (),
    ),
    "back from the problem: the reservation is still there": (
        confirm(stage=Stage.PROBLEM, problem=Problem.NO_LARGER_SIZE),
        press(CourierKey.BACK),
        confirm(),
        (),
    ),
    "a jammed door is flagged broken": (
        door(OPENING),
        DoorNotOpened(5, OpenOutcome.JAMMED),
        waiting(
            _BROKEN,
            tracking=TRACKING,
            reservation=RESERVED,
        ),
        (AskDesk(1, _BROKEN),),
    ),
    "flagged: another door of the same size is asked for": (
        waiting(_BROKEN, tracking=TRACKING, reservation=RESERVED),
        answered(Done()),
        waiting(_SAME, serial=2, tracking=TRACKING),
        (AskDesk(2, _SAME),),
    ),
    "the other door reserved: confirm it": (
        waiting(_SAME, serial=2, tracking=TRACKING),
        answered(SAME_SIZE, serial=2),
        confirm(SAME_SIZE, serial=2),
        (),
    ),
    "an unanswered unlock: maybe open, its close still counts": (
        door(OPENING),
        DoorNotOpened(5, OpenOutcome.OUTCOME_UNKNOWN),
        door(UNKNOWN),
        (),
    ),
    "the close after an unanswered unlock records the deposit": (
        door(UNKNOWN),
        DoorClosed(5),
        DEPOSITED,
        (RecordDeposit(5, 41, 7),),
    ),
    "the courier says it did not open: flagged, another door": (
        door(UNKNOWN),
        press(CourierKey.NOT_OPENED),
        waiting(
            _BROKEN,
            tracking=TRACKING,
            reservation=RESERVED,
        ),
        (AskDesk(1, _BROKEN),),
    ),
    "a door the door layer would not unlock (too many opens): nothing flagged": (
        door(OPENING),
        DoorNotOpened(5, OpenOutcome.RATE_LIMITED),
        confirm(stage=Stage.PROBLEM, problem=Problem.DOOR_NOT_OPENED),
        (),
    ),
    "broken on the confirmation: the reasons": (
        confirm(),
        press(CourierKey.BROKEN),
        confirm(stage=Stage.REASON),
        (),
    ),
    "a reason chosen: the door is flagged with it": (
        confirm(stage=Stage.REASON),
        ReasonChosen(BrokenReason.DAMAGED),
        waiting(
            _damaged,
            tracking=TRACKING,
            reservation=RESERVED,
        ),
        (AskDesk(1, _damaged),),
    ),
    "broken while open: nothing counted in that door": (
        door(OPEN),
        press(CourierKey.BROKEN),
        door(OPEN, Purpose.EMPTY, stage=Stage.REASON),
        (),
    ),
    "the server out of reach for a larger door: said so": (
        waiting(_LARGER, tracking=TRACKING),
        DeskUnreachable(1),
        problem(Problem.UNREACHABLE, serial=1, tracking=TRACKING, failed="larger_door"),
        (),
    ),
    "no free door: refused clearly": (
        waiting(_LARGER, tracking=TRACKING),
        answered(refused(RefusalReason.NO_FREE_DOOR)),
        problem(
            Problem.REFUSED,
            serial=1,
            tracking=TRACKING,
            refusal=RefusalReason.NO_FREE_DOOR,
            failed="larger_door",
        ),
        (),
    ),
    "a session the server no longer knows: sign in again": (
        problem(Problem.REFUSED, refusal=RefusalReason.SESSION_INVALID),
        press(CourierKey.BACK),
        SIGN_IN,
        (),
    ),
    "an answer of the wrong kind is not acted on": (
        waiting(LOOKUP, tracking=TRACKING),
        answered(Done()),
        problem(Problem.BAD_ANSWER, serial=1, tracking=TRACKING, failed="deposit_lookup"),
        (),
    ),
    "keys of another screen do nothing": (door(OPEN), press(CourierKey.OPEN), door(OPEN), ()),
}

_LIST = ExpiredParcels(session=SESSION)
_COLLECT_61 = CollectedForReturn(session=SESSION, parcel_id=61)
_COLLECT_63 = CollectedForReturn(session=SESSION, parcel_id=63)
COLLECTED_3 = (replace(EXPIRED_DOORS[0], status="collected"), EXPIRED_DOORS[1])
EXPIRED_PARCELS: dict[str, Row] = {
    "expired parcels: asked for the list": (
        at(Stage.SCAN),
        press(CourierKey.EXPIRED),
        waiting(_LIST),
        (AskDesk(1, _LIST),),
    ),
    "the list, by door": (
        waiting(_LIST),
        answered(EXPIRED),
        at(Stage.EXPIRED, serial=1, expired=EXPIRED_DOORS),
        (),
    ),
    "open: the next door opens": (
        at(Stage.EXPIRED, expired=EXPIRED_DOORS),
        press(CourierKey.OPEN),
        at(Stage.DOOR, expired=EXPIRED_DOORS, door=DoorUse(3, Purpose.COLLECT)),
        (OpenCourierDoor(3),),
    ),
    "the door closed: each of its parcels reported collected": (
        at(Stage.DOOR, expired=EXPIRED_DOORS, door=DoorUse(3, Purpose.COLLECT, OPEN)),
        DoorClosed(3),
        waiting(_COLLECT_61, expired=COLLECTED_3, reporting=(63,)),
        (AskDesk(1, _COLLECT_61),),
    ),
    "one reported: the next": (
        waiting(_COLLECT_61, expired=COLLECTED_3, reporting=(63,)),
        answered(Done()),
        waiting(_COLLECT_63, serial=2, expired=COLLECTED_3),
        (AskDesk(2, _COLLECT_63),),
    ),
    "all reported: back to the list": (
        waiting(_COLLECT_63, serial=2, expired=COLLECTED_3),
        answered(Done(), serial=2),
        at(Stage.EXPIRED, serial=2, expired=COLLECTED_3),
        (),
    ),
    "skip a door": (
        at(Stage.EXPIRED, expired=EXPIRED_DOORS),
        press(CourierKey.SKIP),
        at(
            Stage.EXPIRED,
            expired=(replace(EXPIRED_DOORS[0], status="skipped"), EXPIRED_DOORS[1]),
        ),
        (),
    ),
    "a door of the list that does not open: said so, the list goes on": (
        at(Stage.DOOR, expired=EXPIRED_DOORS, door=DoorUse(3, Purpose.COLLECT)),
        DoorNotOpened(3, OpenOutcome.JAMMED),
        at(
            Stage.PROBLEM,
            expired=(replace(EXPIRED_DOORS[0], status="not_opened"), EXPIRED_DOORS[1]),
            problem=Problem.DOOR_NOT_OPENED,
        ),
        (),
    ),
    "an item sensor still reading occupied: nothing reported": (
        at(Stage.DOOR, expired=EXPIRED_DOORS, door=DoorUse(3, Purpose.COLLECT, OPEN)),
        DoorClosed(3, occupied=True),
        at(
            Stage.PROBLEM,
            expired=(replace(EXPIRED_DOORS[0], status="not_collected"), EXPIRED_DOORS[1]),
            problem=Problem.DOOR_NOT_EMPTY,
        ),
        (),
    ),
    "back from a problem: the list": (
        at(Stage.PROBLEM, expired=EXPIRED_DOORS, problem=Problem.DOOR_NOT_OPENED),
        press(CourierKey.BACK),
        at(Stage.EXPIRED, expired=EXPIRED_DOORS),
        (),
    ),
    "back from the list: scanning": (
        at(Stage.EXPIRED, expired=EXPIRED_DOORS),
        press(CourierKey.BACK),
        at(Stage.SCAN),
        (),
    ),
}

_ABANDONED = CourierAlarm(
    "courier_reservation_unused", 5, "door 5 reserved for parcel 41 left unused"
)
_WATCHED = Watched(5, Purpose.DEPOSIT, 7, (41,))
TIMERS: dict[str, Row] = {
    "a session left idle ends": (
        at(Stage.SCAN),
        Tick(160.0),
        replace(HOME, now=160.0, last_activity=160.0),
        (),
    ),
    "just before the idle timeout it stays": (
        at(Stage.SCAN),
        Tick(159.0),
        at(Stage.SCAN, now=159.0),
        (),
    ),
    "a reserved door not opened in time is left, and journaled": (
        confirm(),
        Tick(160.0),
        replace(HOME, now=160.0, last_activity=160.0),
        (_ABANDONED,),
    ),
    "a server that does not answer in time: said so": (
        waiting(LOOKUP, tracking=TRACKING),
        Tick(120.0),
        problem(
            Problem.UNREACHABLE,
            serial=1,
            tracking=TRACKING,
            failed="deposit_lookup",
            now=120.0,
            last_activity=120.0,
        ),
        (),
    ),
    "a late answer after that acts on nothing": (
        problem(Problem.UNREACHABLE, serial=1, tracking=TRACKING),
        answered(RESERVED),
        problem(Problem.UNREACHABLE, serial=1, tracking=TRACKING),
        (),
    ),
    "a door still opening is waited for": (
        door(OPENING),
        Tick(1000.0),
        replace(door(OPENING), now=1000.0),
        (),
    ),
    "a door open too long: the session ends, the door is watched": (
        door(OPEN),
        Tick(280.0),
        replace(HOME, now=280.0, last_activity=280.0, watch=(_WATCHED,)),
        (),
    ),
    "the watched door closes later: the deposit is recorded then": (
        replace(HOME, watch=(_WATCHED,)),
        DoorClosed(5),
        HOME,
        (RecordDeposit(5, 41, 7),),
    ),
    "a watched door closing while a recipient picks up is still recorded": (
        replace(HOME, phase=Phase.TYPING, digits="12", watch=(_WATCHED,)),
        DoorClosed(5),
        replace(HOME, phase=Phase.TYPING, digits="12"),
        (RecordDeposit(5, 41, 7),),
    ),
    "a watched door closing empty (item sensor) records nothing": (
        replace(HOME, watch=(_WATCHED,)),
        DoorClosed(5, occupied=False),
        HOME,
        (),
    ),
    "a collection door left open: its close reports the collection": (
        replace(HOME, watch=(Watched(3, Purpose.COLLECT, 7, (61,), SESSION),)),
        DoorClosed(3),
        HOME,
        (AskDesk(FIRE_AND_FORGET, _COLLECT_61),),
    ),
    "the emptied door left open when the session ends is not watched": (
        door(OPEN, Purpose.EMPTY, stage=Stage.SIZE, size_for="larger"),
        Tick(160.0),
        replace(HOME, now=160.0, last_activity=160.0),
        (_ABANDONED,),
    ),
}

ALL_ROWS = {**SIGNING_IN, **DEPOSITING, **REGISTERING, **EXCEPTIONS, **EXPIRED_PARCELS, **TIMERS}
WITHOUT_DESK = "no courier key without a courier desk"


@pytest.mark.parametrize(("state", "event", "after", "actions"), ALL_ROWS.values(), ids=ALL_ROWS)
def test_each_courier_input_moves_the_kiosk_as_the_flow_says(
    request: pytest.FixtureRequest,
    state: KioskState,
    event: KioskInput,
    after: KioskState,
    actions: tuple[KioskAction, ...],
) -> None:
    without_desk = request.node.callspec.id == WITHOUT_DESK
    machine = KioskMachine(replace(RULES, courier=None)) if without_desk else MACHINE

    step = machine.step(state, event)

    assert step.state == after
    assert step.actions == actions


def test_a_courier_deposits_two_parcels_and_each_counts_once() -> None:
    state = HOME
    recorded: list[RecordDeposit] = []
    answers = {1: SIGNED_IN, 2: RESERVED, 3: SAME_SIZE}
    script: list[KioskInput] = [
        press(CourierKey.COURIER),
        TextEntered(SECRET),
        DeskAnswered(1, SIGNED_IN),
        Scanned(TRACKING),
        answered(answers[2], serial=2),
        press(CourierKey.OPEN),
        DoorOpened(5),
        DoorClosed(5),
        Scanned("SF999"),
        answered(answers[3], serial=3),
        press(CourierKey.OPEN),
        DoorOpened(6),
        DoorClosed(6),
        DoorClosed(6),  # a second close report of the same door
    ]
    for event in script:
        state, actions = MACHINE.step(state, event)
        recorded += [a for a in actions if isinstance(a, RecordDeposit)]

    assert recorded == [RecordDeposit(5, 41, 7), RecordDeposit(6, 41, 7)]
    assert state.courier is not None
    assert state.courier.deposits == 2


def test_the_courier_code_never_appears_in_a_state_an_input_or_the_screen() -> None:
    step = MACHINE.step(SIGN_IN, TextEntered(SECRET))
    shown = MACHINE.screen(step.state)

    assert SECRET not in repr(step) + repr(shown) + repr(TextEntered(SECRET))
    assert SESSION.token not in repr(MACHINE.screen(at(Stage.SCAN)))
    assert shown.courier is not None
    assert shown.courier.asked is None


def test_the_home_screen_offers_the_courier_key_only_with_a_desk() -> None:
    assert MACHINE.screen(HOME).courier_entry
    assert not KioskMachine(KioskRules()).screen(HOME).courier_entry
