"""Moves nobody watched, and the boards' alarm, as the journal records them.

The door controller calls a door ``found`` when it reads it for the first time after a
gap: its first poll after the agent started (the agent was down, restarting, crashed)
or its board answering again. The state read then is compared with the last state the
journal holds as really read (``doors_last_seen``), in the same transaction that
updates the door snapshot:

* the same state: nothing is reported. A door that was closed and reads closed again
  may have been opened and closed during the gap; nothing can tell, so nothing is
  claimed;
* a different state: ``door.opened`` / ``door.closed`` with ``{"observed": false}``
  (the move happened at some time during the gap; ``device_time`` is when it was
  found) and an ``alarm`` ``door_moved_unobserved`` on that door;
* no state ever read (a new journal): nothing to compare with, nothing reported.

``unknown`` is never compared and never reported as open or closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from locker_agent.boards import DoorState
from locker_agent.doors import BoardAlarm, DoorEvent, DoorEventKind
from locker_agent.journal import JournalTx, to_contract_event
from locker_contract import AlarmData, AlarmKind, DoorMoveData, EventType

_MOVE_TYPES: Final = {"open": EventType.DOOR_OPENED, "closed": EventType.DOOR_CLOSED}
#: door events that are an observed move into a known state
_SEEN: Final = {DoorEventKind.OPENED: "open", DoorEventKind.CLOSED: "closed"}


@dataclass(frozen=True, slots=True)
class UnobservedMove:
    """A door found in another state than it was last seen in."""

    door: int
    last_seen: str
    found: str

    @property
    def event_type(self) -> str:
        return _MOVE_TYPES[self.found]

    def event_data(self) -> dict[str, Any]:
        detail = f"found {self.found} after a gap in observation; last seen {self.last_seen}"
        return DoorMoveData(observed=False, detail=detail).model_dump(exclude_none=True)

    def alarm_data(self) -> dict[str, Any]:
        detail = (
            f"door {self.door} found {self.found}, last seen {self.last_seen}:"
            " it moved while nobody was watching"
        )
        alarm = AlarmData(kind=AlarmKind.DOOR_MOVED_UNOBSERVED, detail=detail)
        return alarm.model_dump(exclude_defaults=True)


def unobserved_move(door: int, last_seen: str | None, found: DoorState) -> UnobservedMove | None:
    """The move a door found in ``found`` must have made since it was ``last_seen``, or
    None: same state (a move and its reverse cannot be told from no move), an unknown
    state, or never seen before."""
    if found is DoorState.UNKNOWN or last_seen is None or last_seen == found.value:
        return None
    return UnobservedMove(door, last_seen, found.value)


def record_found(tx: JournalTx, event: DoorEvent) -> UnobservedMove | None:
    """Journal a ``found`` door: snapshot, last seen state, and the move if it made one."""
    found = event.state
    if found is None or found is DoorState.UNKNOWN:
        return None
    move = unobserved_move(event.door, tx.last_seen(event.door), found)
    tx.set_door(event.door, found.value, event.occupied)
    tx.set_last_seen(event.door, found.value)
    if move is not None:
        _append(tx, move.event_type, event, move.event_data())
        _append(tx, EventType.ALARM, event, move.alarm_data())
    return move


def record_seen(tx: JournalTx, event: DoorEvent) -> None:
    """Remember the state an observed ``opened`` / ``closed`` left the door in."""
    state = _SEEN.get(event.kind)
    if state is not None:
        tx.set_last_seen(event.door, state)


def record_board_alarm(tx: JournalTx, alarm: BoardAlarm) -> None:
    """The bus's ``board_not_answering`` alarm, raised or cleared (no door: the bus)."""
    data = AlarmData(
        kind=AlarmKind.BOARD_NOT_ANSWERING, detail=alarm.detail[:200], cleared=not alarm.raised
    )
    to_contract_event(
        tx.append(
            EventType.ALARM, data=data.model_dump(exclude_defaults=True), device_time=alarm.wall
        )
    )


def _append(tx: JournalTx, event_type: str, event: DoorEvent, data: dict[str, Any]) -> None:
    """Checked against the contract now, so it can never block the outbox."""
    to_contract_event(tx.append(event_type, door=event.door, data=data, device_time=event.wall))
