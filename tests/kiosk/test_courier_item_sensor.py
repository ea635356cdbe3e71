"""A courier's deposit behind a door with an item sensor: confirmed only when the door
closed on something. The real agent and kiosk on simulated Kerong boards (pty), whose
status replies carry the compartments' item bits; door 5 has ``item_sensor = true``, and
it is the one medium door the server's courier desk has to give the parcel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from locker_agent.journal import DoorRecord
from locker_agent.kiosk.courier import (
    CourierKey,
    CourierPress,
    DoorStatus,
    DoorUse,
    Problem,
    Purpose,
    RecordDeposit,
    Stage,
)
from locker_agent.kiosk.courier_desk import CourierHooks
from simulators.courier_desk import ServerCourierDesk
from tests.kiosk.conftest import KioskCabinet, KioskCabinetFactory
from tests.kiosk.test_courier_service import (
    CODE,
    COURIER_NAME,
    TRACKING,
    Deposits,
    Known,
    reservation_on,
    sign_in_and_scan,
    stage,
)

SENSOR_DOOR = 5


@pytest.fixture
def deposits() -> Deposits:
    return Deposits()


@pytest.fixture
def desk() -> Iterator[ServerCourierDesk]:
    with ServerCourierDesk(doors={SENSOR_DOOR: "M"}) as desk:
        yield desk


@pytest.fixture
def known(desk: ServerCourierDesk) -> Known:
    courier_id = desk.add_courier(CODE, name=COURIER_NAME)
    return Known(courier_id, desk.announce(TRACKING, size="M"))


def courier_rig(
    make_kiosk_cabinet: KioskCabinetFactory,
    desk: ServerCourierDesk,
    deposits: Deposits,
    *,
    item_sensors: tuple[int, ...],
) -> KioskCabinet:
    return make_kiosk_cabinet(courier=CourierHooks(desk, deposits), item_sensors=item_sensors)


@pytest.fixture
def rig(
    make_kiosk_cabinet: KioskCabinetFactory, desk: ServerCourierDesk, deposits: Deposits
) -> KioskCabinet:
    return courier_rig(make_kiosk_cabinet, desk, deposits, item_sensors=(SENSOR_DOOR,))


def sign_in_and_scan_to_the_sensor_door(rig: KioskCabinet) -> None:
    assert reservation_on(sign_in_and_scan(rig)).door == SENSOR_DOOR


def open_for_deposit(rig: KioskCabinet) -> None:
    rig.kiosk.send(CourierPress(CourierKey.OPEN))
    stage(rig, Stage.DOOR, door=DoorUse(SENSOR_DOOR, Purpose.DEPOSIT, DoorStatus.OPEN))


def snapshot(rig: KioskCabinet) -> DoorRecord | None:
    return rig.cabinet.runtime.journal.snapshot().doors.get(SENSOR_DOOR)


def test_a_door_closed_empty_records_no_deposit_and_says_so(
    rig: KioskCabinet, known: Known, deposits: Deposits
) -> None:
    sign_in_and_scan_to_the_sensor_door(rig)
    open_for_deposit(rig)

    rig.cabinet.door(SENSOR_DOOR).close()  # nothing was put in

    stage(rig, Stage.PROBLEM, problem=Problem.DOOR_EMPTY)
    assert deposits.recorded == []
    assert snapshot(rig) == DoorRecord("closed", False)

    open_for_deposit(rig)  # the screen offers to open the door again
    rig.cabinet.door(SENSOR_DOOR).put_item()
    rig.cabinet.door(SENSOR_DOOR).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(SENSOR_DOOR, known.parcel_id, known.courier_id)]
    assert rig.cabinet.door(SENSOR_DOOR).unlock_pulses == 2


def test_a_door_closed_on_the_parcel_confirms_the_deposit(
    rig: KioskCabinet, known: Known, deposits: Deposits
) -> None:
    sign_in_and_scan_to_the_sensor_door(rig)
    open_for_deposit(rig)

    rig.cabinet.door(SENSOR_DOOR).put_item()
    rig.cabinet.door(SENSOR_DOOR).close()

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(SENSOR_DOOR, known.parcel_id, known.courier_id)]
    assert snapshot(rig) == DoorRecord("closed", True)


def test_a_kerong_door_without_item_sensor_confirms_on_the_close_alone(
    make_kiosk_cabinet: KioskCabinetFactory,
    desk: ServerCourierDesk,
    known: Known,
    deposits: Deposits,
) -> None:
    # door 1 has the sensor; door 5, the reserved one, has none wired: its bit means nothing
    rig = courier_rig(make_kiosk_cabinet, desk, deposits, item_sensors=(1,))
    sign_in_and_scan_to_the_sensor_door(rig)
    open_for_deposit(rig)

    rig.cabinet.door(SENSOR_DOOR).close()  # its board reads it empty, nobody listens

    stage(rig, Stage.SCAN, deposits=1)
    assert deposits.recorded == [RecordDeposit(SENSOR_DOOR, known.parcel_id, known.courier_id)]
    assert snapshot(rig) == DoorRecord("closed", None)
