"""The kiosk's pickup flow as a pure state machine: (state, input) → (state, actions).

Nothing here does I/O. A driver (:mod:`locker_agent.kiosk.service`) feeds inputs — key
presses, scanned texts, the pickup desk's decisions, door results and door events, link
and reader health, clock ticks — into :meth:`KioskMachine.step`, carries out the
actions it returns (check a credential with the desk, open a granted door, journal an
alarm) and feeds their results back as inputs. What the screen shows is a pure function
of the state (:meth:`KioskMachine.screen`).

Phases of a pickup::

    HOME ─digit─▶ TYPING ─8th digit / enter─▶ CHECKING ─Granted─▶ DOORS ─all closed─▶ THANKS
      │                                         │                  (one door after    │
      └──────────── a pickup QR (LKR1) ────────▶│                   another)          │
                                                └─Refused─▶ REFUSED                   │
    TYPING / REFUSED idle, DOORS idle once every door is settled, THANKS shown ───▶ HOME

The machine never asks for a door twice: each door of a pickup is requested once, after
the desk has granted (and journaled) it, and only after the previous door's result is
in. It shows a door as open or closed only when the door layer saw it so.

A courier's session (``COURIER``, entered by the home screen's courier key when the
kiosk has a courier desk) is its own machine, :mod:`locker_agent.kiosk.courier`: this
machine hands it the session's inputs and ticks, and keeps the doors an ended session
left open (``watch``), so their close is still recorded whatever the screen shows then.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Literal, NamedTuple, TypeAlias

from locker_agent.doors import OpenOutcome
from locker_agent.kiosk.courier import (
    CourierAction,
    CourierKey,
    CourierPress,
    CourierRules,
    CourierState,
    CourierStep,
    DeskAnswered,
    DeskUnreachable,
    ReasonChosen,
    SizeChosen,
    Stage,
    TextEntered,
    Watched,
    courier_idle,
    courier_step,
    door_closed,
    door_not_opened,
    door_opened,
    presses,
    scanned,
    sizes_offered,
    watched_closed,
)
from locker_agent.kiosk.courier import DoorStatus as CourierDoorStatus
from locker_agent.pickup import (
    Credential,
    Decision,
    Granted,
    LockoutStatus,
    NoMatchReason,
    ScannedToken,
    TypedCode,
)
from locker_contract.pickup_qr import QrVerdict, read_pickup_qr

Language: TypeAlias = Literal["zh-CN", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("zh-CN", "en")
DIGITS: Final = frozenset("0123456789")
#: the keys of the keypad besides the digits
CONTROL_KEYS: Final = frozenset({"backspace", "clear", "enter", "cancel"})
Reader: TypeAlias = Literal["camera", "scanner"]


class Phase(StrEnum):
    HOME = "home"
    TYPING = "typing"
    CHECKING = "checking"
    DOORS = "doors"
    REFUSED = "refused"
    THANKS = "thanks"
    COURIER = "courier"


class DoorStatus(StrEnum):
    #: granted later: doors open one after another
    WAITING = "waiting"
    #: asked to open; the door sensor has not answered yet
    OPENING = "opening"
    #: the sensor saw it open
    OPEN = "open"
    #: the sensor saw it close again
    CLOSED = "closed"
    #: the sensor did not see it open (jammed, or the door refused to open so often)
    NOT_OPENED = "not_opened"
    #: the board did not answer: whether the door opened is not known
    UNKNOWN = "unknown"
    #: the allow-list no longer held its parcels when its turn came (nothing was sent)
    WITHDRAWN = "withdrawn"


class Refusal(StrEnum):
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    LOCKED_OUT = "locked_out"
    #: the cabinet has not received its allow-list yet
    NOT_READY = "not_ready"


class Hint(StrEnum):
    CODE_TOO_SHORT = "code_too_short"


_REFUSALS: Final[dict[NoMatchReason, Refusal]] = {
    "no_credential": Refusal.WRONG_CODE,
    "no_match": Refusal.WRONG_CODE,
    "expired": Refusal.EXPIRED,
    "locked_out": Refusal.LOCKED_OUT,
    "no_list": Refusal.NOT_READY,
}
_OPEN_FAILURES: Final = {
    OpenOutcome.JAMMED: DoorStatus.NOT_OPENED,
    OpenOutcome.RATE_LIMITED: DoorStatus.NOT_OPENED,
    OpenOutcome.OUTCOME_UNKNOWN: DoorStatus.UNKNOWN,
}
#: statuses after which a door's turn is over
_SETTLED: Final = frozenset(
    {
        DoorStatus.OPEN,
        DoorStatus.CLOSED,
        DoorStatus.NOT_OPENED,
        DoorStatus.UNKNOWN,
        DoorStatus.WITHDRAWN,
    }
)


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPress:
    """A key of the keypad (on screen or keyboard): ``"0"``–``"9"`` or a control key."""

    key: str = field(repr=False)  # a digit of someone's code

    def __post_init__(self) -> None:
        if self.key not in DIGITS and self.key not in CONTROL_KEYS:
            raise ValueError("not a kiosk key")


@dataclass(frozen=True, slots=True)
class ChooseLanguage:
    language: Language


@dataclass(frozen=True, slots=True)
class Scanned:
    """A text read by the camera or the scanner module (any text, ours or not)."""

    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Decided:
    """The pickup desk's answer to :class:`CheckCredential`; ``lockout`` with a refusal."""

    decision: Decision
    lockout: LockoutStatus | None = None


