"""Benchmark of the door layer. A script, not a test.

Setting: a simulated 8A/80 bus of 4 boards x 24 doors served on a real pty at 9600 baud
with UART byte pacing on; the agent's door controller polls it (query-all every 100 ms)
through pyserial exactly as it would a USB-RS485 adapter.

Measured, each as p50 / p99 / max over ``--samples`` samples:

* (a) unlock latency: from the ``open_door()`` call to the unlock frame decoded by the
  simulated board (its receive timestamp), including waiting for a poll in flight;
* (c) open confirmation: from the ``open_door()`` call to the door confirmed open by a
  reading of a query sent after the unlock (``OpenResult.seconds_to_open``), same opens
  as (a);
* (b) event latency: from a door changing state in the simulator (``bus.subscribe``
  timestamp; a person opening or closing it without a command) to the agent's
  ``opened``/``closed`` event. Goal: p99 <= 250 ms;
* baseline: the raw round trip of one query-all on the same pty (pyserial write, read
  until the 7-byte reply is in), measured before the agent opens the port, so ratios
  can be stated.

Usage::

    .venv/bin/python bench/bench_door_layer.py [--samples 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import queue
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import serial

from firmware_protocol import get_protocol
from firmware_protocol.base import RequestKind
from locker_agent.cabinet import Cabinet
from locker_agent.doors import ControllerSettings, DoorEvent, DoorEventKind
from locker_agent.layout import BoardConfig, CabinetLayout
from locker_agent.serial_link import LinkSettings
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import DoorChange, SimulatedBus, Timing

BOARDS = (1, 2, 3, 4)
LOCKS = 24
BAUD = 9600
POLL_INTERVAL = 0.1
#: realistic line timing (pacing at 9600 baud); a short unlock pulse so hundreds of
#: opens fit in a minute
TIMING = Timing(
    unlock_reply_delay=0.05,
    query_reply_delay=0.01,
    spring_delay=0.02,
    pulse_duration=0.04,
    baud=BAUD,
    pacing=True,
)


@dataclass(frozen=True)
class Summary:
    name: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, name: str, seconds: list[float]) -> Summary:
        ms = sorted(s * 1000 for s in seconds)
        p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
        return cls(name, len(ms), statistics.median(ms), p99, ms[-1])


def baseline_round_trips(url: str, samples: int) -> list[float]:
    codec = get_protocol("8a80")
    request = codec.query_all(1).to_bytes()
    times: list[float] = []
    with serial.serial_for_url(url, baudrate=BAUD, timeout=0.5) as port:
        for _ in range(samples):
            port.reset_input_buffer()
            started = time.monotonic()
            port.write(request)
            reply = port.read(7)
            times.append(time.monotonic() - started)
            if len(reply) != 7:
                raise RuntimeError(f"baseline: short reply {reply.hex(' ')}")
            time.sleep(0.005)
    return times


def unlock_latencies(
    bus: SimulatedBus, cabinet: Cabinet, samples: int
) -> tuple[list[float], list[float]]:
    """(a) open_door() call → unlock frame decoded by the simulated board, and
    (c) open_door() call → door confirmed open."""
    doors = list(cabinet.layout.doors)
    latencies: list[float] = []
    confirmations: list[float] = []
    for sample in range(samples):
        door = doors[sample % len(doors)]
        seen = len(bus.received)
        called = time.monotonic()
        result = cabinet.doors.open_door(door)
        if result.seconds_to_open is None:
            raise RuntimeError(f"door {door} not confirmed open: {result.outcome.value}")
        confirmations.append(result.seconds_to_open)
        unlock_at = next(
            at for at, f in bus.received[seen:] if getattr(f, "kind", None) is RequestKind.UNLOCK
        )
        latencies.append(unlock_at - called)
        address = cabinet.layout.address_of(door)
        bus.board(address.board).door(address.lock).close()
    return latencies, confirmations


def event_latencies(bus: SimulatedBus, cabinet: Cabinet, samples: int) -> list[float]:
    """(b) physical door change in the simulator → the agent's opened/closed event."""
    changes: dict[tuple[int, int, bool], float] = {}
    events: queue.Queue[DoorEvent] = queue.Queue()
    wanted = {DoorEventKind.OPENED, DoorEventKind.CLOSED}
    unsubscribe_bus = bus.subscribe(lambda c: _note_change(changes, c))
    unsubscribe_agent = cabinet.doors.subscribe(
        lambda e: events.put(e) if e.kind in wanted else None
    )
    rng = random.Random(2)
    latencies: list[float] = []
    try:
        for _ in range(samples):
            door = rng.choice(list(cabinet.layout.doors))
            address = cabinet.layout.address_of(door)
            simulated = bus.board(address.board).door(address.lock)
            time.sleep(rng.uniform(0.0, POLL_INTERVAL))  # change at a random poll phase
            move: Callable[[], None] = (
                simulated.close if simulated.is_open else simulated.force_open
            )
            opening = not simulated.is_open
            move()
            event = _next_event_for(events, door)
            key = (address.board, address.lock, opening)
            latencies.append(event.monotonic - changes[key])
    finally:
        unsubscribe_bus()
        unsubscribe_agent()
    return latencies


