"""A courier at the kiosk of a whole simulated cabinet: the real agent on pty boards, the
virtual scanner module, a fake courier desk answering from its table."""

from __future__ import annotations

import threading
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
from simulators.courier_desk import FakeCourierDesk
from tests.kiosk.conftest import KioskCabinet, KioskCabinetFactory

CODE = "4711"
TRACKING = "SF1234567890"


@dataclass
class Deposits:
    """The deposit record the transport will provide: here, a list."""

    recorded: list[RecordDeposit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, deposit: RecordDeposit) -> None:
        with self.lock:
            self.recorded.append(deposit)


@pytest.fixture
def desk() -> FakeCourierDesk:
    desk = FakeCourierDesk(couriers={CODE: 7}, free_doors={"S": [2], "M": [5, 6], "L": [8]})
    desk.announce(TRACKING, parcel_id=41, size="M")
    return desk


@pytest.fixture
def deposits() -> Deposits:
    return Deposits()


@pytest.fixture
def rig(
    make_kiosk_cabinet: KioskCabinetFactory, desk: FakeCourierDesk, deposits: Deposits
) -> KioskCabinet:
    return make_kiosk_cabinet(courier=CourierHooks(desk, deposits))


def stage(rig: KioskCabinet, wanted: Stage, **fields: object) -> Screen:
    def at(screen: Screen) -> bool:
        courier = screen.courier
        if courier is None or courier.stage is not wanted:
            return False
        return all(getattr(courier, name) == value for name, value in fields.items())

    return rig.wait_screen(at)


def door_open(rig: KioskCabinet, door: int) -> None:
    """The kiosk saw ``door`` open (so the person may close it)."""
    stage(rig, Stage.DOOR, door=DoorUse(door, Purpose.DEPOSIT, DoorStatus.OPEN))


def sign_in_and_scan(rig: KioskCabinet) -> Screen:
    rig.kiosk.send(CourierPress(CourierKey.COURIER))
    rig.kiosk.send(TextEntered(CODE))
    stage(rig, Stage.SCAN, courier_name="Courier 7")
    rig.scanner.scan(TRACKING)
    return stage(rig, Stage.CONFIRM)


def test_a_courier_scans_a_label_the_door_opens_and_its_close_records_one_deposit(
    rig: KioskCabinet, deposits: Deposits
) -> None:
    screen = sign_in_and_scan(rig)
    assert screen.courier is not None
    assert screen.courier.reservation is not None
    assert screen.courier.reservation.door == 5

    rig.kiosk.send(CourierPress(CourierKey.OPEN))

    stage(rig, Stage.DOOR)
    rig.wait_screen(
        lambda s: (
            s.courier is not None and s.courier.door is not None and s.courier.door.status == "open"
        )
    )
    assert rig.cabinet.door(5).unlock_pulses == 1
    assert deposits.recorded == []

    rig.cabinet.door(5).close()

    stage(rig, Stage.SCAN, deposits=1)
    rig.kiosk.send(CourierPress(CourierKey.FINISH))
    rig.wait_screen(lambda s: s.phase is Phase.HOME)
    assert deposits.recorded == [RecordDeposit(door=5, parcel_id=41, courier_id=7)]
    assert sum(rig.cabinet.door(n).unlock_pulses for n in range(1, 9)) == 1


def test_a_larger_door_releases_the_first_one_which_never_opens(
    rig: KioskCabinet, desk: FakeCourierDesk, deposits: Deposits
) -> None:
    sign_in_and_scan(rig)

    rig.kiosk.send(CourierPress(CourierKey.LARGER))
    screen = stage(rig, Stage.SIZE)
    assert screen.courier_sizes == ("L",)
    rig.kiosk.send(SizeChosen("L"))

    screen = stage(rig, Stage.CONFIRM)
    assert screen.courier is not None
    assert screen.courier.reservation is not None
    assert screen.courier.reservation.door == 8
    assert desk.free_doors["M"] == [5, 6]  # released
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    stage(rig, Stage.DOOR)
    door_open(rig, 8)
    rig.cabinet.door(8).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(door=8, parcel_id=41, courier_id=7)]
    assert rig.cabinet.door(5).unlock_pulses == 0


def test_a_jammed_door_is_flagged_and_the_parcel_gets_another_door(
    rig: KioskCabinet, desk: FakeCourierDesk, deposits: Deposits
) -> None:
    rig.cabinet.door(5).faults.jammed = True
    sign_in_and_scan(rig)

    rig.kiosk.send(CourierPress(CourierKey.OPEN))

    screen = stage(rig, Stage.CONFIRM, tracking=TRACKING, serial=4)
    assert screen.courier is not None
    assert screen.courier.reservation is not None
    assert screen.courier.reservation.door == 6
    assert desk.broken == [(5, "did not open")]
    assert rig.cabinet.door(5).unlock_pulses == 1  # one unlock, never retried
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    stage(rig, Stage.DOOR)
    door_open(rig, 6)
    rig.cabinet.door(6).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(door=6, parcel_id=41, courier_id=7)]


def test_registering_with_the_server_out_of_reach_says_so_and_opens_nothing(
    rig: KioskCabinet, desk: FakeCourierDesk, deposits: Deposits
) -> None:
    rig.kiosk.send(CourierPress(CourierKey.COURIER))
    rig.kiosk.send(TextEntered(CODE))
    stage(rig, Stage.SCAN)
    desk.reachable = False
    rig.kiosk.send(CourierPress(CourierKey.REGISTER))
    rig.scanner.scan("YT0000001")
    stage(rig, Stage.RECIPIENT)
    rig.kiosk.send(TextEntered("wang@example.com"))
    stage(rig, Stage.SIZE)
    rig.kiosk.send(SizeChosen("S"))

    screen = stage(rig, Stage.PROBLEM, problem="unreachable", failed="register_parcel")
    rig.kiosk.send(KeyPress("cancel"))  # back
    stage(rig, Stage.SCAN)
    assert screen.courier is not None
    assert sum(rig.cabinet.door(n).unlock_pulses for n in range(1, 9)) == 0
    assert deposits.recorded == []
