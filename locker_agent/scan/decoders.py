"""Decoders that find QR and Code 128 symbols in a camera frame, and the chain the kiosk uses.

A :class:`Decoder` takes one frame (a ``uint8`` numpy array, grayscale ``H×W`` or BGR
``H×W×3``) and returns what it read. Two libraries are wrapped: ZBar (through ``pyzbar``)
and zxing-cpp. Both are asked for QR and Code 128 only: every other symbology a library
knows is one more way to "read" a code in a poster or a pattern of tiles, and the kiosk
has no use for them.

:class:`DecoderChain` converts the frame to grayscale once, optionally shrinks it, and
tries its decoders in order, stopping at the first that finds something. Stopping, not
merging, because a kiosk frame shows one code and the next frame comes 33 ms later:
running a second library over a frame that already gave an answer only costs time, and a
code the first library missed in one frame is read in one of the next. The order and the
defaults come from ``bench/bench_scan.py`` (see docs/scanning.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp
from pyzbar import pyzbar

Frame = npt.NDArray[np.uint8]


class Symbology(StrEnum):
    QR = "qr"
    CODE128 = "code128"
    #: a code from the serial scanner module, which sends only the text
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decoded:
    text: str
    symbology: Symbology


class Decoder(Protocol):
    name: str

    def decode(self, frame: Frame) -> list[Decoded]:
        """Every QR or Code 128 symbol read in ``frame`` (grayscale or BGR ``uint8``)."""
        ...


def to_gray(frame: Frame) -> Frame:
    """The frame as one ``uint8`` channel; a grayscale frame is returned as is."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY), dtype=np.uint8)
    raise ValueError(f"not a grayscale or BGR frame: shape {frame.shape}")


def _text(data: bytes) -> str:
    # Our payloads and carrier labels are ASCII; anything else is kept readable, never raised.
    return data.decode("utf-8", errors="replace")


_ZBAR_SYMBOLS: Final = {
    pyzbar.ZBarSymbol.QRCODE: Symbology.QR,
    pyzbar.ZBarSymbol.CODE128: Symbology.CODE128,
}
_ZBAR_TYPES: Final = {symbol.name: symbology for symbol, symbology in _ZBAR_SYMBOLS.items()}


class ZbarDecoder:
    """ZBar through pyzbar. ZBar does not look for light-on-dark codes: see ``try_inverted``."""

    name = "zbar"

    def __init__(self, *, try_inverted: bool = True) -> None:
        self._try_inverted = try_inverted

    def decode(self, frame: Frame) -> list[Decoded]:
        gray = to_gray(frame)
        found = self._read(gray)
        if not found and self._try_inverted:
            # only when nothing was found: the inverted pass doubles the cost of a miss
            found = self._read(np.asarray(255 - gray, dtype=np.uint8))
        return found

    def _read(self, gray: Frame) -> list[Decoded]:
        symbols = list(_ZBAR_SYMBOLS)
        results = pyzbar.decode(gray, symbols=symbols)
        return [Decoded(_text(result.data), _ZBAR_TYPES[result.type]) for result in results]


_ZXING_FORMATS: Final = {
    zxingcpp.BarcodeFormat.QRCode: Symbology.QR,
    zxingcpp.BarcodeFormat.Code128: Symbology.CODE128,
}


class ZxingDecoder:
    """zxing-cpp, which also finds light-on-dark codes when ``try_invert`` is on."""

    def __init__(
        self,
        *,
        try_invert: bool = True,
        try_downscale: bool = True,
        try_rotate: bool = True,
        symbologies: Iterable[Symbology] = (Symbology.QR, Symbology.CODE128),
        binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage,
        name: str | None = None,
    ) -> None:
        quick = not (try_downscale or try_rotate)
        self.name = name or ("zxing-quick" if quick else "zxing")
        self.try_invert = try_invert
        self.try_downscale = try_downscale
        self.try_rotate = try_rotate
        self.binarizer = binarizer
        wanted = set(symbologies)
        self._formats = zxingcpp.BarcodeFormats(
            [fmt for fmt, symbology in _ZXING_FORMATS.items() if symbology in wanted]
        )

    def decode(self, frame: Frame) -> list[Decoded]:
        results = zxingcpp.read_barcodes(
            to_gray(frame),
            formats=self._formats,
            try_rotate=self.try_rotate,
            try_downscale=self.try_downscale,
            try_invert=self.try_invert,
            binarizer=self.binarizer,
        )
        return [
            Decoded(result.text, _ZXING_FORMATS[result.format])
            for result in results
            if result.valid and result.format in _ZXING_FORMATS
        ]


