"""A courier desk without a server: an in-memory table answering :mod:`locker_contract.desk`.

:class:`FakeCourierDesk` plays the server's side of a courier session for the kiosk
(:class:`locker_agent.kiosk.courier_desk.CourierDesk`): couriers and their codes, the
parcels announced for the cabinet, the free doors by size, a recipient directory with
consent, expired parcels. It answers with the real contract types, keeps what it was
asked (``asked``) and what it did (``broken``, ``collected``, ``reservations``), and
raises :class:`~locker_agent.errors.CourierDeskUnreachable` while ``reachable`` is False::

    desk = FakeCourierDesk(couriers={"4711": 7}, free_doors={"M": [5, 6]})
    desk.announce("SF123", parcel_id=41, size="M")
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from locker_agent.errors import CourierDeskUnreachable
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
    RefusalReason,
    RegisterParcel,
    RequestRefused,
    SignedIn,
)

HOLD = timedelta(minutes=30)


@dataclass
class _Parcel:
    parcel_id: int
    size: str | None
    door: int | None = None


@dataclass
class FakeCourierDesk:
    #: courier code or badge secret → courier id
    couriers: dict[str, int] = field(default_factory=dict)
    #: size → free doors, smallest number first
    free_doors: dict[str, list[int]] = field(default_factory=dict)
    #: e-mail or phone → whether the recipient agreed to locker delivery
    directory: dict[str, bool] = field(default_factory=dict)
    expired: list[ExpiredParcel] = field(default_factory=list)
    reachable: bool = True
    asked: list[Operation] = field(default_factory=list)
    broken: list[tuple[int, str]] = field(default_factory=list)
    collected: list[int] = field(default_factory=list)
    _parcels: dict[str, _Parcel] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def announce(self, tracking_number: str, *, parcel_id: int, size: str | None) -> None:
        """A parcel announced for this cabinet (its door is reserved at the first lookup)."""
        self._parcels[tracking_number] = _Parcel(parcel_id, size)

    def reservations(self) -> dict[int, int]:
        """parcel id → door, for the parcels holding a door now."""
        with self._lock:
            return {p.parcel_id: p.door for p in self._parcels.values() if p.door is not None}

    def ask(self, operation: Operation) -> Answer:
        with self._lock:
            self.asked.append(operation)
            if not self.reachable:
                raise CourierDeskUnreachable("the fake server is switched off")
            if isinstance(operation, CourierSignIn):
                return self._sign_in(operation)
            if operation.session.token not in self._tokens:
                return _refused(RefusalReason.SESSION_INVALID)
            return self._answer(operation)

    def _answer(self, operation: Operation) -> Answer:
        match operation:
            case DepositLookup():
                return self._lookup(operation)
            case RegisterParcel():
                return self._register(operation)
            case LargerDoor():
                return self._larger(operation)
            case DoorBroken():
                self.broken.append((operation.door, operation.reason))
                for doors in self.free_doors.values():
                    if operation.door in doors:
                        doors.remove(operation.door)
                return Done()
            case ExpiredParcels():
                return ExpiredList(parcels=list(self.expired))
            case CollectedForReturn():
                self.collected.append(operation.parcel_id)
                return Done()
            case _:
                return _refused(RefusalReason.WRONG_STATE)

    def _sign_in(self, operation: CourierSignIn) -> Answer:
        courier_id = self.couriers.get(operation.secret)
        if courier_id is None:
            return _refused(RefusalReason.BAD_CREDENTIAL)
        token = hashlib.sha256(f"{courier_id}:{len(self._tokens)}".encode()).hexdigest()
        self._tokens.add(token)
        session = CourierSession(
            courier_id=courier_id, expires_at=datetime.now(UTC) + HOLD, token=token
        )
        return SignedIn(
            courier_id=courier_id,
            carrier_id=1,
            carrier_name="Fake Express",
            display_name=f"Courier {courier_id}",
            session=session,
        )

    def _lookup(self, operation: DepositLookup) -> Answer:
        parcel = self._parcels.get(operation.tracking_number)
        if parcel is None:
            return _refused(RefusalReason.NOT_ANNOUNCED)
        if parcel.door is not None and parcel.size is not None:
            return _reserved(parcel.parcel_id, parcel.door, parcel.size)
        size = operation.size or parcel.size
        if size is None:
            return _refused(RefusalReason.UNKNOWN_SIZE)
        return self._reserve(parcel, size)

    def _register(self, operation: RegisterParcel) -> Answer:
        if operation.tracking_number in self._parcels:
            return _refused(RefusalReason.ALREADY_REGISTERED)
        consent = self.directory.get(operation.recipient.value)
        if consent is None:
            return _refused(RefusalReason.RECIPIENT_UNKNOWN)
        if not consent:
            return _refused(RefusalReason.NO_CONSENT)
        parcel = _Parcel(1000 + len(self._parcels), operation.size)
        answer = self._reserve(parcel, operation.size)
        if isinstance(answer, DoorReserved):
            self._parcels[operation.tracking_number] = parcel
        return answer

    def _larger(self, operation: LargerDoor) -> Answer:
        parcel = next(
            (p for p in self._parcels.values() if p.parcel_id == operation.parcel_id), None
        )
        if parcel is None or parcel.door is None or parcel.size is None:
            return _refused(RefusalReason.UNKNOWN_PARCEL)
        old_door, old_size = parcel.door, parcel.size
        answer = self._reserve(parcel, operation.size)
        if isinstance(answer, DoorReserved) and old_door not in {d for d, _ in self.broken}:
            self.free_doors[old_size].insert(0, old_door)  # released for the next parcel
        return answer

    def _reserve(self, parcel: _Parcel, size: str) -> Answer:
        if size not in self.free_doors:
            return _refused(RefusalReason.UNKNOWN_SIZE)
        if not self.free_doors[size]:
            return _refused(RefusalReason.NO_FREE_DOOR)
        parcel.door, parcel.size = self.free_doors[size].pop(0), size
        return _reserved(parcel.parcel_id, parcel.door, size)


def _reserved(parcel_id: int, door: int, size: str) -> DoorReserved:
    return DoorReserved(
        parcel_id=parcel_id,
        door=door,
        size=size,
        reserved_until=datetime.now(UTC) + HOLD,
    )


def _refused(reason: RefusalReason) -> RequestRefused:
    return RequestRefused(reason=reason, message=reason.value.replace("_", " "))
