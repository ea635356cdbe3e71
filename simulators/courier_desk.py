"""The server's courier desk for agent-side tests: the real service on a database of its own.

:class:`ServerCourierDesk` answers the kiosk's courier operations
(:class:`locker_agent.kiosk.courier_desk.CourierDesk`) with
:func:`locker_server.services.courier_desk.answer_request`, as the server answers a
cabinet's ``req``, without the MQTT link: each operation becomes the contract's
``Request``, crosses the contract's encoding both ways as on the wire, and is carried out
in one transaction on a migrated SQLite database the desk owns. Everything the server
knows is put there by the server's own services (a site, this cabinet with its doors and
sizes, a carrier with couriers and their codes, recipients with or without consent,
announced and expired parcels), and everything a test reads back comes from that
database: doors out of service, free doors, reservations, parcels collected for return.
``reachable = False`` makes :meth:`ServerCourierDesk.ask` raise
:class:`~locker_agent.errors.CourierDeskUnreachable`, as the link does when no answer
comes::

    with ServerCourierDesk(doors={5: "M", 6: "M", 8: "L"}) as desk:
        courier_id = desk.add_courier("471100", name="Wang Lei")
        parcel_id = desk.announce("SF123", size="M")
        # CourierHooks(desk, ...) → the kiosk's questions get the server's answers
        desk.reservations()  # {parcel_id: the door the server's allocation chose}

:class:`FakeCourierDesk` is the same desk behind the constructor of the table-driven fake
it replaced (courier ids, parcel ids and doors named by the test).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, col, select

from locker_agent.errors import CourierDeskUnreachable
from locker_agent.link.requests import DEFAULT_TIMEOUT
from locker_contract import decode, encode, new_envelope, new_message_id
from locker_contract.desk import (
    Answer,
    ExpiredParcel,
    Operation,
    Request,
    RequestMessage,
    UnsignedReply,
    UnsignedReplyMessage,
)
from locker_server.audit import Actor, AuditLog
from locker_server.config import Settings
from locker_server.db import make_engine, migrate, session_scope
from locker_server.keys import load_keys
from locker_server.models import (
    CabinetCreate,
    CarrierCreate,
    Courier,
    CourierCreate,
    Door,
    DoorCreate,
    Occupancy,
    Parcel,
    ParcelState,
    RecipientCreate,
    ServiceState,
    SiteCreate,
)
from locker_server.models.sites import SizeClass
from locker_server.notifications import Notifier
from locker_server.services import (
    Caller,
    DomainDeps,
    courier_desk,
    directory,
    layout,
    outbound,
    parcels,
)
from locker_server.services.cabinets import get_cabinet
from simulators.errors import SimulatorConfigError

#: who set the simulated server up, as its audit log names them
SEEDER: Final = Caller(actor=Actor(type="system", id="simulator"), channel="cli")
#: the recipient of parcels announced without naming one (consents to locker delivery)
ANY_RECIPIENT: Final = "recipient@example.org"
DoorLayout = Mapping[int, str]


class ServerCourierDesk:
    """The server's courier desk for one cabinet, on its own database (close it after use)."""

    def __init__(
        self,
        *,
        doors: DoorLayout | None = None,
        cabinet_code: str = "SIM-CAB-1",
        carrier_name: str = "Sim Express",
    ) -> None:
        """``doors``: door number → size code (S, M, L, XL), the cabinet's doors at the start."""
        folder = Path(tempfile.mkdtemp(prefix="courier-desk-"))
        database = folder / "server.sqlite3"
        shutil.copyfile(_migrated_schema(), database)
        settings = Settings(
            data_dir=folder, database_url=f"sqlite:///{database}", secrets_dir=folder / "secrets"
        )
        self.engine = make_engine(str(settings.database_url))
        # also when a test never closes the desk: at garbage collection or exit
        self._drop = weakref.finalize(self, _drop_database, self.engine, folder)
        self.deps = _domain_deps(settings)
        self.cabinet_code = cabinet_code
        #: False: every question raises CourierDeskUnreachable (the server is out of reach)
        self.reachable = True
        #: every operation the kiosk asked, in order (also those that found no server)
        self.asked: list[Operation] = []
        self._lock = threading.Lock()
        self.site_id, self.cabinet_id, self.carrier_id = self._seed_cabinet(carrier_name)
        self.add_doors(doors or {})
        self._any_recipient: int | None = None

    # -- the courier desk -------------------------------------------------------------

    def ask(self, operation: Operation) -> Answer:
        """The server's answer to ``operation``, asked as this cabinet."""
        with self._lock:
            self.asked.append(operation)
            if not self.reachable:
                raise CourierDeskUnreachable("the simulated server is switched off")
            request = self._as_received(operation)
            with session_scope(self.engine) as session:
                cabinet = get_cabinet(session, self.cabinet_id)
                outcome = courier_desk.answer_request(
                    session, self.deps, cabinet=cabinet, request=request
                )
            return self._as_delivered(request, outcome.answer)

    def _as_received(self, operation: Operation) -> Request:
        """The request as the server decodes it from this cabinet's ``req``."""
        # valid as long as the agent's request client waits for the answer
        expires_at = self.deps.clock() + timedelta(seconds=DEFAULT_TIMEOUT)
        body = Request(request_id=new_message_id(), expires_at=expires_at, operation=operation)
        sent = encode(new_envelope(self.cabinet_code, body))
        return decode(sent, RequestMessage).body

    def _as_delivered(self, request: Request, answer: Answer) -> Answer:
        """The answer as the cabinet decodes it from the reply (left unsigned: signing and
        checking replies belong to the link and are tested with it)."""
        body = UnsignedReply(
            request_id=request.request_id,
            expires_at=request.expires_at,
            answer=answer,
            key_id=outbound.key_id(self.deps.keys),
        )
        sent = encode(new_envelope(self.cabinet_code, body))
        return decode(sent, UnsignedReplyMessage).body.answer

    # -- what the server knows, put there through its services ------------------------

    def _seed_cabinet(self, carrier_name: str) -> tuple[int, int, int]:
        with session_scope(self.engine) as session:
            site = layout.create_site(
                session, self.deps, SiteCreate(name="Sim site"), caller=SEEDER
            )
            spec = CabinetCreate(site_id=_id(site.id), code=self.cabinet_code, name="Sim cabinet")
            cabinet = layout.create_cabinet(session, self.deps, spec, caller=SEEDER)
            body = CarrierCreate(name=carrier_name)
            carrier = directory.create_carrier(session, self.deps, body, caller=SEEDER)
            return _id(site.id), _id(cabinet.id), _id(carrier.id)

    def add_doors(self, doors: DoorLayout) -> None:
        """Doors of this cabinet, number → size code, in service and empty."""
        if not doors:
            return
        bodies = [DoorCreate(number=n, size=size, board=1, lock=n) for n, size in doors.items()]
        with session_scope(self.engine) as session:
            layout.add_doors(session, self.deps, self.cabinet_id, bodies, caller=SEEDER)

    def add_courier(self, code: str, *, name: str, courier_id: int | None = None) -> int:
        """A courier of the carrier who signs in with ``code``; their id (``courier_id``
        if given)."""
        # Built unchecked: the API's rules for a new code (6 or more characters) are not
        # the desk's, which accepts any code it knows, and the kiosk tests type short ones.
        body = CourierCreate.model_construct(carrier_id=self.carrier_id, name=name, code=code)
        with session_scope(self.engine) as session, _numbered(session, Courier, courier_id):
            courier = directory.create_courier(session, self.deps, body, caller=SEEDER)
            return _id(courier.id)

    def add_recipient(self, contact: str, *, consent: bool = True) -> int:
        """A recipient in the directory, found by e-mail (with an ``@``) or else phone."""
        kind = "email" if "@" in contact else "phone"
        body = RecipientCreate.model_validate(
            {"name": f"Recipient {contact}", kind: contact, "consent_locker_delivery": consent}
        )
        with session_scope(self.engine) as session:
            recipient = directory.create_recipient(session, self.deps, body, caller=SEEDER)
            return _id(recipient.id)

    def announce(
        self,
        tracking_number: str,
        *,
        size: str | None = None,
        recipient_id: int | None = None,
        parcel_id: int | None = None,
    ) -> int:
        """A parcel of the carrier announced for this cabinet's site; its id (``parcel_id``
        if given). Its door is reserved when a courier first scans it."""
        spec = parcels.Announcement(
            carrier_id=self.carrier_id,
            tracking_number=tracking_number,
            recipient_id=recipient_id or self._default_recipient(),
            site_id=self.site_id,
            size=size,
        )
        with session_scope(self.engine) as session, _numbered(session, Parcel, parcel_id):
            parcel = parcels.announce(session, self.deps, spec, caller=SEEDER)
            return _id(parcel.id)

    def add_expired_parcel(
        self, tracking_number: str, *, size: str | None = None, parcel_id: int | None = None
    ) -> ExpiredParcel:
        """A parcel deposited here (in a door the allocation chose) and left past its
        pickup deadline, for the carrier's couriers to take back."""
        parcel_id = self.announce(tracking_number, size=size, parcel_id=parcel_id)
        with session_scope(self.engine) as session:
            reserved = parcels.reserve(
                session, self.deps, parcel_id=parcel_id, cabinet_id=self.cabinet_id, caller=SEEDER
            )
            door = _door_number(session, reserved)
        with session_scope(self.engine) as session:
            deposited = parcels.record_deposit(
                session,
                self.deps,
                cabinet_id=self.cabinet_id,
                door_number=door,
                parcel_id=parcel_id,
                caller=SEEDER,
            )
            assert deposited.pickup_deadline is not None
            parcels.expire_overdue(session, self.deps, now=deposited.pickup_deadline)
        return ExpiredParcel(parcel_id=parcel_id, door=door, tracking_number=tracking_number)

    def _default_recipient(self) -> int:
        if self._any_recipient is None:
            self._any_recipient = self.add_recipient(ANY_RECIPIENT)
        return self._any_recipient

    # -- what the server did, read back from its database -----------------------------

    def reservations(self) -> dict[int, int]:
        """Parcel id → door number, for the parcels holding a reserved door here now."""
        query = (
            select(Parcel.id, Door.number)
            .join(Door, col(Door.id) == col(Parcel.door_id))
            .where(Parcel.cabinet_id == self.cabinet_id, Parcel.state == ParcelState.reserved)
        )
        with Session(self.engine) as session:
            return {_id(parcel_id): number for parcel_id, number in session.exec(query).all()}

    def free_doors(self) -> dict[str, list[int]]:
        """Size code → the doors the allocation may give out now (in service, empty)."""
        query = self._doors().where(
            Door.service_state == ServiceState.in_service, Door.occupancy == Occupancy.empty
        )
        return _by_size(self._read(query))

    def doors_out_of_service(self) -> dict[int, str | None]:
        """Door number → why it was taken out of service (e.g. a courier's report)."""
        query = select(Door.number, Door.service_reason).where(
            Door.cabinet_id == self.cabinet_id, Door.service_state == ServiceState.out_of_service
        )
        return dict(self._read(query.order_by(col(Door.number))))

    def door_sizes(self) -> dict[int, str]:
        """Door number → size code, for every door of this cabinet."""
        return dict(self._read(self._doors()))

    def parcel_id(self, tracking_number: str) -> int | None:
        """The id of the carrier's parcel with this tracking number, if registered."""
        query = select(Parcel.id).where(
            Parcel.carrier_id == self.carrier_id, Parcel.tracking_number == tracking_number
        )
        with Session(self.engine) as session:
            return session.exec(query).first()

    def collected(self) -> list[int]:
        """Ids of the parcels couriers took out for return, lowest first."""
        query = select(Parcel.id).where(
            Parcel.carrier_id == self.carrier_id,
            Parcel.state == ParcelState.collected_for_return,
        )
        with Session(self.engine) as session:
            return [_id(found) for found in session.exec(query.order_by(col(Parcel.id))).all()]

    def _doors(self) -> Any:
        return (
            select(Door.number, SizeClass.code)
            .join(SizeClass, col(SizeClass.id) == col(Door.size_class_id))
            .where(Door.cabinet_id == self.cabinet_id)
            .order_by(col(Door.number))
        )

    def _read(self, query: Any) -> list[tuple[Any, Any]]:
        with Session(self.engine) as session:
            return [tuple(row) for row in session.exec(query).all()]

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Drop the database and its folder."""
        self._drop()

    def __enter__(self) -> ServerCourierDesk:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()


class FakeCourierDesk(ServerCourierDesk):
    """A :class:`ServerCourierDesk` set up from tables, with the ids and doors a test names.

    ``couriers``: code → courier id (named "Courier <id>", carrier "Fake Express");
    ``free_doors``: size → the cabinet's empty doors; ``directory``: e-mail or phone →
    whether the recipient consents; ``expired``: parcels past their deadline, each in its
    own door (given the smallest size). Parcels announced with :meth:`announce` keep the
    ``parcel_id`` given, and the server's allocation chooses their doors among
    ``free_doors`` (smallest size that fits, then lowest number)::

        desk = FakeCourierDesk(couriers={"4711": 7}, free_doors={"M": [5, 6]})
        desk.announce("SF123", parcel_id=41, size="M")
    """

    def __init__(
        self,
        *,
        couriers: Mapping[str, int] | None = None,
        free_doors: Mapping[str, Iterable[int]] | None = None,
        directory: Mapping[str, bool] | None = None,
        expired: Iterable[ExpiredParcel] = (),
    ) -> None:
        super().__init__(carrier_name="Fake Express")
        for code, courier_id in (couriers or {}).items():
            self.add_courier(code, name=f"Courier {courier_id}", courier_id=courier_id)
        for contact, consent in (directory or {}).items():
            self.add_recipient(contact, consent=consent)
        for parcel in expired:  # before the free doors: the allocation has only its door
            self.add_doors({parcel.door: _smallest_size(self)})
            placed = self.add_expired_parcel(parcel.tracking_number, parcel_id=parcel.parcel_id)
            if placed.door != parcel.door:  # an empty door was left from before
                raise SimulatorConfigError(
                    f"expired parcel {parcel.parcel_id} went behind door {placed.door},"
                    f" not {parcel.door}"
                )
        self.add_doors({n: size for size, numbers in (free_doors or {}).items() for n in numbers})


def _smallest_size(desk: ServerCourierDesk) -> str:
    with Session(desk.engine) as session:
        return session.exec(select(SizeClass.code).order_by(col(SizeClass.rank))).first() or "S"


# --- wiring -------------------------------------------------------------------------------


@functools.cache
def _migrated_schema() -> Path:
    """A database file with the server's migrations applied, made once per process:
    each desk starts from a copy (migrating takes most of a second)."""
    folder = Path(tempfile.mkdtemp(prefix="courier-desk-schema-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "schema.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return path


def _drop_database(engine: Engine, folder: Path) -> None:
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)


def _domain_deps(settings: Settings) -> DomainDeps:
    """The server's services as the server wires them (keys made in the desk's folder)."""
    assert settings.secrets_dir is not None
    keys = load_keys(settings.secrets_dir)
    return DomainDeps(
        settings=settings,
        keys=keys,
        audit=AuditLog.for_server(settings, keys),
        notifier=Notifier(settings=settings, keys=keys),
    )


@contextmanager
def _numbered(session: Session, model: type[SQLModel], wanted: int | None) -> Iterator[None]:
    """Give the first new ``model`` row flushed in ``session`` the id ``wanted``, so that
    a test can name the ids it expects (None: the database numbers it)."""
    if wanted is None:
        yield
        return
    pending = [wanted]

    def number(flushing: Session, *_: object) -> None:
        for row in flushing.new:
            if pending and isinstance(row, model) and getattr(row, "id", None) is None:
                row.id = pending.pop()

    event.listen(session, "before_flush", number)
    try:
        yield
    finally:
        event.remove(session, "before_flush", number)


def _door_number(session: Session, parcel: Parcel) -> int:
    door = session.get(Door, parcel.door_id)
    assert door is not None
    return door.number


def _by_size(rows: Iterable[tuple[int, str]]) -> dict[str, list[int]]:
    doors: dict[str, list[int]] = {}
    for number, size in rows:
        doors.setdefault(size, []).append(number)
    return doors


def _id(value: int | None) -> int:
    assert value is not None  # flushed or loaded from the database
    return value