@dataclass(frozen=True, slots=True)
class DoorOpened:
    """The door asked for by :class:`OpenDoor` was seen open."""

    door: int


@dataclass(frozen=True, slots=True)
class DoorNotOpened:
    """The door asked for by :class:`OpenDoor` was not seen open."""

    door: int
    outcome: OpenOutcome


@dataclass(frozen=True, slots=True)
class DoorClosed:
    """The door layer saw a door close (its ``closed`` event follows an observed open).

    ``occupied``: what the compartment's item sensor read in the reply that showed the door
    closed, on doors configured with one (``item_sensor``); None elsewhere.
    """

    door: int
    occupied: bool | None = None


@dataclass(frozen=True, slots=True)
class LinkChanged:
    up: bool


@dataclass(frozen=True, slots=True)
class ReaderChanged:
    """The camera or the scanner module stopped (``up`` False) or works again."""

    reader: Reader
    up: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock: monotonic seconds."""

    now: float


KioskInput: TypeAlias = (
    KeyPress
    | ChooseLanguage
    | Scanned
    | Decided
    | DoorOpened
    | DoorNotOpened
    | DoorClosed
    | LinkChanged
    | ReaderChanged
    | Tick
    | CourierPress
    | TextEntered
    | SizeChosen
    | ReasonChosen
    | DeskAnswered
    | DeskUnreachable
)


# -- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckCredential:
    """Ask the pickup desk; answer with :class:`Decided`. ``door``: claim that door."""

    credential: Credential
    door: int | None = None


@dataclass(frozen=True, slots=True)
class OpenDoor:
    """Open the granted door (once); answer with :class:`DoorOpened` / :class:`DoorNotOpened`."""

    granted: Granted


@dataclass(frozen=True, slots=True)
class JournalAlarm:
    """Journal an ``alarm`` event (or, ``cleared``, its end)."""

    kind: str
    detail: str | None = None
    cleared: bool = False


KioskAction: TypeAlias = CheckCredential | OpenDoor | JournalAlarm | CourierAction


# -- state and screen ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KioskRules:
    """How the flow behaves; passed in, never read from a global."""

    code_length: int = 8
    #: seconds without a key or a scan before typing or a refusal goes back home
    idle_timeout: float = 30.0
    #: seconds the thank-you screen stays
    thanks_timeout: float = 5.0
    #: seconds the door screen stays after the last door event once every door is settled
    doors_timeout: float = 90.0
    default_language: Language = "zh-CN"
    #: whom to call (shown on refusals and door failures); None: the label on the cabinet
    help_contact: str | None = None
    #: the courier session's rules; None: no courier desk, no courier key on the screen
    courier: CourierRules | None = None


@dataclass(frozen=True, slots=True)
class DoorProgress:
    door: int
    status: DoorStatus


@dataclass(frozen=True, slots=True)
class KioskState:
    phase: Phase = Phase.HOME
    language: Language = "zh-CN"
    #: the clock at the last tick, and at the last thing the person (or a door) did
    now: float = 0.0
    last_activity: float = 0.0
    digits: str = field(default="", repr=False)
    hint: Hint | None = None
    #: the credential of this session, until home; a repeat of it is not acted on again
    credential: Credential | None = field(default=None, repr=False)
    doors: tuple[DoorProgress, ...] = ()
    #: the door whose claim is with the desk
    claiming: int | None = None
    refusal: Refusal | None = None
    attempts_left: int | None = None
    locked_minutes: int | None = None
    link_up: bool = True
    readers_down: frozenset[Reader] = frozenset()
    #: the courier's session, in phase COURIER
    courier: CourierState | None = None
    #: doors an ended courier session left open: their close still records the deposit
    watch: tuple[Watched, ...] = ()


@dataclass(frozen=True, slots=True)
class Screen:
    """What the kiosk shows: no code or token, only how many digits were typed."""

    phase: Phase
    language: Language
    digits_entered: int
    code_length: int
    hint: Hint | None
    doors: tuple[DoorProgress, ...]
    refusal: Refusal | None
    attempts_left: int | None
    locked_minutes: int | None
    help_contact: str | None
    link_up: bool
    readers_down: frozenset[Reader]
    #: key presses and scans are not taken now (a check or a door is under way)
    busy: bool
    #: the home screen offers the courier key
    courier_entry: bool = False
    #: the courier's session, in phase COURIER (its session token stays out of ``repr``)
    courier: CourierState | None = None
    #: the request the session waits for (its ``op``), the buttons and sizes it offers
    courier_asking: str | None = None
    courier_keys: frozenset[CourierKey] = frozenset()
    courier_sizes: tuple[str, ...] = ()


class Step(NamedTuple):
    state: KioskState
    actions: tuple[KioskAction, ...] = ()


# -- the machine --------------------------------------------------------------------------


class KioskMachine:
    """The pickup flow: :meth:`step` is pure, so every flow is a row of a test table."""

    def __init__(self, rules: KioskRules | None = None) -> None:
        self.rules = rules or KioskRules()

    def initial(self, now: float = 0.0) -> KioskState:
        return KioskState(language=self.rules.default_language, now=now, last_activity=now)

    def step(self, state: KioskState, event: KioskInput) -> Step:
        """The one place inputs are dispatched (a courier session's go to its machine)."""
        if isinstance(event, DoorClosed) and _watched(state, event.door):
            return _watched_door_closed(state, event)
        if state.phase is Phase.COURIER and state.courier is not None:
            courier = self._courier(state, state.courier, event)
            if courier is not None:
                return courier
        match event:
            case KeyPress():
                return self._key(state, event)
            case Scanned():
                return self._scanned(state, event)
            case Decided():
                return self._decided(state, event)
            case DoorOpened():
                return self._door_opened(state, event)
            case DoorNotOpened():
                return self._door_not_opened(state, event)
            case DoorClosed():
                return self._door_closed(state, event)
            case Tick():
                return self._tick(state, event)
            case CourierPress():
                return self._courier_key(state, event)
            case TextEntered() | SizeChosen() | ReasonChosen() | DeskAnswered() | DeskUnreachable():
                return Step(state)  # for a courier session that is over
            case ChooseLanguage():
                return Step(replace(state, language=event.language, last_activity=state.now))
            case LinkChanged():
                return Step(replace(state, link_up=event.up))
            case ReaderChanged():
                return _reader(state, event)

    def screen(self, state: KioskState) -> Screen:
        return Screen(
            phase=state.phase,
            language=state.language,
            digits_entered=len(state.digits),
            code_length=self.rules.code_length,
            hint=state.hint,
            doors=state.doors,
            refusal=state.refusal,
            attempts_left=state.attempts_left,
            locked_minutes=state.locked_minutes,
            help_contact=self.rules.help_contact,
            link_up=state.link_up,
            readers_down=state.readers_down,
            busy=_busy(state),
            courier_entry=self.rules.courier is not None,
            **self._courier_screen(state.courier),
        )

    def _courier_screen(self, courier: CourierState | None) -> dict[str, Any]:
        if courier is None:
            return {}
        return {
            # the request may hold the courier's secret: only its name is shown
            "courier": replace(courier, asked=None),
            "courier_asking": None if courier.asked is None else courier.asked.op,
            "courier_keys": presses(courier),
            "courier_sizes": sizes_offered(courier, self.rules.courier or CourierRules()),
        }

    # -- the courier ----------------------------------------------------------------------

    def _courier_key(self, state: KioskState, event: CourierPress) -> Step:
        """The courier key on the home screen starts a session (when there is a desk)."""
        if event.key is not CourierKey.COURIER or self.rules.courier is None:
            return Step(state)
        if state.phase is not Phase.HOME:
            return Step(state)
        return Step(_fresh(state, Phase.COURIER, courier=CourierState()))

    def _courier(self, state: KioskState, courier: CourierState, event: KioskInput) -> Step | None:
        """The session's answer to ``event``; None: not a session input (the kiosk's own)."""
        rules = self.rules.courier or CourierRules()
        step: CourierStep
        match event:
            case CourierPress() | TextEntered() | SizeChosen() | ReasonChosen():
                step = courier_step(courier, event, rules)
            case DeskAnswered() | DeskUnreachable():
                step = courier_step(courier, event, rules)
            case Scanned():
                step = scanned(courier, event.text)
            case KeyPress(key="cancel"):
                step = courier_step(courier, CourierPress(_cancel_key(courier)), rules)
            case KeyPress() | Decided():
                return Step(state)  # the keypad and pickups wait for the session to end
            case DoorOpened():
                step = door_opened(courier, event.door)
            case DoorNotOpened():
                step = door_not_opened(courier, event.door, event.outcome)
            case DoorClosed():
                step = door_closed(courier, event.door, event.occupied)
            case Tick():
                idle = event.now - state.last_activity
                return self._courier_moved(
                    replace(state, now=event.now),
                    courier_idle(courier, idle, rules),
                    activity=False,
                )
            case _:
                return None
        return self._courier_moved(state, step, activity=True)

    def _courier_moved(self, state: KioskState, step: CourierStep, *, activity: bool) -> Step:
        actions: tuple[KioskAction, ...] = step.actions
        watch = state.watch + step.watch
        if step.state is None:  # the session is over
            return Step(_fresh(state, Phase.HOME, watch=watch), actions)
        moved = step.state != state.courier or activity
        last = state.now if moved else state.last_activity
        return Step(replace(state, courier=step.state, watch=watch, last_activity=last), actions)

    # -- the person ---------------------------------------------------------------------

    def _key(self, state: KioskState, event: KeyPress) -> Step:
        if _busy(state):
            return Step(state)
        state = replace(state, last_activity=state.now, hint=None)
        if event.key in DIGITS:
            return self._digit(state, event.key)
        if event.key == "cancel":
            return Step(self._home(state))
        if state.phase is not Phase.TYPING:
            # enter (or another key) on a result screen: done with it
            home = event.key == "enter" and state.phase is not Phase.HOME
            return Step(self._home(state) if home else state)
        if event.key == "backspace":
            return Step(replace(state, digits=state.digits[:-1]))
        if event.key == "clear":
            return Step(replace(state, digits=""))
        return self._enter(state)

    def _digit(self, state: KioskState, digit: str) -> Step:
        typed = state.digits if state.phase is Phase.TYPING else ""
        typed += digit
        if len(typed) >= self.rules.code_length:
            return _submit(state, TypedCode(typed))
        return Step(_fresh(state, Phase.TYPING, digits=typed, credential=state.credential))

    def _enter(self, state: KioskState) -> Step:
        if len(state.digits) < self.rules.code_length:
            return Step(replace(state, hint=Hint.CODE_TOO_SHORT))
        return _submit(state, TypedCode(state.digits))

    def _scanned(self, state: KioskState, event: Scanned) -> Step:
        reading = read_pickup_qr(event.text)
        if reading.verdict is not QrVerdict.PICKUP or reading.token is None:
            return Step(state)  # not ours or misread: ignored, never a wrong attempt
        if _busy(state) or _same_token(state.credential, reading.token):
            return Step(state)  # still handling it, or already handled in this session
        return _submit(replace(state, last_activity=state.now), ScannedToken(reading.token))

    # -- the desk -------------------------------------------------------------------------

    def _decided(self, state: KioskState, event: Decided) -> Step:
        decision = event.decision
        if state.phase is Phase.CHECKING:
            if isinstance(decision, Granted):
                return _first_door(state, decision)
            return Step(self._refused(state, decision.reason, event.lockout))
        if state.phase is Phase.DOORS and state.claiming is not None:
            return self._claimed(state, state.claiming, decision)
        return Step(state)  # an answer nobody is waiting for any more

    def _refused(
        self, state: KioskState, reason: NoMatchReason, lockout: LockoutStatus | None
    ) -> KioskState:
        locked = lockout is not None and lockout.locked_for.total_seconds() > 0
        return replace(
            state,
            phase=Phase.REFUSED,
            refusal=_REFUSALS[reason],
            attempts_left=None if lockout is None else lockout.attempts_left,
            locked_minutes=(
                max(1, math.ceil(lockout.locked_for.total_seconds() / 60))
                if locked and lockout is not None
                else None
            ),
            last_activity=state.now,
        )

    def _claimed(self, state: KioskState, door: int, decision: Decision) -> Step:
        state = replace(state, claiming=None)
        if isinstance(decision, Granted) and decision.door == door:
            granted = Granted(decision.door, decision.parcel_ids)
            return Step(_with_door(state, door, DoorStatus.OPENING), (OpenDoor(granted),))
        return self._next_door(_with_door(state, door, DoorStatus.WITHDRAWN))

    # -- the doors ------------------------------------------------------------------------

    def _door_opened(self, state: KioskState, event: DoorOpened) -> Step:
        status = _status(state, event.door)
        if status is DoorStatus.OPENING:
            return self._next_door(_with_door(state, event.door, DoorStatus.OPEN))
        if status is DoorStatus.CLOSED:  # its close was seen before the open result came
            return self._next_door(state)
        return Step(state)

    def _door_not_opened(self, state: KioskState, event: DoorNotOpened) -> Step:
        if _status(state, event.door) is not DoorStatus.OPENING:
            return Step(state)
        failed = _OPEN_FAILURES.get(event.outcome, DoorStatus.NOT_OPENED)
        return self._next_door(_with_door(state, event.door, failed))

    def _door_closed(self, state: KioskState, event: DoorClosed) -> Step:
        if _status(state, event.door) not in (DoorStatus.OPEN, DoorStatus.OPENING):
            return Step(state)  # a door of someone else, or one we never saw open
        closed = _with_door(state, event.door, DoorStatus.CLOSED)
        return Step(_all_closed(replace(closed, last_activity=state.now)))

    def _next_door(self, state: KioskState) -> Step:
        """The previous door's turn is over: claim the next waiting door, if any."""
        state = replace(state, last_activity=state.now)
        waiting = [p.door for p in state.doors if p.status is DoorStatus.WAITING]
        in_flight = state.claiming is not None or _status_in(state, DoorStatus.OPENING)
        if in_flight or not waiting or state.credential is None:
            return Step(_all_closed(state))
        claim = CheckCredential(state.credential, door=waiting[0])
        return Step(replace(state, claiming=waiting[0]), (claim,))

    # -- time -----------------------------------------------------------------------------

    def _tick(self, state: KioskState, event: Tick) -> Step:
        state = replace(state, now=event.now)
        idle = state.now - state.last_activity
        if _busy(state) or idle < self._timeout(state.phase):
            return Step(state)
        if state.phase is Phase.HOME:
            return Step(replace(state, language=self.rules.default_language, hint=None))
        return Step(self._home(state))

    def _timeout(self, phase: Phase) -> float:  # of the pickup phases
        if phase is Phase.THANKS:
            return self.rules.thanks_timeout
        if phase is Phase.DOORS:
            return self.rules.doors_timeout
        return self.rules.idle_timeout

    def _home(self, state: KioskState) -> KioskState:
        """Back to the start: everything of the session forgotten, the language kept
        (it goes back to the default only after the home screen idled)."""
        return _fresh(state, Phase.HOME)


def _fresh(state: KioskState, phase: Phase, **changes: object) -> KioskState:
    """A state for ``phase`` with nothing of the session but what ``changes`` carry."""
    kept = KioskState(
        phase=phase,
        language=state.language,
        now=state.now,
        last_activity=state.now,
        link_up=state.link_up,
        readers_down=state.readers_down,
        watch=state.watch,
    )
    return replace(kept, **changes)  # type: ignore[arg-type]


def _submit(state: KioskState, credential: Credential) -> Step:
    checking = _fresh(state, Phase.CHECKING, credential=credential)
    return Step(checking, (CheckCredential(credential),))


def _first_door(state: KioskState, granted: Granted) -> Step:
    later = (DoorProgress(door, DoorStatus.WAITING) for door in granted.more_doors)
    doors = (DoorProgress(granted.door, DoorStatus.OPENING), *later)
    opening = replace(state, phase=Phase.DOORS, doors=doors, last_activity=state.now)
    return Step(opening, (OpenDoor(Granted(granted.door, granted.parcel_ids)),))


def _all_closed(state: KioskState) -> KioskState:
    """Every door of the pickup opened and closed again: thank the person."""
    if state.doors and all(p.status is DoorStatus.CLOSED for p in state.doors):
        return replace(state, phase=Phase.THANKS, last_activity=state.now)
    return state


def _busy(state: KioskState) -> bool:
    """A check or a door of this pickup is under way: keys and scans wait for it."""
    if state.courier is not None:
        door = state.courier.door
        opening = door is not None and door.status is CourierDoorStatus.OPENING
        return state.courier.stage is Stage.WAITING or opening
    if state.phase is Phase.CHECKING or state.claiming is not None:
        return True
    return any(p.status in (DoorStatus.WAITING, DoorStatus.OPENING) for p in state.doors)


def _status(state: KioskState, door: int) -> DoorStatus | None:
    return next((p.status for p in state.doors if p.door == door), None)


def _status_in(state: KioskState, status: DoorStatus) -> bool:
    return any(p.status is status for p in state.doors)


def _with_door(state: KioskState, door: int, status: DoorStatus) -> KioskState:
    doors = tuple(DoorProgress(p.door, status) if p.door == door else p for p in state.doors)
    return replace(state, doors=doors)


def _same_token(credential: Credential | None, token: str) -> bool:
    if not isinstance(credential, ScannedToken):
        return False
    return hmac.compare_digest(credential.token.encode(), token.encode())


def _reader(state: KioskState, event: ReaderChanged) -> Step:
    """A reader going down is one alarm until it is back (not one per reopen attempt)."""
    down = event.reader in state.readers_down
    if event.up == (not down):
        return Step(state)
    kind = f"{event.reader}_lost"
    if event.up:
        readers = state.readers_down - {event.reader}
        return Step(replace(state, readers_down=readers), (JournalAlarm(kind, cleared=True),))
    readers = state.readers_down | {event.reader}
    alarm = JournalAlarm(kind, detail=event.detail[:200] or None)
    return Step(replace(state, readers_down=readers), (alarm,))


def _cancel_key(courier: CourierState) -> CourierKey:
    """Escape / Cancel: ends the session where it can end, else steps back."""
    if courier.stage in (Stage.SIGN_IN, Stage.SCAN, Stage.EXPIRED):
        return CourierKey.FINISH
    return CourierKey.BACK


def _watched(state: KioskState, door: int) -> bool:
    return any(w.door == door for w in state.watch)


def _watched_door_closed(state: KioskState, event: DoorClosed) -> Step:
    """A door an ended session left open closed: record what it was opened for."""
    watched = next(w for w in state.watch if w.door == event.door)
    rest = tuple(w for w in state.watch if w is not watched)
    actions: tuple[KioskAction, ...] = watched_closed(watched, event.occupied)
    return Step(replace(state, watch=rest), actions)
