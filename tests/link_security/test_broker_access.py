"""Who may connect to the generated broker configuration, and over what (real Mosquitto)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.mosquitto import PrivateMosquitto
from tests.link_support.clients import ConnectionRefused, connect

PASSWORDS = {"CAB-A": "a-password-for-cabinet-a", "CAB-B": "a-password-for-cabinet-b"}


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto(cabinets=PASSWORDS) as running:
        yield running


def test_provisioned_cabinet_connects_over_tls_with_its_password(broker: PrivateMosquitto) -> None:
    with connect(broker, "CAB-A", PASSWORDS["CAB-A"], client_id="CAB-A") as cabinet:
        assert cabinet.paho.is_connected()


def test_anonymous_connection_is_refused(broker: PrivateMosquitto) -> None:
    with pytest.raises(ConnectionRefused, match="Not authorized"):
        connect(broker, None, None, client_id="CAB-A")


def test_wrong_password_is_refused(broker: PrivateMosquitto) -> None:
    with pytest.raises(ConnectionRefused, match="Not authorized"):
        connect(broker, "CAB-A", PASSWORDS["CAB-B"], client_id="CAB-A")


def test_plain_tcp_to_the_tls_listener_gets_no_mqtt_session(broker: PrivateMosquitto) -> None:
    with pytest.raises(ConnectionRefused, match="no CONNACK"):
        connect(broker, "CAB-A", PASSWORDS["CAB-A"], tls=False, port=broker.tls_port, timeout=2)
