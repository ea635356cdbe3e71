"""Fixtures of the simulator tests: a served bus plus a host talking pyserial to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# The root conftest puts tests/ on sys.path, where this directory would shadow the real
# package as an empty namespace package under a bare `pytest` run (`python -m pytest`
# adds the repository itself first). Until pytest's `pythonpath = ["."]` is configured,
# put the repository first here.
_REPOSITORY = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _REPOSITORY:
    sys.path.insert(0, _REPOSITORY)

import pytest  # noqa: E402
import serial  # noqa: E402
from sim_helpers import FAST, Host  # noqa: E402

from simulators import BoardConfig, SimulatedBus, Timing  # noqa: E402

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
