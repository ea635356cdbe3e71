"""A courier at the kiosk of a whole simulated cabinet: the real agent on pty boards, the
virtual scanner module, and the server's real courier desk answering from its own
database (:class:`simulators.courier_desk.ServerCourierDesk`). Doors are the ones the
server's allocation chose; the tests read what it did back from its database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from locker_agent.kiosk.courier import (
    CourierKey,
    CourierPress,
    DoorStatus,
    DoorUse,
    Purpose,
    RecordDeposit,
    SizeChosen,
    Stage,
    TextEntered,
)
from locker_agent.kiosk.courier_desk import CourierHooks
from locker_agent.kiosk.machine import KeyPress, Phase, Screen
from locker_contract.desk import DoorReserved, RefusalReason
from simulators.courier_desk import ServerCourierDesk
from tests.kiosk.conftest import KioskCabinet, KioskCabinetFactory

CODE = "4711"
COURIER_NAME = "Wang Lei"
TRACKING = "SF1234567890"
#: the server's doors of this cabinet (the simulated cabinet has doors 1-8)
DOORS = {2: "S", 5: "M", 6: "M", 8: "L"}
ALL_DOORS = range(1, 9)


@dataclass
class Deposits:
    """The deposit record the transport will provide: here, a list."""

    recorded: list[RecordDeposit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, deposit: RecordDeposit) -> None:
        with self.lock:
            self.recorded.append(deposit)


@dataclass(frozen=True)
class Known:
    """What the server was told before the courier came."""

    courier_id: int
    parcel_id: int


@pytest.fixture
def desk() -> Iterator[ServerCourierDesk]:
    with ServerCourierDesk(doors=DOORS) as desk:
        yield desk


@pytest.fixture
def known(desk: ServerCourierDesk) -> Known:
    courier_id = desk.add_courier(CODE, name=COURIER_NAME)
    return Known(courier_id, desk.announce(TRACKING, size="M"))


@pytest.fixture
def deposits() -> Deposits:
    return Deposits()


@pytest.fixture
def rig(
    make_kiosk_cabinet: KioskCabinetFactory,
    desk: ServerCourierDesk,
    known: Known,
    deposits: Deposits,
) -> KioskCabinet:
    return make_kiosk_cabinet(courier=CourierHooks(desk, deposits))


def stage(rig: KioskCabinet, wanted: Stage, **fields: object) -> Screen:
    def at(screen: Screen) -> bool:
        courier = screen.courier
        if courier is None or courier.stage is not wanted:
            return False
        return all(getattr(courier, name) == value for name, value in fields.items())

    return rig.wait_screen(at)


def reservation_on(screen: Screen) -> DoorReserved:
    assert screen.courier is not None
    assert screen.courier.reservation is not None
    return screen.courier.reservation


def door_open(rig: KioskCabinet, door: int, purpose: Purpose = Purpose.DEPOSIT) -> None:
    """The kiosk saw ``door`` open (so the person may close it)."""
    stage(rig, Stage.DOOR, door=DoorUse(door, purpose, DoorStatus.OPEN))


def unlocks(rig: KioskCabinet) -> int:
    return sum(rig.cabinet.door(n).unlock_pulses for n in ALL_DOORS)


def sign_in(rig: KioskCabinet) -> None:
    rig.kiosk.send(CourierPress(CourierKey.COURIER))
    rig.kiosk.send(TextEntered(CODE))
    stage(rig, Stage.SCAN, courier_name=COURIER_NAME)


def sign_in_and_scan(rig: KioskCabinet) -> Screen:
    sign_in(rig)
    rig.scanner.scan(TRACKING)
    return stage(rig, Stage.CONFIRM)


def test_a_courier_scans_a_label_the_door_opens_and_its_close_records_one_deposit(
    rig: KioskCabinet, desk: ServerCourierDesk, known: Known, deposits: Deposits
) -> None:
    reserved = reservation_on(sign_in_and_scan(rig))
    assert desk.reservations() == {known.parcel_id: reserved.door}
    assert desk.door_sizes()[reserved.door] == "M"

    rig.kiosk.send(CourierPress(CourierKey.OPEN))

    door_open(rig, reserved.door)
    assert rig.cabinet.door(reserved.door).unlock_pulses == 1
    assert deposits.recorded == []

    rig.cabinet.door(reserved.door).close()

    stage(rig, Stage.SCAN, deposits=1)
    rig.kiosk.send(CourierPress(CourierKey.FINISH))
    rig.wait_screen(lambda s: s.phase is Phase.HOME)
    assert deposits.recorded == [RecordDeposit(reserved.door, known.parcel_id, known.courier_id)]
    assert unlocks(rig) == 1


def test_a_larger_door_releases_the_first_one_which_never_opens(
    rig: KioskCabinet, desk: ServerCourierDesk, known: Known, deposits: Deposits
) -> None:
    first = reservation_on(sign_in_and_scan(rig))

    rig.kiosk.send(CourierPress(CourierKey.LARGER))
    screen = stage(rig, Stage.SIZE)
    assert screen.courier_sizes == ("L",)
    rig.kiosk.send(SizeChosen("L"))

    larger = reservation_on(stage(rig, Stage.CONFIRM))
    assert (larger.parcel_id, larger.size) == (known.parcel_id, "L")
    assert desk.door_sizes()[larger.door] == "L"
    assert desk.reservations() == {known.parcel_id: larger.door}
    assert first.door in desk.free_doors()["M"]  # released
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    door_open(rig, larger.door)
    rig.cabinet.door(larger.door).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(larger.door, known.parcel_id, known.courier_id)]
    assert rig.cabinet.door(first.door).unlock_pulses == 0


def test_a_jammed_door_is_flagged_and_the_parcel_gets_another_door(
    rig: KioskCabinet, desk: ServerCourierDesk, known: Known, deposits: Deposits
) -> None:
    jammed = reservation_on(sign_in_and_scan(rig)).door
    rig.cabinet.door(jammed).faults.jammed = True

    rig.kiosk.send(CourierPress(CourierKey.OPEN))

    other = reservation_on(stage(rig, Stage.CONFIRM, tracking=TRACKING, serial=4))
    assert other.door != jammed
    assert other.size == "M"
    assert desk.doors_out_of_service() == {
        jammed: f"reported by courier {known.courier_id}: did not open"
    }
    assert desk.reservations() == {known.parcel_id: other.door}
    assert rig.cabinet.door(jammed).unlock_pulses == 1  # one unlock, never retried
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    door_open(rig, other.door)
    rig.cabinet.door(other.door).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(other.door, known.parcel_id, known.courier_id)]


def register(rig: KioskCabinet, tracking: str, recipient: str, size: str) -> None:
    rig.kiosk.send(CourierPress(CourierKey.REGISTER))
    rig.scanner.scan(tracking)
    stage(rig, Stage.RECIPIENT)
    rig.kiosk.send(TextEntered(recipient))
    stage(rig, Stage.SIZE)
    rig.kiosk.send(SizeChosen(size))


def test_an_unannounced_parcel_is_registered_for_a_consenting_recipient_and_deposited(
    rig: KioskCabinet, desk: ServerCourierDesk, known: Known, deposits: Deposits
) -> None:
    desk.add_recipient("wang@example.com")
    sign_in(rig)

    register(rig, "YT0000001", "wang@example.com", "S")

    reserved = reservation_on(stage(rig, Stage.CONFIRM, tracking="YT0000001"))
    registered = desk.parcel_id("YT0000001")
    assert registered is not None
    assert desk.reservations() == {registered: reserved.door}
    assert desk.door_sizes()[reserved.door] == "S"
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    door_open(rig, reserved.door)
    rig.cabinet.door(reserved.door).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(reserved.door, registered, known.courier_id)]


def test_a_recipient_without_consent_gets_no_door(
    rig: KioskCabinet, desk: ServerCourierDesk, deposits: Deposits
) -> None:
    desk.add_recipient("+8613800000000", consent=False)
    sign_in(rig)

    register(rig, "YT0000002", "+8613800000000", "S")

    stage(rig, Stage.PROBLEM, refusal=RefusalReason.NO_CONSENT, failed="register_parcel")
    assert desk.parcel_id("YT0000002") is None
    assert unlocks(rig) == 0


def test_registering_with_the_server_out_of_reach_says_so_and_opens_nothing(
    rig: KioskCabinet, desk: ServerCourierDesk, deposits: Deposits
) -> None:
    sign_in(rig)
    desk.reachable = False

    register(rig, "YT0000001", "wang@example.com", "S")

    screen = stage(rig, Stage.PROBLEM, problem="unreachable", failed="register_parcel")
    rig.kiosk.send(KeyPress("cancel"))  # back
    stage(rig, Stage.SCAN)
    assert screen.courier is not None
    assert unlocks(rig) == 0
    assert deposits.recorded == []
    assert desk.parcel_id("YT0000001") is None


def test_a_courier_takes_an_expired_parcel_back_and_the_server_records_it(
    rig: KioskCabinet, desk: ServerCourierDesk
) -> None:
    expired = desk.add_expired_parcel("SF0000000042", size="S")
    sign_in(rig)

    rig.kiosk.send(CourierPress(CourierKey.EXPIRED))
    stage(rig, Stage.EXPIRED)
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    door_open(rig, expired.door, Purpose.COLLECT)
    rig.cabinet.door(expired.door).close()

    rig.wait_screen(lambda _: desk.collected() == [expired.parcel_id])
    stage(rig, Stage.EXPIRED)
    assert rig.cabinet.door(expired.door).unlock_pulses == 1
