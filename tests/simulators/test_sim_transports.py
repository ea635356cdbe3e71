"""Serving: raw pty and TCP transports, UART pacing, clean start and stop."""

from __future__ import annotations

import os
import threading
import time

import pytest
import serial
from sim_helpers import FAST, Host

from firmware_protocol import kerong, xor8a80
from simulators import BoardConfig, SimulatedBus
from simulators.errors import AlreadyServingError, SimulatorConfigError


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_tcp_transport_carries_the_same_conversation(serve):
    bus, host = serve("kerong", boards=[0, 1], locks=16, transport="tcp")

    assert bus.address is not None
    assert bus.address.startswith("socket://127.0.0.1:")
    host.ask(kerong.UnlockRequest(1, 16))
    request = kerong.BusStatusRequest()
    host.send(request)
    assert [r.board for r in host.replies(request, 2)] == [0, 1]
    assert bus.board(1).door(16).unlock_pulses == 1


def test_a_new_tcp_client_replaces_and_disconnects_the_previous_one():
    with SimulatedBus("8a80", [BoardConfig(1, 8)], FAST) as bus:
        url = bus.start_tcp()
        first = serial.serial_for_url(url, timeout=0.005)
        second = serial.serial_for_url(url, timeout=0.005)
        try:
            request = xor8a80.QueryLockRequest(1, 1)
            reply = Host(second, bus.protocol).ask(request)
            assert reply == xor8a80.LockStatusReply(1, 1, xor8a80.SIGNAL)
            with pytest.raises(serial.SerialException, match="disconnected"):
                first.read(1)
        finally:
            first.close()
            second.close()


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_stop_ends_every_thread_and_closes_every_descriptor(transport):
    threads, fds = set(threading.enumerate()), open_fds()
    bus = SimulatedBus("8a80", [BoardConfig(1, 8)], FAST)
    url = bus.start_pty() if transport == "pty" else bus.start_tcp()
    with serial.serial_for_url(url, baudrate=9600, timeout=0.005) as port:
        Host(port, bus.protocol).ask(xor8a80.UnlockRequest(1, 1))
    bus.board(1).faults.late_reply = 30.0  # a reply still pending must not hold stop up

    started = time.monotonic()
    bus.stop()

    assert time.monotonic() - started < 1.0
    assert set(threading.enumerate()) == threads
    assert open_fds() == fds


def test_the_context_manager_stops_the_bus_and_stop_is_idempotent():
    threads = set(threading.enumerate())
    with SimulatedBus("kerong", [BoardConfig(0, 16)], FAST) as bus:
        bus.start_pty()
        assert len(set(threading.enumerate()) - threads) == 3
    bus.stop()

    assert set(threading.enumerate()) == threads
    assert bus.address is None


def test_a_stopped_bus_can_serve_again_with_its_doors_as_they_were():
    with SimulatedBus("8a80", [BoardConfig(1, 8)], FAST) as bus:
        bus.start_pty()
        bus.board(1).door(3).force_open()
        bus.stop()

        with serial.serial_for_url(bus.start_pty(), timeout=0.005) as port:
            reply = Host(port, bus.protocol).ask(xor8a80.QueryLockRequest(1, 3))

    assert reply.feedback() == {3: False}


def test_the_pty_outlives_a_client_that_closes_and_reopens_the_port(serve):
    _, host = serve("kerong", boards=[0], locks=16)
    host.ask(kerong.StatusRequest(0))
    host.port.close()

    host.port.open()

    assert host.ask(kerong.StatusRequest(0)).board == 0


def test_serving_twice_at_once_is_refused():
    with SimulatedBus("8a80", [BoardConfig(1, 8)], FAST) as bus:
        path = bus.start_pty()
        with pytest.raises(AlreadyServingError, match=path):
            bus.start_tcp()
        assert bus.address == path


def test_pacing_spreads_a_reply_over_the_wire_at_the_baud_rate():
    timing = FAST.with_changes(baud=1200)  # 8.3 ms per byte: easy to measure
    with SimulatedBus("8a80", [BoardConfig(1, 32)], timing) as bus:
        port = serial.serial_for_url(bus.start_pty(), baudrate=1200, timeout=0.001)
        with port:
            host = Host(port, bus.protocol)
            host.send(xor8a80.QueryAllRequest(1))
            chunks = host.arrivals(0.3)

    times = [at for at, data in chunks for _ in data]
    assert len(times) == 8  # 80 01 S4 S3 S2 S1 33 BCC
    assert times[-1] - times[0] >= 7 * (10 / 1200) * 0.8


def test_without_pacing_a_reply_arrives_in_one_go():
    timing = FAST.with_changes(baud=1200, pacing=False)
    bus = SimulatedBus("8a80", [BoardConfig(1, 32)], timing)
    with bus, serial.serial_for_url(bus.start_pty(), timeout=0.001) as port:
        host = Host(port, bus.protocol)
        host.send(xor8a80.QueryAllRequest(1))
        chunks = host.arrivals(0.2)

    times = [at for at, data in chunks for _ in data]
    assert len(times) == 8
    assert times[-1] - times[0] < 0.02  # paced at 1200 baud it would take 58 ms


def test_byte_time_follows_the_protocols_default_baud():
    assert FAST.byte_time(9600) == pytest.approx(10 / 9600)
    assert FAST.with_changes(baud=19200).byte_time(9600) == pytest.approx(10 / 19200)
    assert FAST.with_changes(pacing=False).byte_time(9600) == 0.0


@pytest.mark.parametrize(
    ("protocol", "boards", "message"),
    [
        ("modbus", [BoardConfig(1)], "unknown board protocol"),
        ("8a80", [], "at least one board"),
        ("8a80", [BoardConfig(1), BoardConfig(1)], "two boards with address 1"),
        ("8a80", [BoardConfig(32)], "address 32"),
        ("8a80", [BoardConfig(1, locks=0)], "locks"),
        ("8a80", [BoardConfig(1, locks=32, status_bytes=3)], "cannot report its 32 locks"),
    ],
)
def test_a_bus_that_cannot_exist_is_refused(protocol, boards, message):
    with pytest.raises(SimulatorConfigError, match=message):
        SimulatedBus(protocol, boards, FAST)
