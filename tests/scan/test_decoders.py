"""The kiosk's decoder chain reads our QR on a phone and parcel labels, and invents nothing."""

from __future__ import annotations

import secrets

import cv2
import numpy as np
import pytest

from locker_agent.scan.decoders import (
    Decoded,
    DecoderChain,
    Frame,
    Stage,
    Symbology,
    ZbarDecoder,
    ZxingDecoder,
    default_chain,
    label_decoder,
    make_decoder,
    to_gray,
)
from locker_contract.pickup_qr import encode_pickup_qr, parse_pickup_qr
from locker_server.notifications.qr import qr_png
from simulators.camera import CONDITIONS, as_sensor_sees, qr_modules
from tests.scan.scenes import LABEL, PICKUP_QR, empty_frame, frame_of

HD = (1280, 720)
VGA = (640, 480)
#: 17 characters like the benchmark's labels: 242 modules, 1.8 pixels each at 640×480
VGA_LABEL = "JJDCWH8H5AJXKL0F8"
PHONE_CONDITIONS = [c for c in CONDITIONS if c != "no_code" and not c.startswith("label")]


class ScriptedDecoder:
    """A decoder that answers from a handler and remembers the frames it was given."""

    def __init__(self, name: str, answer: list[Decoded]) -> None:
        self.name = name
        self._answer = answer
        self.seen: list[Frame] = []

    def decode(self, frame: Frame) -> list[Decoded]:
        self.seen.append(frame)
        return list(self._answer)


@pytest.mark.parametrize("condition", PHONE_CONDITIONS)
def test_kiosk_reads_the_pickup_qr_held_up_on_a_phone(condition: str) -> None:
    assert default_chain().decode(frame_of(condition, size=HD)) == [
        Decoded(PICKUP_QR, Symbology.QR)
    ]


@pytest.mark.parametrize("condition", ["label", "label_tilted"])
def test_kiosk_reads_a_courier_parcel_label(condition: str) -> None:
    found = default_chain().decode(frame_of(condition, LABEL, size=HD))
    assert found == [Decoded(LABEL, Symbology.CODE128)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kiosk_reads_a_slightly_blurred_label_held_up_to_a_vga_camera(seed: int) -> None:
    frame = frame_of("label_tilted", VGA_LABEL, seed=seed, size=VGA)
    assert default_chain().decode(frame) == [Decoded(VGA_LABEL, Symbology.CODE128)]


def test_only_the_fixed_threshold_pass_reads_thin_blurred_bars() -> None:
    frame = frame_of("label_tilted", VGA_LABEL, seed=1, size=VGA)

    assert ZxingDecoder().decode(frame) == []
    assert ZbarDecoder().decode(frame) == []
    assert label_decoder().decode(frame) == [Decoded(VGA_LABEL, Symbology.CODE128)]


def test_the_label_pass_reads_nothing_but_code128() -> None:
    assert label_decoder().decode(frame_of("clean")) == []


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("size", [HD, VGA], ids=["720p", "vga"])
def test_frame_with_no_code_reads_as_nothing_with_every_decoder(
    seed: int, size: tuple[int, int]
) -> None:
    frame = empty_frame(seed, size=size)
    for decoder in (default_chain(), ZbarDecoder(), ZxingDecoder(), label_decoder()):
        assert decoder.decode(frame) == []


def test_the_virtual_camera_greys_a_pixel_that_straddles_a_bar_edge() -> None:
    light_then_dark = np.array([[1.0, 0.0]], dtype=np.float32)
    # two modules on three pixels: the middle pixel sees half of each
    assert as_sensor_sees(light_then_dark, (3, 1)).tolist() == [[1.0, 0.5, 0.0]]


@pytest.mark.parametrize("decoder", [ZbarDecoder(), ZxingDecoder()], ids=lambda d: d.name)
def test_both_libraries_read_qr_and_code128_with_their_symbology(decoder: ZbarDecoder) -> None:
    assert decoder.decode(frame_of("clean")) == [Decoded(PICKUP_QR, Symbology.QR)]
    label = frame_of("label", LABEL, size=HD)
    assert decoder.decode(label) == [Decoded(LABEL, Symbology.CODE128)]


def test_zbar_finds_a_dark_mode_qr_only_with_its_inverted_pass() -> None:
    dark = frame_of("inverted")
    assert ZbarDecoder(try_inverted=False).decode(dark) == []
    assert ZbarDecoder().decode(dark) == [Decoded(PICKUP_QR, Symbology.QR)]


def test_chain_stops_at_the_first_stage_that_reads_something() -> None:
    first = ScriptedDecoder("empty", [])
    second = ScriptedDecoder("finds", [Decoded("A", Symbology.QR), Decoded("A", Symbology.QR)])
    third = ScriptedDecoder("never", [Decoded("B", Symbology.QR)])
    chain = DecoderChain([first, second, third])

    assert chain.decode(frame_of("clean")) == [Decoded("A", Symbology.QR)]
    assert (len(first.seen), len(second.seen), third.seen) == (1, 1, [])


def test_chain_hands_each_stage_a_grayscale_frame_shrunk_to_its_width() -> None:
    fast = ScriptedDecoder("fast", [])
    full = ScriptedDecoder("full", [])
    DecoderChain([Stage(fast, 640), Stage(full)]).decode(frame_of("clean", size=HD))

    assert fast.seen[0].shape == (360, 640)
    assert full.seen[0].shape == (720, 1280)


def test_a_frame_that_is_neither_gray_nor_bgr_is_refused() -> None:
    with pytest.raises(ValueError, match="grayscale or BGR"):
        to_gray(np.zeros((4, 4, 2), dtype=np.uint8))


def test_decoders_are_configured_by_name() -> None:
    assert make_decoder("zbar").name == "zbar"
    assert make_decoder("zxing").name == "zxing"
    with pytest.raises(ValueError, match="unknown decoder"):
        make_decoder("opencv")


def test_the_email_qr_png_reads_back_to_the_token_with_the_kiosk_chain() -> None:
    token = secrets.token_urlsafe(24)
    png = np.frombuffer(qr_png(token), dtype=np.uint8)
    image = cv2.imdecode(png, cv2.IMREAD_GRAYSCALE)

    (found,) = default_chain().decode(image)
    assert parse_pickup_qr(found.text) == token


def test_the_checked_payload_keeps_the_qr_as_small_as_the_bare_token() -> None:
    token = secrets.token_urlsafe(24)
    assert len(qr_modules(encode_pickup_qr(token))) == len(qr_modules(token)) == 29 + 2 * 4
