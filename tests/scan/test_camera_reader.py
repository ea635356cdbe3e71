"""A code held up to the kiosk camera is reported once; a lost camera alarms and comes back."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import pytest

from locker_agent.errors import CameraLost, ImageUnreadable
from locker_agent.scan.camera import (
    CAMERA_LOST,
    CameraReader,
    CameraSettings,
    Debouncer,
    FakeCamera,
    ScriptItem,
)
from locker_agent.scan.decoders import Decoded, Symbology, default_chain
from locker_agent.scan.events import CameraDown, CameraUp, CodeRead, ScanEvent
from locker_contract.pickup_qr import QrVerdict
from simulators.camera import Scene, scene_for, virtual_camera
from tests.scan.scenes import DAMAGED_QR, LABEL, PICKUP_QR, TOKEN, empty_frame, frame_of

FPS = 30
SETTINGS = CameraSettings(forget_frames=10, forget_seconds=0.2, reconnect_initial=0.5)


def frame_clock() -> Callable[[], float]:
    """A clock that advances one frame (1/30 s) each time the reader looks at it."""
    ticks = itertools.count()
    return lambda: next(ticks) / FPS


def read_all(
    script: Iterable[ScriptItem],
    *,
    frames: int,
    settings: CameraSettings = SETTINGS,
    unavailable_opens: int = 0,
    sleeps: list[float] | None = None,
) -> list[ScanEvent]:
    camera = FakeCamera(script, unavailable_opens=unavailable_opens)
    waits = sleeps if sleeps is not None else []
    reader = CameraReader(
        camera, default_chain(), settings, clock=frame_clock(), sleep=waits.append
    )
    return list(reader.events(max_frames=frames))


def codes(events: Iterable[ScanEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, CodeRead)]


def test_recipient_holding_the_qr_up_for_a_second_is_reported_once() -> None:
    qr = frame_of("clean")
    (event,) = read_all([qr] * FPS, frames=FPS)

    assert event == CodeRead(PICKUP_QR, Symbology.QR, "camera", QrVerdict.PICKUP, TOKEN)
    assert not event.ignored_for_pickup


def test_a_few_blurred_frames_in_the_middle_do_not_report_the_code_again() -> None:
    qr, nothing = frame_of("clean"), empty_frame()
    script = [qr] * 5 + [nothing] * 4 + [qr] * 5
    assert codes(read_all(script, frames=len(script))) == [PICKUP_QR]


def test_recipient_who_shows_the_qr_again_after_taking_it_away_is_reported_again() -> None:
    qr, nothing = frame_of("clean"), empty_frame()
    script = [qr] * 5 + [nothing] * 12 + [qr] * 5
    assert codes(read_all(script, frames=len(script))) == [PICKUP_QR, PICKUP_QR]


def test_parcel_labels_and_damaged_codes_are_ignored_for_pickup_not_wrong_codes() -> None:
    label = frame_of("label", LABEL, size=(1280, 720))
    damaged = frame_of("clean", DAMAGED_QR)
    events = read_all([label, label, damaged], frames=3)  # a label counts at its second read

    verdicts = [(e.text, e.verdict, e.token) for e in events if isinstance(e, CodeRead)]
    assert verdicts == [(LABEL, QrVerdict.FOREIGN, None), (DAMAGED_QR, QrVerdict.DAMAGED, None)]
    assert all(isinstance(e, CodeRead) and e.ignored_for_pickup for e in events)


def test_unplugged_camera_raises_the_alarm_then_reports_codes_again_once_back() -> None:
    qr = frame_of("clean")
    events = read_all([qr, CAMERA_LOST, qr], frames=2)

    assert [type(event) for event in events] == [CodeRead, CameraDown, CameraUp, CodeRead]
    assert events[1] == CameraDown("fake camera: lost", attempt=0)


def test_camera_missing_at_start_is_retried_with_a_doubling_capped_backoff() -> None:
    settings = CameraSettings(reconnect_initial=0.5, reconnect_max=1.5)
    sleeps: list[float] = []
    events = read_all(
        [empty_frame()], frames=1, settings=settings, unavailable_opens=4, sleeps=sleeps
    )

    assert [e.attempt for e in events if isinstance(e, CameraDown)] == [1, 2, 3, 4]
    assert events[-1] == CameraUp(attempts=4)
    assert sleeps == [0.5, 1.0, 1.5, 1.5]


def test_kiosk_can_stop_the_reader_between_frames() -> None:
    camera = FakeCamera(itertools.repeat(empty_frame()))
    reader = CameraReader(camera, default_chain(), SETTINGS, clock=frame_clock())
    stream = reader.events()
    reader.stop()

    assert list(stream) == []
    assert not camera.is_open


def test_virtual_camera_plays_scenes_and_losses() -> None:
    phone = scene_for("tilted", PICKUP_QR, seed=3, width=640, height=480)
    camera = virtual_camera(
        [(phone, 3), (None, 1), (Scene(payload=None, width=640, height=480), 2)]
    )
    reader = CameraReader(
        camera, default_chain(), SETTINGS, clock=frame_clock(), sleep=lambda _: None
    )

    events = list(reader.events(max_frames=5))
    assert codes(events) == [PICKUP_QR]
    assert [type(e) for e in events[1:]] == [CameraDown, CameraUp]
    assert reader.frames == 5


def test_debouncer_needs_both_the_missed_frames_and_the_seconds_to_forget() -> None:
    code = Decoded("X", Symbology.QR)
    debouncer = Debouncer(forget_frames=3, forget_seconds=1.0)
    assert debouncer.new_codes([code], now=0.0) == [code]
    for now in (0.1, 0.2, 0.3, 0.4):  # four missed frames, but only 0.4 s
        debouncer.new_codes([], now=now)
    assert debouncer.new_codes([code], now=0.5) == []
    for now in (5.0, 6.0):  # two missed frames, but 5.5 s
        debouncer.new_codes([], now=now)
    assert debouncer.new_codes([code], now=7.0) == []
    for now in (8.0, 9.0, 10.0):
        debouncer.new_codes([], now=now)
    assert debouncer.new_codes([code], now=11.0) == [code]


def test_a_label_counts_at_its_second_read_and_a_one_frame_misread_never() -> None:
    label = Decoded("SF1234567890", Symbology.CODE128)
    misread = Decoded("SF1Z34567890", Symbology.CODE128)
    debouncer = Debouncer(forget_frames=3, forget_seconds=1.0)

    first = debouncer.new_codes([label, misread], now=0.0)
    second = debouncer.new_codes([label], now=0.1)
    held = [debouncer.new_codes([label], now=0.1 * n) for n in range(2, 6)]
    later = debouncer.new_codes([misread], now=2.0)  # the misread's first read is long gone

    assert (first, second, held, later) == ([], [label], [[]] * 4, [])


def test_a_label_read_twice_too_far_apart_is_not_confirmed() -> None:
    label = Decoded("SF1234567890", Symbology.CODE128)
    debouncer = Debouncer(forget_frames=3, forget_seconds=1.0)
    assert debouncer.new_codes([label], now=0.0) == []
    assert debouncer.new_codes([label], now=1.5) == []
    assert debouncer.new_codes([label], now=1.6) == [label]


def test_a_label_held_up_to_the_camera_is_reported_once() -> None:
    events = read_all([frame_of("label", LABEL, size=(1280, 720))] * FPS, frames=FPS)
    assert codes(events) == [LABEL]


def test_fake_camera_plays_saved_photos_then_reports_the_camera_lost(tmp_path: Path) -> None:
    photo = tmp_path / "phone.png"
    assert cv2.imwrite(str(photo), frame_of("glare"))
    camera = FakeCamera.from_files([str(photo)], repeat=3)

    events = list(
        CameraReader(camera, default_chain(), SETTINGS, clock=frame_clock()).events(max_frames=3)
    )
    assert codes(events) == [PICKUP_QR]
    with pytest.raises(CameraLost):
        camera.read()


def test_fake_camera_refuses_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    with pytest.raises(ImageUnreadable):
        FakeCamera.from_files([str(notes)])