def _note_change(changes: dict[tuple[int, int, bool], float], change: DoorChange) -> None:
    changes[(change.board, change.lock, change.is_open)] = change.at


def _next_event_for(events: queue.Queue[DoorEvent], door: int) -> DoorEvent:
    deadline = time.monotonic() + 5.0
    while True:
        event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        if event.door == door:
            return event


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def run(samples: int) -> tuple[list[Summary], dict[str, object]]:
    codec = get_protocol("8a80")
    sim_boards = [SimBoardConfig(address, LOCKS) for address in BOARDS]
    with SimulatedBus("8a80", sim_boards, TIMING) as bus:
        url = bus.start_pty()
        baseline = Summary.of("baseline: raw query-all round trip", baseline_round_trips(url, 100))
        layout = CabinetLayout.sequential(codec, [BoardConfig(a, LOCKS) for a in BOARDS])
        control = ControllerSettings(
            poll_interval=POLL_INTERVAL, confirm_window=1.0, max_opens_per_door=1000
        )
        with Cabinet(url, codec, layout, LinkSettings(baudrate=BAUD), control) as cabinet:
            if not cabinet.doors.wait_first_poll(5.0):
                raise RuntimeError("the agent could not read the boards")
            unlocks, confirmations = unlock_latencies(bus, cabinet, samples)
            unlock = Summary.of("(a) open_door() -> unlock on the line", unlocks)
            confirm = Summary.of("(c) open_door() -> confirmed open", confirmations)
            event = Summary.of(
                "(b) door change -> agent event", event_latencies(bus, cabinet, samples)
            )
            stats = dataclasses.asdict(cabinet.link.stats)
    summaries = [baseline, unlock, event, confirm]
    report: dict[str, object] = {
        "machine": machine(),
        "setting": (
            f"8A/80, {len(BOARDS)} boards x {LOCKS} doors, {BAUD} baud paced, pty, "
            f"poll interval {POLL_INTERVAL * 1000:.0f} ms"
        ),
        "results": [dataclasses.asdict(s) for s in summaries],
        "ratios_to_baseline_p50": {
            "unlock_p50": unlock.p50_ms / baseline.p50_ms,
            "event_p50": event.p50_ms / baseline.p50_ms,
            "event_p99": event.p99_ms / baseline.p50_ms,
        },
        "goal_event_p99_ms": 250,
        "goal_met": event.p99_ms <= 250,
        "link_stats": stats,
    }
    return summaries, report


def print_table(summaries: list[Summary], report: dict[str, object]) -> None:
    print(f"machine: {report['machine']}")
    print(f"setting: {report['setting']}")
    print(f"{'measure':<42} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for s in summaries:
        print(f"{s.name:<42} {s.samples:>5} {s.p50_ms:>8.1f} {s.p99_ms:>8.1f} {s.max_ms:>8.1f}")
    baseline, unlock, event, _ = summaries
    base = baseline.p50_ms
    print(
        f"ratios to the baseline p50: (a) p50 {unlock.p50_ms / base:.1f}x, "
        f"(b) p50 {event.p50_ms / base:.1f}x, (b) p99 {event.p99_ms / base:.1f}x"
    )
    print(f"goal (b) p99 <= 250 ms: {'met' if report['goal_met'] else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    summaries, report = run(args.samples)
    print_table(summaries, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["goal_met"] else 1


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
