"""The courier's session at the kiosk, as a pure state machine (no I/O).

:class:`~locker_agent.kiosk.machine.KioskMachine` hands every input of a courier session
to :func:`courier_step` and every clock tick to :func:`courier_idle`; both return the
session's next state (``None``: the session is over, the kiosk goes home) and the
actions for the driver: ask the courier desk (:class:`AskDesk`, answered by
:class:`DeskAnswered` or :class:`DeskUnreachable`), open a door
(:class:`OpenCourierDoor`, answered by the door inputs of the machine), record a deposit
(:class:`RecordDeposit`) or journal an alarm.

Stages of a session::

    SIGN_IN ─code / badge─▶ WAITING ─SignedIn─▶ SCAN ◀──────────────────────────────┐
                                                 │ label / tracking number          │
                                                 ▼                                  │
                 (unannounced: RECIPIENT ─▶ SIZE) WAITING ─DoorReserved─▶ CONFIRM   │
                                                                  │ open            │
                                                                  ▼                 │
                                 DOOR: opening ─▶ open ─▶ closed: RecordDeposit ────┘
    SCAN ─expired─▶ WAITING ─ExpiredList─▶ EXPIRED: door by door, CollectedForReturn
    CONFIRM / DOOR ─larger─▶ SIZE ─▶ LargerDoor;  ─broken─▶ REASON ─▶ DoorBroken ─▶ LargerDoor
    DOOR did not open ─▶ DoorBroken("did not open") ─▶ LargerDoor (same size) ─▶ CONFIRM
    refusals, an unreachable server, an empty door ─▶ PROBLEM ─back─▶ where it makes sense

Safety at the door: a door is opened only when the courier asked for it (``open``,
``reopen``, a collection's ``open``), once per press; a deposit is recorded only when
the door layer saw the door close after it was open (its ``closed`` event follows an
observed opening), and not when an item sensor reads the compartment empty. A session
that ends while a door it opened for a parcel stands open hands that door to the kiosk
(:class:`Watched`), which records the deposit (or the collection) when the door closes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final, Literal, NamedTuple, TypeAlias

from locker_agent.doors import OpenOutcome
from locker_contract.desk import (
    Answer,
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
    Operation,
    RecipientKey,
    RefusalReason,
    RegisterParcel,
    RequestRefused,
    SignedIn,
)
from locker_contract.pickup_qr import QrVerdict, read_pickup_qr

TRACKING_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE: Final = re.compile(r"^\+?[0-9]{6,20}$")
MAX_SECRET: Final = 128


class Stage(StrEnum):
    #: type the courier code or hold up the badge
    SIGN_IN = "sign_in"
    #: scan or type the next parcel's tracking number (the session's home)
    SCAN = "scan"
    #: an unannounced parcel: the recipient's e-mail or phone, as on the label
    RECIPIENT = "recipient"
    #: choose a size (an unannounced parcel, a larger door, or the server asks for one)
    SIZE = "size"
    #: a request is with the server
    WAITING = "waiting"
    #: a door is reserved for the parcel: open it, or another size, or it is broken
    CONFIRM = "confirm"
    #: a door of the session is opening or open
    DOOR = "door"
    #: why the door is out of service
    REASON = "reason"
    #: the expired parcels to take back, door by door
    EXPIRED = "expired"
    #: something went wrong: a refusal, the server out of reach, a door
    PROBLEM = "problem"


class CourierKey(StrEnum):
    """The buttons of the courier screens (and the home screen's courier entry)."""

    COURIER = "courier"
    REGISTER = "register"
    EXPIRED = "expired"
    FINISH = "finish"
    OPEN = "open"
    LARGER = "larger"
    BROKEN = "broken"
    NOT_OPENED = "not_opened"
    REOPEN = "reopen"
    SKIP = "skip"
    BACK = "back"


class BrokenReason(StrEnum):
    DID_NOT_OPEN = "did_not_open"
    DOES_NOT_CLOSE = "does_not_close"
    DAMAGED = "damaged"
    NOT_EMPTY = "not_empty"
    DIRTY = "dirty"


#: what the server's audit log is told (one language, whatever the screen's)
REASON_SENT: Final[dict[BrokenReason, str]] = {
    BrokenReason.DID_NOT_OPEN: "did not open",
    BrokenReason.DOES_NOT_CLOSE: "does not close",
    BrokenReason.DAMAGED: "damaged",
    BrokenReason.NOT_EMPTY: "not empty",
    BrokenReason.DIRTY: "dirty",
}


class Problem(StrEnum):
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    DOOR_NOT_OPENED = "door_not_opened"
    DOOR_EMPTY = "door_empty"
    #: an expired parcel's door closed with something still inside (item sensor)
    DOOR_NOT_EMPTY = "door_not_empty"
    NO_LARGER_SIZE = "no_larger_size"
    BAD_ANSWER = "bad_answer"


class Hint(StrEnum):
    NOT_A_TRACKING_NUMBER = "not_a_tracking_number"
    NOT_A_CONTACT = "not_a_contact"
    EMPTY_SIGN_IN = "empty_sign_in"


class Purpose(StrEnum):
    #: a parcel goes in: its close is a deposit
    DEPOSIT = "deposit"
    #: the parcel was already recorded; the courier opened the door again
    REOPEN = "reopen"
    #: an expired parcel comes out: its close is a collection
    COLLECT = "collect"
    #: the courier said the parcel is not going in (larger door, broken door)
    EMPTY = "empty"


class DoorStatus(StrEnum):
    OPENING = "opening"
    OPEN = "open"
    #: the board did not answer the unlock: it may be open
    UNKNOWN = "unknown"


SizeFor: TypeAlias = Literal["lookup", "register", "larger"]
ExpiredStatus: TypeAlias = Literal["waiting", "collected", "not_opened", "not_collected", "skipped"]


# -- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CourierPress:
    key: CourierKey


@dataclass(frozen=True, slots=True)
class TextEntered:
    """The text field of a courier screen was submitted (a code, a number, a contact)."""

    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SizeChosen:
    size: str


@dataclass(frozen=True, slots=True)
class ReasonChosen:
    reason: BrokenReason


@dataclass(frozen=True, slots=True)
class DeskAnswered:
    """The desk's answer to :class:`AskDesk` ``serial``; ``offline``: no server was asked,
    the reservation came from the cabinet's own copy (a deposit lookup only)."""

    serial: int
    answer: Answer
    offline: bool = False


@dataclass(frozen=True, slots=True)
class DeskUnreachable:
    serial: int


# -- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AskDesk:
    """Send ``operation`` to the courier desk; answer with :class:`DeskAnswered` /
    :class:`DeskUnreachable` carrying ``serial`` (a later answer is not acted on)."""

    serial: int
    operation: Operation = field(repr=False)


@dataclass(frozen=True, slots=True)
class OpenCourierDoor:
    """Open ``door`` once; answer with ``DoorOpened`` / ``DoorNotOpened``."""

    door: int


@dataclass(frozen=True, slots=True)
class RecordDeposit:
    """The door opened and closed again for ``parcel_id``: journal the ``deposit``."""

    door: int
    parcel_id: int
    courier_id: int


@dataclass(frozen=True, slots=True)
class CourierAlarm:
    """Journal an ``alarm`` (e.g. a reservation the session left unused)."""

    kind: str
    door: int
    detail: str


CourierAction: TypeAlias = AskDesk | OpenCourierDoor | RecordDeposit | CourierAlarm
#: a serial no answer carries: requests whose answer nobody waits for
FIRE_AND_FORGET: Final = -1


# -- state --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoorUse:
    door: int
    purpose: Purpose
    status: DoorStatus = DoorStatus.OPENING


@dataclass(frozen=True, slots=True)
class ExpiredDoor:
    """One door of the expired parcels, with every parcel behind it."""

    door: int
    parcels: tuple[ExpiredParcel, ...]
    status: ExpiredStatus = "waiting"


@dataclass(frozen=True, slots=True)
class Watched:
    """A door left open by an ended session: its close still records what it was for."""

    door: int
    purpose: Purpose
    courier_id: int
    parcel_ids: tuple[int, ...]
    session: CourierSession | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Deposited:
    door: int
    parcel_id: int


@dataclass(frozen=True, slots=True)
class CourierState:
    stage: Stage = Stage.SIGN_IN
    session: CourierSession | None = field(default=None, repr=False)
    courier_name: str = ""
    carrier_name: str = ""
    #: the last request's serial, and the request itself while it is with the server
    serial: int = 0
    asked: Operation | None = field(default=None, repr=False)
    tracking: str | None = None
    registering: bool = False
    recipient: RecipientKey | None = field(default=None, repr=False)
    size_for: SizeFor | None = None
    reservation: DoorReserved | None = None
    #: the reservation came from the cabinet's copy while the server was out of reach
    offline: bool = False
    door: DoorUse | None = None
    refusal: RefusalReason | None = None
    problem: Problem | None = None
    #: the operation a refusal or an unreachable server stopped (its ``op``)
    failed: str | None = None
    hint: Hint | None = None
    last_deposit: Deposited | None = None
    deposits: int = 0
    expired: tuple[ExpiredDoor, ...] = ()
    #: the parcels of a closed expired-parcel door still to report, in order
    reporting: tuple[int, ...] = ()

    @property
    def courier_id(self) -> int:
        return 0 if self.session is None else self.session.courier_id


class CourierStep(NamedTuple):
    #: None: the session is over
    state: CourierState | None
    actions: tuple[CourierAction, ...] = ()
    watch: tuple[Watched, ...] = ()


CourierInput: TypeAlias = (
    CourierPress | TextEntered | SizeChosen | ReasonChosen | DeskAnswered | DeskUnreachable
)


@dataclass(frozen=True, slots=True)
class CourierRules:
    #: the size codes the server's size table uses, smallest first
    sizes: tuple[str, ...] = ("S", "M", "L")
    #: seconds without input before a session ends (a held reservation is left)
    idle_timeout: float = 60.0
    #: seconds a door of the session may stand open before the session ends (watched)
    door_timeout: float = 180.0
    #: seconds to wait for the server's answer before saying it is out of reach
    desk_timeout: float = 20.0


# -- the person ---------------------------------------------------------------------------


def courier_step(state: CourierState, event: CourierInput, rules: CourierRules) -> CourierStep:
    """One input of the session; door inputs go to :func:`door_opened` and friends."""
    match event:
        case DeskAnswered() | DeskUnreachable():
            if event.serial != state.serial or state.stage is not Stage.WAITING:
                return CourierStep(state)  # an answer nobody waits for any more
            return _answer(state, event)
        case TextEntered():
            return _text(replace(state, hint=None), event.text.strip())
        case SizeChosen():
            return _size(state, event.size, rules)
        case ReasonChosen():
            return _reason(state, event.reason)
        case CourierPress():
            return _press(state, event.key, rules)


def scanned(state: CourierState, text: str) -> CourierStep:
    """A scan: the badge at sign-in, the parcel label at the scan screen; else ignored."""
    if read_pickup_qr(text).verdict is QrVerdict.PICKUP:
        return CourierStep(state)  # a recipient's pickup QR is never a badge or a label
    if state.stage is Stage.SIGN_IN:
        return _sign_in(state, "badge", text.strip())
    if state.stage is Stage.SCAN:
        return _tracking(replace(state, hint=None), text.strip())
    return CourierStep(state)


def _text(state: CourierState, text: str) -> CourierStep:
    if state.stage is Stage.SIGN_IN:
        return _sign_in(state, "code", text)
    if state.stage is Stage.SCAN:
        return _tracking(state, text)
    if state.stage is Stage.RECIPIENT:
        return _recipient(state, text)
    return CourierStep(state)


def _sign_in(state: CourierState, credential: Literal["code", "badge"], secret: str) -> CourierStep:
    if not 0 < len(secret) <= MAX_SECRET:
        return CourierStep(replace(state, hint=Hint.EMPTY_SIGN_IN))
    return _ask(state, CourierSignIn(credential=credential, secret=secret))


def _tracking(state: CourierState, text: str) -> CourierStep:
    if not TRACKING_PATTERN.fullmatch(text):
        return CourierStep(replace(state, hint=Hint.NOT_A_TRACKING_NUMBER))
    state = replace(state, tracking=text, last_deposit=None)
    if state.registering:
        return CourierStep(replace(state, stage=Stage.RECIPIENT))
    return _ask(state, DepositLookup(session=_session(state), tracking_number=text))


def _recipient(state: CourierState, text: str) -> CourierStep:
    contact = _contact(text)
    if contact is None:
        return CourierStep(replace(state, hint=Hint.NOT_A_CONTACT))
    return CourierStep(replace(state, recipient=contact, stage=Stage.SIZE, size_for="register"))


def _contact(text: str) -> RecipientKey | None:
    if _EMAIL.fullmatch(text) and len(text) <= 254:
        return RecipientKey(kind="email", value=text)
    phone = re.sub(r"[\s()-]", "", text)
    if _PHONE.fullmatch(phone):
        return RecipientKey(kind="phone", value=phone)
    return None


def _size(state: CourierState, size: str, rules: CourierRules) -> CourierStep:
    if state.stage is not Stage.SIZE or size not in sizes_offered(state, rules):
        return CourierStep(state)
    session, tracking = _session(state), state.tracking or ""
    if state.size_for == "larger" and state.reservation is not None:
        parcel_id = state.reservation.parcel_id
        larger = replace(state, reservation=None)
        return _ask(larger, LargerDoor(session=session, parcel_id=parcel_id, size=size))
    if state.size_for == "register" and state.recipient is not None:
        op = RegisterParcel(
            session=session, tracking_number=tracking, recipient=state.recipient, size=size
        )
        return _ask(state, op)
    return _ask(state, DepositLookup(session=session, tracking_number=tracking, size=size))


def sizes_offered(state: CourierState, rules: CourierRules) -> tuple[str, ...]:
    """All sizes; for a larger door only those after the reserved one."""
    if state.size_for != "larger" or state.reservation is None:
        return rules.sizes
    current = state.reservation.size
    if current not in rules.sizes:
        return rules.sizes
    return rules.sizes[rules.sizes.index(current) + 1 :]


def _reason(state: CourierState, reason: BrokenReason) -> CourierStep:
    if state.stage is not Stage.REASON or state.reservation is None:
        return CourierStep(state)
    return _flag_broken(state, state.reservation.door, reason)


def _flag_broken(state: CourierState, door: int, reason: BrokenReason) -> CourierStep:
    """Take ``door`` out of service; another door follows (see :func:`_done`)."""
    door_use = state.door
    if door_use is not None and door_use.door == door:
        # whatever happens to that door now, no parcel is counted in it
        state = replace(state, door=replace(door_use, purpose=Purpose.EMPTY))
    op = DoorBroken(session=_session(state), door=door, reason=REASON_SENT[reason])
    return _ask(state, op)


_PRESSES: Final[dict[Stage, frozenset[CourierKey]]] = {
    Stage.SIGN_IN: frozenset({CourierKey.FINISH}),
    Stage.SCAN: frozenset(
        {CourierKey.REGISTER, CourierKey.EXPIRED, CourierKey.FINISH, CourierKey.REOPEN}
    ),
    Stage.RECIPIENT: frozenset({CourierKey.BACK}),
    Stage.SIZE: frozenset({CourierKey.BACK}),
    Stage.CONFIRM: frozenset(
        {CourierKey.OPEN, CourierKey.LARGER, CourierKey.BROKEN, CourierKey.BACK}
    ),
    Stage.DOOR: frozenset({CourierKey.LARGER, CourierKey.BROKEN, CourierKey.NOT_OPENED}),
    Stage.REASON: frozenset({CourierKey.BACK}),
    Stage.EXPIRED: frozenset(
        {CourierKey.OPEN, CourierKey.SKIP, CourierKey.BACK, CourierKey.FINISH}
    ),
    Stage.PROBLEM: frozenset({CourierKey.BACK, CourierKey.REGISTER, CourierKey.OPEN}),
}


def presses(state: CourierState) -> frozenset[CourierKey]:
    """The buttons the screen offers now (the machine takes no other)."""
    keys = _PRESSES.get(state.stage, frozenset())
    if state.stage is Stage.SCAN and state.last_deposit is None:
        keys -= {CourierKey.REOPEN}
    if state.stage is Stage.PROBLEM:
        if state.refusal is not RefusalReason.NOT_ANNOUNCED:
            keys -= {CourierKey.REGISTER}
        if state.problem is not Problem.DOOR_EMPTY:
            keys -= {CourierKey.OPEN}
    if state.stage is Stage.DOOR and state.door is not None:
        keys = _door_presses(state.door)
    return keys


def _door_presses(door: DoorUse) -> frozenset[CourierKey]:
    if door.purpose is not Purpose.DEPOSIT or door.status is DoorStatus.OPENING:
        return frozenset()
    if door.status is DoorStatus.UNKNOWN:
        return frozenset({CourierKey.NOT_OPENED})
    return frozenset({CourierKey.LARGER, CourierKey.BROKEN})


def _press(state: CourierState, key: CourierKey, rules: CourierRules) -> CourierStep:
    if key not in presses(state):
        return CourierStep(state)
    state = replace(state, hint=None)
    match key:
        case CourierKey.FINISH:
            return _end(state)
        case CourierKey.REGISTER:
            return CourierStep(_register(state))
        case CourierKey.EXPIRED:
            return _ask(state, ExpiredParcels(session=_session(state)))
        case CourierKey.OPEN:
            return _open(state)
        case CourierKey.LARGER:
            return _larger(state, rules)
        case CourierKey.BROKEN:
            return CourierStep(replace(state, stage=Stage.REASON, door=_emptied(state.door)))
        case CourierKey.NOT_OPENED:
            return _door_did_not_open(state)
        case CourierKey.REOPEN:
            return _reopen(state)
        case CourierKey.SKIP:
            return CourierStep(_expired_door_is(state, _next_expired(state), "skipped"))
        case CourierKey.BACK | CourierKey.COURIER:
            return CourierStep(_back(state))


def _register(state: CourierState) -> CourierState:
    """An unannounced parcel: from the scan screen, or after "not announced" (keeps it)."""
    kept = state.tracking if state.refusal is RefusalReason.NOT_ANNOUNCED else None
    stage = Stage.RECIPIENT if kept else Stage.SCAN
    return _to_scan(state, stage=stage, registering=True, tracking=kept)


def _open(state: CourierState) -> CourierStep:
    if state.stage is Stage.EXPIRED:
        door = _next_expired(state)
        if door is None:
            return CourierStep(state)
        return _open_door(state, door, Purpose.COLLECT)
    if state.reservation is None:
        return CourierStep(state)
    return _open_door(state, state.reservation.door, Purpose.DEPOSIT)


def _open_door(state: CourierState, door: int, purpose: Purpose) -> CourierStep:
    opening = replace(state, stage=Stage.DOOR, door=DoorUse(door, purpose), problem=None)
    return CourierStep(replace(opening, refusal=None), (OpenCourierDoor(door),))


def _larger(state: CourierState, rules: CourierRules) -> CourierStep:
    state = replace(state, door=_emptied(state.door), size_for="larger")
    if not sizes_offered(state, rules):
        return CourierStep(replace(state, stage=Stage.PROBLEM, problem=Problem.NO_LARGER_SIZE))
    return CourierStep(replace(state, stage=Stage.SIZE))


def _emptied(door: DoorUse | None) -> DoorUse | None:
    """The courier says the parcel does not go into this (open) door."""
    return None if door is None else replace(door, purpose=Purpose.EMPTY)


def _reopen(state: CourierState) -> CourierStep:
    if state.last_deposit is None:
        return CourierStep(state)
    return _open_door(state, state.last_deposit.door, Purpose.REOPEN)


def _back(state: CourierState) -> CourierState:
    """Where "back" leads: the reservation still held, the expired list, or scanning."""
    if state.session is None:
        return replace(state, stage=Stage.SIGN_IN, problem=None, refusal=None)
    if state.refusal is RefusalReason.SESSION_INVALID:
        return CourierState(stage=Stage.SIGN_IN)
    if state.expired and state.stage is not Stage.EXPIRED:
        return replace(state, stage=Stage.EXPIRED, problem=None, refusal=None, reporting=())
    if state.reservation is not None and state.stage is not Stage.CONFIRM:
        return replace(state, stage=Stage.CONFIRM, problem=None, refusal=None)
    return _to_scan(state)


def _to_scan(state: CourierState, **changes: object) -> CourierState:
    """The session's home: nothing of the last parcel kept but the deposit just made."""
    scan = CourierState(
        stage=Stage.SCAN,
        session=state.session,
        courier_name=state.courier_name,
        carrier_name=state.carrier_name,
        serial=state.serial,
        last_deposit=state.last_deposit,
        deposits=state.deposits,
    )
    return replace(scan, **changes)  # type: ignore[arg-type]


def _end(state: CourierState) -> CourierStep:
    return CourierStep(None, _abandoned(state), _watched(state))


# -- the desk -----------------------------------------------------------------------------


def _session(state: CourierState) -> CourierSession:
    if state.session is None:
        raise ValueError("no courier is signed in")  # the stages before it ask nothing else
    return state.session


def _ask(state: CourierState, operation: Operation) -> CourierStep:
    serial = state.serial + 1
    waiting = replace(state, stage=Stage.WAITING, asked=operation, serial=serial)
    return CourierStep(waiting, (AskDesk(serial, operation),))


def _answer(state: CourierState, event: DeskAnswered | DeskUnreachable) -> CourierStep:
    asked = state.asked
    state = replace(state, asked=None)
    if isinstance(event, DeskUnreachable):
        return CourierStep(_problem(state, Problem.UNREACHABLE, asked))
    answer = event.answer
    if isinstance(answer, RequestRefused):
        return _refused(state, asked, answer.reason)
    if isinstance(answer, SignedIn) and isinstance(asked, CourierSignIn):
        return CourierStep(_signed_in(state, answer))
    if isinstance(answer, DoorReserved) and isinstance(
        asked, DepositLookup | RegisterParcel | LargerDoor
    ):
        reserved = replace(state, reservation=answer, offline=event.offline)
        return CourierStep(replace(reserved, stage=Stage.CONFIRM))
    if isinstance(answer, ExpiredList) and isinstance(asked, ExpiredParcels):
        return CourierStep(replace(state, stage=Stage.EXPIRED, expired=_by_door(answer)))
    if isinstance(answer, Done) and isinstance(asked, DoorBroken | CollectedForReturn):
        return _done(state, asked)
    return CourierStep(_problem(state, Problem.BAD_ANSWER, asked))


def _signed_in(state: CourierState, answer: SignedIn) -> CourierState:
    return CourierState(
        stage=Stage.SCAN,
        session=answer.session,
        courier_name=answer.display_name,
        carrier_name=answer.carrier_name,
        serial=state.serial,
    )


def _refused(state: CourierState, asked: Operation | None, reason: RefusalReason) -> CourierStep:
    lookup_without_size = isinstance(asked, DepositLookup) and asked.size is None
    if reason is RefusalReason.UNKNOWN_SIZE and lookup_without_size:
        # an announced parcel without a size, or none reserved here: the courier says
        return CourierStep(replace(state, stage=Stage.SIZE, size_for="lookup"))
    refused = _problem(state, Problem.REFUSED, asked)
    return CourierStep(replace(refused, refusal=reason))


def _done(state: CourierState, asked: DoorBroken | CollectedForReturn) -> CourierStep:
    if isinstance(asked, CollectedForReturn):
        return _report_next(state)
    reservation = state.reservation
    if reservation is None or reservation.door != asked.door:
        return CourierStep(_back(state))
    # the parcel still needs a door: one of the same size, the broken one released
    larger = LargerDoor(
        session=_session(state), parcel_id=reservation.parcel_id, size=reservation.size
    )
    return _ask(replace(state, reservation=None), larger)


def _by_door(answer: ExpiredList) -> tuple[ExpiredDoor, ...]:
    doors: dict[int, list[ExpiredParcel]] = {}
    for parcel in answer.parcels:
        doors.setdefault(parcel.door, []).append(parcel)
    return tuple(ExpiredDoor(door, tuple(parcels)) for door, parcels in sorted(doors.items()))


# -- the doors ----------------------------------------------------------------------------


def door_opened(state: CourierState, door: int) -> CourierStep:
    use = state.door
    if use is None or use.door != door or use.status is DoorStatus.OPEN:
        return CourierStep(state)
    return CourierStep(replace(state, door=replace(use, status=DoorStatus.OPEN)))


def door_not_opened(state: CourierState, door: int, outcome: OpenOutcome) -> CourierStep:
    """Jammed: flag it, another door. Unanswered: it may be open, its close still counts.
    Refused by the door layer (too many opens): nothing was sent; try again later."""
    use = state.door
    if use is None or use.door != door or use.status is not DoorStatus.OPENING:
        return CourierStep(state)
    if use.purpose is Purpose.DEPOSIT and outcome is OpenOutcome.JAMMED:
        return _door_did_not_open(state)
    if outcome is OpenOutcome.OUTCOME_UNKNOWN and use.purpose is not Purpose.COLLECT:
        return CourierStep(replace(state, door=replace(use, status=DoorStatus.UNKNOWN)))
    if use.purpose is Purpose.COLLECT:
        state = _expired_door_is(state, door, "not_opened")
    return CourierStep(_problem(replace(state, door=None), Problem.DOOR_NOT_OPENED))


def _door_did_not_open(state: CourierState) -> CourierStep:
    """Flag the reserved door and ask for another one (see :func:`_done`); the session is
    done with that door (nothing is counted in it, whatever it does later)."""
    state = replace(state, door=None)
    if state.reservation is None:
        return CourierStep(_problem(state, Problem.DOOR_NOT_OPENED))
    return _flag_broken(state, state.reservation.door, BrokenReason.DID_NOT_OPEN)


def door_closed(state: CourierState, door: int, occupied: bool | None) -> CourierStep:
    """The door layer saw ``door`` close (so it had seen it open)."""
    use = state.door
    if use is None or use.door != door:
        return CourierStep(state)
    state = replace(state, door=None)
    if use.purpose is Purpose.DEPOSIT:
        return _deposited(state, door, occupied)
    if use.purpose is Purpose.COLLECT:
        return _collected(state, door, occupied)
    if state.stage is Stage.DOOR:  # a reopened door closed again: back to scanning
        return CourierStep(_to_scan(state))
    return CourierStep(state)


def _deposited(state: CourierState, door: int, occupied: bool | None) -> CourierStep:
    reservation = state.reservation
    if reservation is None or reservation.door != door:
        return CourierStep(state)
    if occupied is False:  # the item sensor says nothing went in
        return CourierStep(_problem(state, Problem.DOOR_EMPTY))
    record = RecordDeposit(door, reservation.parcel_id, state.courier_id)
    deposit = Deposited(door, reservation.parcel_id)
    after = replace(state, last_deposit=deposit, deposits=state.deposits + 1)
    return CourierStep(_to_scan(after), (record,))


def _collected(state: CourierState, door: int, occupied: bool | None) -> CourierStep:
    if occupied is True:  # the item sensor still sees something inside
        state = _expired_door_is(state, door, "not_collected")
        return CourierStep(_problem(state, Problem.DOOR_NOT_EMPTY))
    parcels = next((d.parcels for d in state.expired if d.door == door), ())
    state = _expired_door_is(state, door, "collected")
    return _report_next(replace(state, reporting=tuple(p.parcel_id for p in parcels)))


def _report_next(state: CourierState) -> CourierStep:
    if not state.reporting:
        return CourierStep(replace(state, stage=Stage.EXPIRED))
    parcel_id, rest = state.reporting[0], state.reporting[1:]
    op = CollectedForReturn(session=_session(state), parcel_id=parcel_id)
    return _ask(replace(state, reporting=rest), op)


def _next_expired(state: CourierState) -> int | None:
    return next((d.door for d in state.expired if d.status == "waiting"), None)


def _expired_door_is(state: CourierState, door: int | None, status: ExpiredStatus) -> CourierState:
    doors = tuple(replace(d, status=status) if d.door == door else d for d in state.expired)
    return replace(state, expired=doors)


def _problem(
    state: CourierState, problem: Problem, failed: Operation | None = None
) -> CourierState:
    op = None if failed is None else failed.op
    return replace(state, stage=Stage.PROBLEM, problem=problem, refusal=None, failed=op)


# -- time ---------------------------------------------------------------------------------


def courier_idle(state: CourierState, idle: float, rules: CourierRules) -> CourierStep:
    """``idle`` seconds since the last input of the session: end it when that is too long."""
    if state.stage is Stage.WAITING:
        if idle < rules.desk_timeout:
            return CourierStep(state)
        # the request's expiry makes the server drop it: a late answer acts on nothing
        return CourierStep(replace(_problem(state, Problem.UNREACHABLE, state.asked), asked=None))
    if state.door is not None and state.door.status is DoorStatus.OPENING:
        return CourierStep(state)  # the door layer's answer comes within its own window
    timeout = rules.door_timeout if state.stage is Stage.DOOR else rules.idle_timeout
    if idle < timeout:
        return CourierStep(state)
    return _end(state)


def _abandoned(state: CourierState) -> tuple[CourierAction, ...]:
    """A reservation the session leaves unused is journaled; the server's reservation
    lapses at its ``reserved_until`` (the contract has no "release" request)."""
    reservation = state.reservation
    if reservation is None:
        return ()
    door = state.door
    if door is not None and door.door == reservation.door and door.purpose is Purpose.DEPOSIT:
        return ()  # the door stands open for it: its close records the deposit
    detail = f"door {reservation.door} reserved for parcel {reservation.parcel_id} left unused"
    return (CourierAlarm("courier_reservation_unused", reservation.door, detail),)


def _watched(state: CourierState) -> tuple[Watched, ...]:
    use = state.door
    if use is None or use.purpose not in (Purpose.DEPOSIT, Purpose.COLLECT):
        return ()
    if use.purpose is Purpose.DEPOSIT:
        reservation = state.reservation
        if reservation is None or reservation.door != use.door:
            return ()
        return (Watched(use.door, use.purpose, state.courier_id, (reservation.parcel_id,)),)
    parcels = next((d.parcels for d in state.expired if d.door == use.door), ())
    ids = tuple(p.parcel_id for p in parcels)
    return (Watched(use.door, use.purpose, state.courier_id, ids, state.session),)


def watched_closed(watched: Watched, occupied: bool | None) -> tuple[CourierAction, ...]:
    """A watched door closed: record what its session opened it for."""
    if watched.purpose is Purpose.DEPOSIT:
        if occupied is False:
            return ()
        return (RecordDeposit(watched.door, watched.parcel_ids[0], watched.courier_id),)
    if occupied is True or watched.session is None:
        return ()
    session = watched.session
    return tuple(
        AskDesk(FIRE_AND_FORGET, CollectedForReturn(session=session, parcel_id=parcel_id))
        for parcel_id in watched.parcel_ids
    )