class LabelDecoder:
    """zxing-cpp for printed Code 128 labels only, cutting every scan line at mid-grey.

    zxing-cpp's default binarizer cuts each scan line of a linear code at a black point
    taken from that line's histogram, and the line also crosses the hallway around the
    label. When the bars are under two pixels wide and slightly out of focus, the narrow
    bars and spaces blur into greys that this black point swallows, and the label is not
    read. Halfway between ink and paper is where the blur leaves each edge, so this
    decoder stretches the frame's grey levels (its darkest and brightest 1 % to black and
    white: the ink and the paper of a label held up to the camera) and has zxing-cpp cut
    at a fixed mid-grey. It is the chain's last stage: it only adds reads to frames
    nothing else read, and is limited to Code 128 and dark bars (no inverted pass, no
    downscaling, which would merge the thin bars it is there for).
    """

    name = "zxing-label"

    def __init__(self) -> None:
        self._zxing = ZxingDecoder(
            try_invert=False,
            try_downscale=False,
            try_rotate=True,
            symbologies=(Symbology.CODE128,),
            binarizer=zxingcpp.Binarizer.FixedThreshold,
        )

    def decode(self, frame: Frame) -> list[Decoded]:
        return self._zxing.decode(stretch_contrast(to_gray(frame)))


#: the share of pixels taken as pure black, and as pure white, by :func:`stretch_contrast`
STRETCH_CLIP: Final = 0.01


def stretch_contrast(gray: Frame, clip: float = STRETCH_CLIP) -> Frame:
    """``gray`` with its darkest ``clip`` share of pixels black and its brightest white."""
    histogram = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    cumulative = np.cumsum(histogram) / gray.size
    black = int(np.searchsorted(cumulative, clip))
    white = int(np.searchsorted(cumulative, 1 - clip))
    if white <= black:
        return gray  # a flat frame: nothing to stretch
    levels = np.clip((np.arange(256) - black) * 255.0 / (white - black), 0, 255)
    return np.asarray(cv2.LUT(gray, levels.astype(np.uint8)), dtype=np.uint8)


def label_decoder() -> LabelDecoder:
    """The last stage of every ``[camera]`` chain: see :class:`LabelDecoder`."""
    return LabelDecoder()


def distinct(found: Iterable[Decoded]) -> list[Decoded]:
    """``found`` without repeats, in first-seen order."""
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Stage:
    """One decoder run on the frame shrunk to at most ``max_width`` pixels (None: as is)."""

    decoder: Decoder
    max_width: int | None = None

    @property
    def name(self) -> str:
        return self.decoder.name + (f"@{self.max_width}" if self.max_width else "")


class DecoderChain:
    """Grayscale once, then each stage in order until one reads something."""

    def __init__(self, stages: Sequence[Stage | Decoder]) -> None:
        if not stages:
            raise ValueError("a decoder chain needs at least one stage")
        self.stages = tuple(s if isinstance(s, Stage) else Stage(s) for s in stages)

    @property
    def name(self) -> str:
        return " > ".join(stage.name for stage in self.stages)

    def decode(self, frame: Frame) -> list[Decoded]:
        gray = to_gray(frame)
        shrunk: dict[int | None, Frame] = {None: gray}
        for stage in self.stages:
            if stage.max_width not in shrunk:
                shrunk[stage.max_width] = shrink(gray, stage.max_width)
            found = stage.decoder.decode(shrunk[stage.max_width])
            if found:
                return distinct(found)
        return []


def shrink(gray: Frame, max_width: int | None) -> Frame:
    """``gray`` scaled down (area-averaged) to at most ``max_width`` pixels wide."""
    width = gray.shape[1]
    if max_width is None or width <= max_width:
        return gray
    height = round(gray.shape[0] * max_width / width)
    small = cv2.resize(gray, (max_width, height), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8)


#: the fast first pass works on frames at most this wide (a 720p frame is halved)
FAST_WIDTH: Final = 640
DECODERS: Final = ("zxing", "zbar")
DEFAULT_DECODERS: Final = ("zxing",)


def make_decoder(name: str) -> Decoder:
    """A decoder by its configuration name (``zxing`` or ``zbar``), with its full search."""
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    raise ValueError(f"unknown decoder {name!r}; known: {', '.join(DECODERS)}")


def chain_for(decoders: Sequence[str], *, fast_width: int | None = FAST_WIDTH) -> DecoderChain:
    """The ``[camera]`` chain: an optional quick zxing-cpp pass on the frame shrunk to
    ``fast_width``, then each named decoder's full search at full resolution, in order,
    then the fixed-threshold pass for blurred parcel labels (:func:`label_decoder`).
    """
    stages = [Stage(make_decoder(name)) for name in decoders]
    if fast_width is not None:
        quick = ZxingDecoder(try_downscale=False, try_rotate=False)
        stages.insert(0, Stage(quick, fast_width))
    stages.append(Stage(label_decoder()))
    return DecoderChain(stages)


def default_chain() -> DecoderChain:
    """The chain the kiosk and ``locker-agent scan`` use (chosen by bench/bench_scan.py).

    First a quick pass of zxing-cpp on the frame halved to VGA, upright and inverted only;
    then, when that read nothing, zxing-cpp's full search at full resolution, for small
    codes and long Code 128 labels whose bars the halving merges; last, when still nothing
    was read, Code 128 with a fixed mid-grey threshold, for labels whose bars are under
    two pixels wide and slightly blurred (a VGA camera). ZBar is left out: on the
    benchmark it read nothing zxing-cpp missed, for several times the CPU of zxing-cpp on
    every frame with no code (docs/scanning.md).
    """
    return chain_for(DEFAULT_DECODERS)
