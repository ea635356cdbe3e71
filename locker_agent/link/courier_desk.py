"""The courier desk at the cabinet: what the kiosk's courier screens call.

Two halves:

* **Questions for the server** (:class:`CourierDesk` ``sign_in`` … ``collected_for_return``):
  one signed request/reply each through the :class:`~locker_agent.link.requests.RequestClient`,
  answered with the contract's typed answer (``SignedIn``, ``DoorReserved``,
  ``ExpiredList``, ``Done``) or a ``RequestRefused`` whose ``message`` the screen can show.
  When the link is down or the server silent they raise
  :class:`~locker_agent.link.errors.ServerUnreachable`: "registration needs the server".
* **What the cabinet decides itself.** The server keeps the cabinet supplied with its
  reserved doors (signed ``reservations`` syncs, :meth:`CourierDesk.apply_reservations`).
  :meth:`CourierDesk.parcel_for_deposit` asks the server first and, when it is out of
  reach, finds the scanned label among those reservations (by the tracking number's
  keyed hash and the courier's carrier), so an announced parcel can still be deposited.
  :meth:`CourierDesk.deposit_confirmed` journals the ``deposit`` event once the door has
  opened and closed again with the parcel inside — exactly once per parcel, online or
  not; the server applies it (and notifies the recipient) when it arrives.

The courier code is handed to the server and never stored or logged here.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from locker_agent.journal import Journal, JournalTx, to_contract_event, utc_text
from locker_agent.link.errors import ServerUnreachable, UnexpectedAnswer
from locker_agent.link.requests import RequestClient
from locker_contract import DepositData, ReservationEntry, ReservationSync, tracking_hash
from locker_contract.desk import (
    Answer,
    CollectedForReturn,
    CourierSignIn,
    DepositLookup,
    Done,
    DoorBroken,
    DoorReserved,
    ExpiredList,
    ExpiredParcels,
    LargerDoor,
    Operation,
    RecipientKey,
    RegisterParcel,
    RequestRefused,
    SignedIn,
)

logger = logging.getLogger(__name__)

#: journal meta key: version of the reservations sync the list came from
_VERSION = "reservations_version"

AnswerT = TypeVar("AnswerT", bound=BaseModel)


class DepositRecord(enum.StrEnum):
    """What :meth:`CourierDesk.deposit_confirmed` did."""

    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    DOOR_NOT_CLOSED = "door_not_closed"
    COMPARTMENT_EMPTY = "compartment_empty"


def _reservation_row(entry: ReservationEntry) -> tuple[object, ...]:
    until = utc_text(entry.reserved_until)
    return (entry.parcel_id, entry.carrier_id, entry.door, entry.size, entry.tracking_hash, until)


class CourierDesk:
    """The kiosk's courier operations: server questions, offline reservations, deposits."""

    def __init__(
        self,
        requests: RequestClient,
        journal: Journal,
        *,
        cabinet_key: bytes,
        server_now: Callable[[], datetime],
        door_closed: Callable[[int], bool],
        journaled: Callable[[], None] = lambda: None,
    ) -> None:
        """``cabinet_key``: the cabinet's pickup key (tracking numbers are hashed with it);
        ``door_closed``: whether the door sensor reads the door closed now;
        ``journaled``: called after each commit, so the runtime publishes it."""
        self.requests = requests
        self._journal = journal
        self._cabinet_key = cabinet_key
        self._server_now = server_now
        self._door_closed = door_closed
        self._journaled = journaled

    # -- questions for the server -----------------------------------------------------

    def sign_in(
        self, *, code: str | None = None, badge: str | None = None
    ) -> SignedIn | RequestRefused:
        """Sign in with a typed courier code or a badge QR (exactly one of them)."""
        if (code is None) == (badge is None):
            raise ValueError("give a courier code or a badge, not both or neither")
        credential = "code" if code is not None else "badge"
        secret = (code if code is not None else badge) or ""
        operation = CourierSignIn(credential=credential, secret=secret.strip())
        return self._ask(operation, SignedIn)

    def parcel_for_deposit(
        self, courier: SignedIn, tracking_number: str, *, size: str | None = None
    ) -> DoorReserved | RequestRefused:
        """The door for a scanned or typed parcel: asked of the server, or — when it is out
        of reach — found among the reservations the cabinet holds. Still unreachable and
        not held here: ``ServerUnreachable``."""
        number = tracking_number.strip()
        operation = DepositLookup(session=courier.session, tracking_number=number, size=size)
        try:
            return self._ask(operation, DoorReserved)
        except UnexpectedAnswer:
            raise
        except ServerUnreachable:
            held = self.held_reservation(courier.carrier_id, number)
            if held is None:
                raise
            logger.info(
                "server unreachable: parcel %d found among the reservations", held.parcel_id
            )
            return held

    def register_parcel(
        self,
        courier: SignedIn,
        tracking_number: str,
        *,
        recipient: RecipientKey,
        size: str,
    ) -> DoorReserved | RequestRefused:
        """Register an unannounced parcel (needs the server) and reserve its door."""
        operation = RegisterParcel(
            session=courier.session,
            tracking_number=tracking_number.strip(),
            recipient=recipient,
            size=size,
        )
        return self._ask(operation, DoorReserved)

    def larger_door(
        self, courier: SignedIn, parcel_id: int, *, size: str
    ) -> DoorReserved | RequestRefused:
        """Give up the parcel's door for one of ``size`` (the old one stays if none is free)."""
        operation = LargerDoor(session=courier.session, parcel_id=parcel_id, size=size)
        return self._ask(operation, DoorReserved)

    def report_broken_door(
        self, courier: SignedIn, door: int, reason: str
    ) -> Done | RequestRefused:
        operation = DoorBroken(session=courier.session, door=door, reason=reason[:200])
        return self._ask(operation, Done)

    def expired_parcels(self, courier: SignedIn) -> ExpiredList | RequestRefused:
        """The expired parcels here that the courier's carrier takes back."""
        return self._ask(ExpiredParcels(session=courier.session), ExpiredList)

    def collected_for_return(self, courier: SignedIn, parcel_id: int) -> Done | RequestRefused:
        """Call once the expired parcel's door has opened and closed again."""
        operation = CollectedForReturn(session=courier.session, parcel_id=parcel_id)
        return self._ask(operation, Done)

    def _ask(self, operation: Operation, expected: type[AnswerT]) -> AnswerT | RequestRefused:
        answer: Answer = self.requests.ask(operation)
        if isinstance(answer, expected | RequestRefused):
            return answer
        raise UnexpectedAnswer(f"{operation.op} was answered with {answer.result}")

    # -- reservations held at the cabinet -----------------------------------------------

    def apply_reservations(self, sync: ReservationSync) -> bool:
        """Replace the held reservations with a newer signed list; False if not newer."""
        with self._journal.transaction() as tx:
            if sync.version <= tx.get(_VERSION, -1):
                logger.warning("reservations version %d ignored: not newer", sync.version)
                return False
            tx.execute("DELETE FROM reservations")
            tx.executemany(
                "INSERT INTO reservations (parcel_id, carrier_id, door, size, tracking_hash,"
                " reserved_until) VALUES (?, ?, ?, ?, ?, ?)",
                [_reservation_row(entry) for entry in sync.entries],
            )
            tx.put(_VERSION, sync.version)
        return True

    def held_reservation(self, carrier_id: int, tracking_number: str) -> DoorReserved | None:
        """The live reservation of the carrier's parcel with this tracking number, if the
        cabinet holds one whose deposit it has not journaled yet."""
        digest = tracking_hash(self._cabinet_key, tracking_number.strip())
        now = utc_text(self._server_now())
        with self._journal.transaction() as tx:
            rows = tx.query(
                "SELECT parcel_id, door, size, reserved_until FROM reservations"
                " WHERE tracking_hash = ? AND carrier_id = ? AND reserved_until > ?"
                " AND parcel_id NOT IN (SELECT parcel_id FROM deposits_reported)",
                (digest, carrier_id, now),
            )
        if len(rows) != 1:
            return None
        parcel_id, door, size, until = rows[0]
        return DoorReserved(
            parcel_id=parcel_id, door=door, size=size, reserved_until=datetime.fromisoformat(until)
        )

    # -- the deposit --------------------------------------------------------------------

    def deposit_confirmed(
        self,
        *,
        parcel_id: int,
        door: int,
        courier_id: int | None,
        occupied: bool | None = None,
    ) -> DepositRecord:
        """Journal the ``deposit`` of ``parcel_id`` behind ``door``, once.

        Call it after the door opened and closed again; ``occupied`` is the item sensor's
        reading where the board has one (``None`` without). A door not reading closed,
        or a compartment reading empty, journals nothing: the kiosk asks the courier to
        try again. A second call for the same parcel journals nothing either.
        """
        if not self._door_closed(door):
            return DepositRecord.DOOR_NOT_CLOSED
        if occupied is False:
            return DepositRecord.COMPARTMENT_EMPTY
        with self._journal.transaction() as tx:
            recorded = self._journal_once(tx, parcel_id, door, courier_id)
        if recorded:
            self._journaled()
            return DepositRecord.RECORDED
        return DepositRecord.ALREADY_RECORDED

    def deposit_event_id(self, parcel_id: int) -> str | None:
        """The id of the ``deposit`` event journaled for ``parcel_id``; None: none yet."""
        with self._journal.transaction() as tx:
            rows = tx.query(
                "SELECT event_id FROM deposits_reported WHERE parcel_id = ?", (parcel_id,)
            )
        return str(rows[0][0]) if rows else None

    @staticmethod
    def _journal_once(tx: JournalTx, parcel_id: int, door: int, courier_id: int | None) -> bool:
        if tx.query("SELECT 1 FROM deposits_reported WHERE parcel_id = ?", (parcel_id,)):
            return False
        courier = None if courier_id is None else str(courier_id)
        data = DepositData(parcel_id=parcel_id, courier=courier).model_dump(exclude_none=True)
        # checked against the contract now, so it can never block the outbox
        event = to_contract_event(tx.append("deposit", door=door, data=data))
        tx.execute(
            "INSERT INTO deposits_reported (parcel_id, event_id) VALUES (?, ?)",
            (parcel_id, event.event_id),
        )
        tx.execute("DELETE FROM reservations WHERE parcel_id = ?", (parcel_id,))
        return True
