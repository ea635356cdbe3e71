"""The shared private-broker fixture behaves as the link tests rely on."""

from __future__ import annotations

import os

import pytest

from simulators.mosquitto import PrivateMosquitto
from tests.link_support.clients import ConnectionRefused, connect

PASSWORD = "a-password-for-cabinet-a"


def test_restart_keeps_the_ports_and_the_retained_messages() -> None:
    with PrivateMosquitto(cabinets={"CAB-A": PASSWORD}) as broker:
        ports = (broker.tls_port, broker.plain_port)
        with connect(broker, "CAB-A", PASSWORD, client_id="CAB-A") as cabinet:
            cabinet.publish("lockers/v1/CAB-A/presence", b"online", retain=True)

        broker.restart()

        assert (broker.tls_port, broker.plain_port) == ports
        account = broker.server_credentials
        with connect(broker, account.username, account.password) as server:
            server.subscribe("lockers/v1/+/presence")
            retained = server.next_message()
        assert (retained.payload, retained.retain) == (b"online", True)


def test_broker_is_stopped_when_the_test_body_fails() -> None:
    pids: list[int | None] = []

    def failing_test() -> None:
        with PrivateMosquitto() as broker:
            pids.append(broker.pid)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_test()
    [pid] = pids
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_plain_loopback_listener_still_requires_a_password() -> None:
    with PrivateMosquitto(cabinets={"CAB-A": PASSWORD}, plain=True) as broker:
        with connect(broker, "CAB-A", PASSWORD, tls=False) as cabinet:
            assert cabinet.paho.is_connected()
        with pytest.raises(ConnectionRefused, match="Not authorized"):
            connect(broker, None, None, tls=False)
