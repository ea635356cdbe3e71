"""What the kiosk needs to serve couriers: the courier desk and the deposit record.

The courier desk is the server's side of a courier session: the kiosk hands it one
operation of :mod:`locker_contract.desk` and gets the answer back, or
:class:`~locker_agent.errors.CourierDeskUnreachable`. The real one travels over the
cabinet's MQTT link (``req`` / ``res``); tests use :class:`simulators.courier_desk.
ServerCourierDesk`, the server's own desk on a database of its own, without the link.

:class:`CourierHooks` is the one hook a runtime passes to
:class:`~locker_agent.kiosk.service.KioskService` to turn the courier key on: the desk,
the function that journals a ``deposit`` once a door opened and closed with a parcel
(the transport's journaling), and, optionally, the cabinet's own copy of its
reservations for a deposit while the server is out of reach. Without it the kiosk has
no courier key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from locker_agent.kiosk.courier import RecordDeposit
from locker_contract.desk import Answer, DoorReserved, Operation


class CourierDesk(Protocol):
    """The server's courier desk, as the kiosk asks it (blocking; one call at a time)."""

    def ask(self, operation: Operation) -> Answer:
        """The server's answer to ``operation`` (a refusal is an answer, not an error).

        Raises :class:`~locker_agent.errors.CourierDeskUnreachable` when no answer came.
        """
        ...


def no_offline_reservations(_tracking_number: str) -> DoorReserved | None:
    return None


@dataclass(frozen=True, slots=True)
class CourierHooks:
    """The courier desk and what records a deposit; given to the kiosk, it offers couriers
    their key on the home screen."""

    desk: CourierDesk
    #: journal the ``deposit`` event (called once per door that opened and closed)
    record_deposit: Callable[[RecordDeposit], None]
    #: the cabinet's reservation for a scanned tracking number, asked only when the
    #: server cannot be reached (the reservations sync keeps that copy); None: none
    offline_reservation: Callable[[str], DoorReserved | None] = no_offline_reservations
