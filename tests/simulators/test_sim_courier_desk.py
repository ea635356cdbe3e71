"""The simulated server's courier desk on its own: seeded through the server's services,
answering through the server's courier desk, read back from its database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from locker_agent.errors import CourierDeskUnreachable
from locker_contract.desk import (
    CollectedForReturn,
    CourierSession,
    CourierSignIn,
    DepositLookup,
    DoorReserved,
    ExpiredList,
    ExpiredParcel,
    ExpiredParcels,
    RefusalReason,
    RequestRefused,
    SignedIn,
)
from simulators.courier_desk import FakeCourierDesk, ServerCourierDesk

EXPIRED = ExpiredParcel(parcel_id=90, door=3, tracking_number="EXP0001")


@pytest.fixture
def desk() -> Iterator[FakeCourierDesk]:
    desk = FakeCourierDesk(
        couriers={"4711": 7}, free_doors={"M": [5, 6], "L": [8]}, expired=[EXPIRED]
    )
    desk.announce("SF1234567890", parcel_id=41, size="M")
    yield desk
    desk.close()


def signed_in(desk: ServerCourierDesk, code: str) -> CourierSession:
    answer = desk.ask(CourierSignIn(credential="code", secret=code))
    assert isinstance(answer, SignedIn)
    return answer.session


def test_the_tables_become_the_servers_records_with_the_ids_and_doors_named(
    desk: FakeCourierDesk,
) -> None:
    answer = desk.ask(CourierSignIn(credential="code", secret="4711"))

    assert isinstance(answer, SignedIn)
    assert (answer.courier_id, answer.display_name) == (7, "Courier 7")
    assert answer.carrier_name == "Fake Express"
    assert desk.door_sizes() == {3: "S", 5: "M", 6: "M", 8: "L"}
    assert desk.free_doors() == {"M": [5, 6], "L": [8]}  # door 3 holds the expired parcel
    assert desk.parcel_id("SF1234567890") == 41


def test_a_lookup_reserves_the_door_the_allocation_chooses_and_is_read_back(
    desk: FakeCourierDesk,
) -> None:
    session = signed_in(desk, "4711")

    answer = desk.ask(DepositLookup(session=session, tracking_number="SF1234567890"))

    assert isinstance(answer, DoorReserved)
    assert (answer.parcel_id, answer.door, answer.size) == (41, 5, "M")
    assert desk.reservations() == {41: 5}
    assert desk.free_doors() == {"M": [6], "L": [8]}


def test_expired_parcels_are_listed_and_collected_through_the_server(
    desk: FakeCourierDesk,
) -> None:
    session = signed_in(desk, "4711")

    assert desk.ask(ExpiredParcels(session=session)) == ExpiredList(parcels=[EXPIRED])
    desk.ask(CollectedForReturn(session=session, parcel_id=EXPIRED.parcel_id))

    assert desk.collected() == [EXPIRED.parcel_id]
    assert desk.free_doors()["S"] == [EXPIRED.door]


def test_an_unknown_code_is_refused_by_the_server(desk: FakeCourierDesk) -> None:
    answer = desk.ask(CourierSignIn(credential="code", secret="0000"))

    assert isinstance(answer, RequestRefused)
    assert answer.reason is RefusalReason.BAD_CREDENTIAL


def test_a_switched_off_server_is_unreachable_and_still_notes_the_question(
    desk: FakeCourierDesk,
) -> None:
    desk.reachable = False
    operation = CourierSignIn(credential="code", secret="4711")

    with pytest.raises(CourierDeskUnreachable):
        desk.ask(operation)
    assert desk.asked == [operation]
