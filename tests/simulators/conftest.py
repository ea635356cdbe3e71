"""Fixtures of the simulator tests: a served bus plus a host talking pyserial to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
import serial
from sim_helpers import FAST, Host

from simulators import BoardConfig, SimulatedBus, Timing

Serve = Callable[..., tuple[SimulatedBus, Host]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(protocol, boards, locks=None, timing=FAST, transport="pty")`` → (bus, host)."""
    opened: list[tuple[SimulatedBus, serial.Serial]] = []

    def _serve(
        protocol: str = "8a80",
        boards: Sequence[int | BoardConfig] = (1,),
        locks: int | None = None,
        timing: Timing = FAST,
        transport: str = "pty",
    ) -> tuple[SimulatedBus, Host]:
        configs = [b if isinstance(b, BoardConfig) else BoardConfig(b, locks) for b in boards]
        bus = SimulatedBus(protocol, configs, timing)
        url = bus.start_pty() if transport == "pty" else bus.start_tcp()
        port = serial.serial_for_url(url, baudrate=bus.baudrate, timeout=0.005)
        opened.append((bus, port))
        return bus, Host(port, bus.protocol)

    yield _serve
    for bus, port in opened:
        port.close()
        bus.stop()
