"""The person at the interactive demo's cabinets: whoever a door opened for.

A simulated door opens only on an unlock pulse and closes only by hand, and nobody
stands at the demo's cabinets. :class:`PersonAtTheDoors` stands in: when a door springs
open, the person puts a parcel into an empty compartment or takes the parcel out of a
full one, and closes the door a few seconds later. So a courier's deposit typed on a
kiosk page is recorded, and a recipient's door closes after the pickup. The scripted
story (``--scenario``) does all of this itself and does not use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from simulators.board import DoorChange
from simulators.cabinet import SimulatedCabinet

#: how long the person takes between the door springing open and closing it
DWELL_SECONDS: Final = 4.0


class PersonAtTheDoors:
    """Fills or empties every door that opens on ``cabinet`` and closes it after a dwell."""

    def __init__(self, cabinet: SimulatedCabinet, dwell: float = DWELL_SECONDS) -> None:
        self._cabinet = cabinet
        self._dwell = dwell
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> PersonAtTheDoors:
        self._unsubscribe = self._cabinet.bus.subscribe(self._on_change)
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_change(self, change: DoorChange) -> None:
        if not change.is_open:
            return
        door = self._cabinet.bus.board(change.board).door(change.lock)
        if door.item_inside:
            door.remove_item()
        else:
            door.put_item()
        self._cabinet.bus.schedule_close(change.board, change.lock, self._dwell)
