"""The kiosk on a whole simulated cabinet: scans and keys in, doors on the pty board out."""

from __future__ import annotations

from pathlib import Path

from locker_agent.kiosk.machine import DoorProgress, DoorStatus, KeyPress, Phase, Refusal
from locker_contract.pickup_qr import encode_pickup_qr
from tests import waiting
from tests.agent_link.rig import entry
from tests.kiosk.conftest import KioskCabinet, KioskCabinetFactory, qr_entry

TOKEN = "cGFyY2VsLTQxLXRva2VuLWZvci10aGUta2lvc2s"
OTHER_TOKEN = "b3RoZXItcGFyY2VsLXRva2VuLWZvci1raW9zaw"
CODE = "36925814"


def type_code(rig: KioskCabinet, code: str) -> None:
    for digit in code:
        rig.kiosk.send(KeyPress(digit))


def test_a_scanned_qr_of_ours_opens_the_right_door_and_the_screen_follows_it(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()
    rig.supply(qr_entry(41, 4, TOKEN), qr_entry(42, 6, OTHER_TOKEN))

    rig.scanner.scan(encode_pickup_qr(TOKEN))

    rig.wait_screen(lambda s: s.doors == (DoorProgress(4, DoorStatus.OPEN),))
    assert rig.cabinet.door(4).unlock_pulses == 1
    assert rig.cabinet.door(6).unlock_pulses == 0
    assert rig.journaled("pickup") == []  # taken only once the door is shut again

    rig.cabinet.door(4).close()

    rig.wait_screen(lambda s: s.phase is Phase.THANKS)
    [pickup] = waiting.wait_until(lambda: rig.journaled("pickup"), 2)
    assert (pickup.door, pickup.data["parcel_ids"], pickup.data["credential"]) == (4, [41], "qr")
    assert rig.cabinet.door(4).unlock_pulses == 1


def test_a_foreign_payload_opens_nothing_and_journals_nothing(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()
    rig.supply(qr_entry(41, 4, TOKEN))
    damaged = encode_pickup_qr(OTHER_TOKEN)[:-1] + "X"

    rig.scanner.scan("JJD000123456789")  # a parcel label
    rig.scanner.scan(damaged)
    rig.scanner.scan(OTHER_TOKEN)  # a bare token, as mails before LKR1 carried
    rig.scanner.scan(encode_pickup_qr(TOKEN))  # the marker: handled after the three

    rig.wait_screen(lambda s: s.doors == (DoorProgress(4, DoorStatus.OPEN),))
    assert [e.type for e in rig.cabinet.runtime.journal.pending() if "pickup" in e.type] == []
    assert sum(rig.cabinet.door(n).unlock_pulses for n in range(1, 9)) == 1


def test_a_qr_held_up_twice_opens_its_door_once_and_counts_no_wrong_attempt(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()
    rig.supply(qr_entry(41, 4, TOKEN))

    rig.scanner.scan(encode_pickup_qr(TOKEN))
    rig.scanner.scan(encode_pickup_qr(TOKEN))
    rig.wait_screen(lambda s: s.doors == (DoorProgress(4, DoorStatus.OPEN),))
    rig.scanner.scan(encode_pickup_qr(TOKEN))
    rig.kiosk.send(KeyPress("7"))  # the marker: the kiosk took every scan before it
    rig.wait_screen(lambda s: s.phase is Phase.TYPING)

    assert rig.cabinet.door(4).unlock_pulses == 1
    assert not rig.journaled("pickup.refused")


def test_a_recipient_with_parcels_behind_two_doors_gets_both_one_after_the_other(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()
    rig.supply(entry(51, 2, CODE), entry(52, 7, CODE), entry(53, 2, CODE))

    type_code(rig, CODE)

    rig.wait_screen(
        lambda s: s.doors == (DoorProgress(2, DoorStatus.OPEN), DoorProgress(7, DoorStatus.OPEN))
    )
    assert (rig.cabinet.door(2).unlock_pulses, rig.cabinet.door(7).unlock_pulses) == (1, 1)

    rig.cabinet.door(7).close()
    rig.cabinet.door(2).close()

    rig.wait_screen(lambda s: s.phase is Phase.THANKS)
    assert (rig.cabinet.door(2).unlock_pulses, rig.cabinet.door(7).unlock_pulses) == (1, 1)
    assert waiting.wait_until(lambda: len(rig.journaled("pickup")) == 2, 2)
    pickups = sorted((e.door, e.data["parcel_ids"]) for e in rig.journaled("pickup"))
    assert pickups == [(2, [51, 53]), (7, [52])]  # one per door, each at its close


def test_a_wrong_code_is_refused_with_the_attempts_left_and_opens_nothing(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet(help_contact="400-800-1234")
    rig.supply(entry(51, 2, CODE))

    type_code(rig, "11112222")

    screen = rig.wait_screen(lambda s: s.phase is Phase.REFUSED)
    assert (screen.refusal, screen.attempts_left) == (Refusal.WRONG_CODE, 4)
    assert screen.help_contact == "400-800-1234"
    assert waiting.wait_until(lambda: rig.journaled("pickup.refused"), 2)
    assert sum(rig.cabinet.door(n).unlock_pulses for n in range(1, 9)) == 0


def test_a_scanner_that_cannot_be_opened_raises_one_alarm_and_codes_still_work(
    make_kiosk_cabinet: KioskCabinetFactory, tmp_path: Path
) -> None:
    rig = make_kiosk_cabinet(scanner_port=str(tmp_path / "no-such-scanner"))
    rig.supply(entry(51, 2, CODE))

    screen = rig.wait_screen(lambda s: "scanner" in s.readers_down)
    type_code(rig, CODE)

    assert screen.phase is Phase.HOME
    rig.wait_screen(lambda s: s.doors == (DoorProgress(2, DoorStatus.OPEN),))
    [alarm] = rig.journaled("alarm")
    assert (alarm.data["kind"], alarm.door) == ("scanner_lost", None)
    assert "no-such-scanner" in alarm.data["detail"]
