"""Benchmark of the kiosk's code reading. A script, not a test.

A seeded set of generated frames (``simulators.camera``), 1280×720 and 640×480: a pickup
QR (``LKR1:<token>:<check>``) on a phone screen — clean, tilted, blurred, dim, noisy,
with glare, with screen moiré, in dark mode (inverted), small — Code 128 parcel labels,
and frames with no code at all. Every decoder and chain reads every frame on one core.

Per decoder and frame size: success rate (the frame's payload among the reads), false
reads (a payload not in the frame, or anything read from a no-code frame — the goal is
none, ever), and time per frame p50 / p99 around ``decode``: CPU time of the thread
(``time.thread_time``, what one core spends; it does not count waiting for a core on a
shared machine) and wall time (``time.perf_counter``).
Same-run baselines: ``cv2.cvtColor`` BGR→gray, and ``cv2.imdecode`` of the frame as PNG.

Goal: ≥ 90 % of code frames decoded at ≤ 3 ms median per 720p frame, no false read.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_scan.py [--per-condition 20] [--seed 1]
        [--default-only] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from locker_agent.scan.decoders import (
    FAST_WIDTH,
    Decoder,
    DecoderChain,
    Frame,
    Stage,
    ZbarDecoder,
    ZxingDecoder,
    chain_for,
    default_chain,
    label_decoder,
    to_gray,
)
from locker_contract.pickup_qr import encode_pickup_qr
from simulators.camera import CONDITIONS, render, scene_for

SIZES = ((1280, 720), (640, 480))
LABEL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class Sample:
    condition: str
    size: tuple[int, int]
    expected: str | None
    frame: Frame


def _payload(condition: str, rng: np.random.Generator) -> str:
    if CONDITIONS[condition].get("symbology") == "code128":
        return "JJD" + "".join(rng.choice(list(LABEL_ALPHABET), 14))
    token = "".join(
        rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 32)
    )
    return encode_pickup_qr(token)


def frame_set(per_condition: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for width, height in SIZES:
        for condition in CONDITIONS:
            for _ in range(per_condition):
                payload = _payload(condition, rng)
                scene = scene_for(
                    condition, payload, seed=int(rng.integers(2**31)), width=width, height=height
                )
                samples.append(Sample(condition, (width, height), scene.payload, render(scene)))
    return samples


def _time(function: Callable[[Frame], object], frame: Frame) -> tuple[float, float, object]:
    """Wall and CPU milliseconds of one call (CPU time does not count waiting for a core)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = function(frame)
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000, result


@dataclass
class Tally:
    times: list[float]
    cpu_times: list[float]
    empty_times: list[float]
    decoded: int = 0
    codes: int = 0
    false_reads: int = 0
    missed: tuple[str, ...] = ()
    false_examples: tuple[str, ...] = ()

    def row(self) -> dict[str, object]:
        return {
            "decoded_pct": round(100 * self.decoded / max(1, self.codes), 1),
            "false_reads": self.false_reads,
            "cpu_p50_ms": _percentile(self.cpu_times, 0.50),
            "cpu_p99_ms": _percentile(self.cpu_times, 0.99),
            "wall_p50_ms": _percentile(self.times, 0.50),
            "wall_p99_ms": _percentile(self.times, 0.99),
            "no_code_cpu_p50_ms": _percentile(self.empty_times, 0.50),
            "false_read_examples": list(self.false_examples[:5]),
        }


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))], 2)


def measure(decoder: Decoder, samples: Sequence[Sample], size: tuple[int, int]) -> Tally:
    tally = Tally(times=[], cpu_times=[], empty_times=[])
    missed: list[str] = []
    for sample in (s for s in samples if s.size == size):
        ms, cpu_ms, found = _time(decoder.decode, sample.frame)
        tally.times.append(ms)
        tally.cpu_times.append(cpu_ms)
        if sample.expected is None:
            tally.empty_times.append(cpu_ms)
        texts = {item.text for item in found}  # type: ignore[attr-defined]
        wrong = texts - {sample.expected}
        tally.false_reads += len(wrong)
        tally.false_examples += tuple(f"{sample.condition}: {text!r}" for text in wrong)
        if sample.expected is not None:
            tally.codes += 1
            if sample.expected in texts:
                tally.decoded += 1
            else:
                missed.append(sample.condition)
    tally.missed = tuple(missed)
    return tally


def baselines(samples: Sequence[Sample], size: tuple[int, int]) -> dict[str, float]:
    frames = [s.frame for s in samples if s.size == size]
    pngs = [cv2.imencode(".png", frame)[1] for frame in frames]
    gray = [_time(to_gray, frame)[1] for frame in frames]
    decode = [_time(lambda png: cv2.imdecode(png, cv2.IMREAD_COLOR), png)[1] for png in pngs]
    return {
        "bgr_to_gray_cpu_p50_ms": round(statistics.median(gray), 3),
        "png_imdecode_cpu_p50_ms": round(statistics.median(decode), 3),
    }


def candidates() -> list[DecoderChain]:
    """Each library alone, both orders of the two, and the default's stages alone, with and
    without its last (label) stage, and with ZBar added before that stage."""
    quick = ZxingDecoder(try_downscale=False, try_rotate=False)
    return [
        DecoderChain([ZbarDecoder()]),
        DecoderChain([ZxingDecoder()]),
        DecoderChain([Stage(quick, FAST_WIDTH)]),
        DecoderChain([label_decoder()]),
        DecoderChain([ZbarDecoder(), ZxingDecoder()]),
        DecoderChain([ZxingDecoder(), ZbarDecoder()]),
        DecoderChain([Stage(quick, FAST_WIDTH), ZxingDecoder()]),
        chain_for(["zxing", "zbar"]),
        default_chain(),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-condition", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--default-only", action="store_true", help="only the default chain")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    samples = frame_set(args.per_condition, args.seed)
    report: dict[str, object] = {
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "frames": len(samples),
        "conditions": list(CONDITIONS),
        "per_condition": args.per_condition,
        "seed": args.seed,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "sizes": {},
    }
    for size in SIZES:
        rows: dict[str, object] = {"baseline": baselines(samples, size)}
        chains = [default_chain()] if args.default_only else candidates()
        for decoder in chains:
            label = ("default: " if decoder is chains[-1] else "") + decoder.name
            tally = measure(decoder, samples, size)
            rows[label] = tally.row() | {"missed_by_condition": _count(tally.missed)}
        report["sizes"][f"{size[0]}x{size[1]}"] = rows  # type: ignore[index]
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _count(items: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
