"""Simulated lock-control boards on a real serial line (pty) or a TCP socket.

Quick start::

    from simulators import BoardConfig, SimulatedBus, Timing

    with SimulatedBus("8a80", [BoardConfig(address=1, locks=24)], Timing.fast()) as bus:
        port = bus.start_pty()          # open it with serial.serial_for_url(port, 9600)
        bus.board(1).door(5).faults.jammed = True

Modules: :mod:`~simulators.bus` (the bus and its request handlers),
:mod:`~simulators.board` (doors and their physics), :mod:`~simulators.dialects`
(replies per protocol, built with :mod:`firmware_protocol`), :mod:`~simulators.faults`
(the fault menu), :mod:`~simulators.serving` (pty/TCP transports and the UART pacer),
:mod:`~simulators.cli` (``locker-sim``).

Above the boards, the simulators may use the real agent and the server's broker
configuration (nothing below imports them): :mod:`~simulators.cabinet` (ONE cabinet: the
real agent runtime on simulated boards), :mod:`~simulators.fleet` (thousands of
lightweight MQTT cabinets), :mod:`~simulators.demo` (``locker-demo``) and
:mod:`~simulators.mosquitto` (a private Mosquitto for tests and benchmarks).
"""

from simulators.board import BoardConfig, DoorChange, SimulatedBoard, SimulatedDoor
from simulators.bus import SimulatedBus
from simulators.faults import BoardFaults, BusFaults, DoorFaults
from simulators.timing import Timing

__all__ = [
    "BoardConfig",
    "BoardFaults",
    "BusFaults",
    "DoorChange",
    "DoorFaults",
    "SimulatedBoard",
    "SimulatedBus",
    "SimulatedDoor",
    "Timing",
]
