"""Real paho-mqtt clients for tests against a ``PrivateMosquitto``.

``connect(broker, username, password)`` returns a ``TestClient`` whose network loop runs in
a background thread; everything it receives lands in a queue, so a test can assert both
what arrived and that nothing did (``expect_nothing``)::

    with connect(broker, "LOBBY-01", password, client_id="LOBBY-01") as cabinet:
        cabinet.subscribe("lockers/v1/LOBBY-01/cmd")
        message = cabinet.next_message(timeout=2)
"""

from __future__ import annotations

import queue
import ssl
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulators.mosquitto import PrivateMosquitto


class ConnectionRefused(Exception):
    """The broker answered CONNECT with a failure reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class TestClient:
    """A connected paho client (MQTT v5) collecting what it receives."""

    __test__ = False  # not a pytest test class

    def __init__(self, client: mqtt.Client) -> None:
        self.paho = client
        self.messages: queue.Queue[Received] = queue.Queue()
        self.disconnected = threading.Event()
        #: the CONNACK's "session present": the broker resumed a session of this client id
        self.session_present = False
        self._subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> list[ReasonCode]:
        """Subscribe and return the SUBACK's reason codes (failures are >= 0x80)."""
        self.paho.subscribe(topic, qos)
        return self._subacks.get(timeout=timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker acknowledged it (PUBACK for QoS 1)."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=5)

    def next_message(self, timeout: float = 5.0) -> Received:
        return self.messages.get(timeout=timeout)

    def expect_nothing(self, within: float = 0.5) -> None:
        try:
            got = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {got.topic}: {got.payload!r}")

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()
        # paho 2.2 leaves its wake-up socket pair open after loop_stop (ResourceWarning).
        self.paho._reset_sockets()

    def __enter__(self) -> TestClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(
            Received(message.topic, bytes(message.payload), message.retain, message.qos)
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        self._subacks.put(codes)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self.disconnected.set()


def connect(
    broker: PrivateMosquitto,
    username: str | None,
    password: str | None,
    *,
    client_id: str = "",
    tls: bool = True,
    port: int | None = None,
    timeout: float = 5.0,
    session_expiry: int | None = None,
) -> TestClient:
    """Connect (TLS by default, verifying the broker's certificate against its CA).

    ``session_expiry`` (seconds) asks for a persistent session (clean start off) the way
    the agent does; ``None`` is a clean, throw-away session. Over TLS the server account
    goes to the server processes' listener (it has no account on the cabinets' one).
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=str(broker.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    test_client = TestClient(client)
    outcome: queue.Queue[ReasonCode] = queue.Queue()

    def on_connect(_c: Any, _u: Any, flags: mqtt.ConnectFlags, rc: ReasonCode, _p: Any) -> None:
        test_client.session_present = flags.session_present
        outcome.put(rc)

    client.on_connect = on_connect
    target = port if port is not None else _listener(broker, username, tls)
    assert target, "this broker has no such listener"
    client.connect(broker.host, target, keepalive=10, **_session_options(session_expiry))
    client.loop_start()
    return _await_connack(test_client, outcome, timeout)


def _listener(broker: PrivateMosquitto, username: str | None, tls: bool) -> int | None:
    if not tls:
        return broker.plain_port
    is_server = username is not None and username == broker.server_credentials.username
    return (broker.server_port or broker.tls_port) if is_server else broker.tls_port


def _session_options(session_expiry: int | None) -> dict[str, Any]:
    if session_expiry is None:
        return {"clean_start": True}
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry
    return {"clean_start": False, "properties": properties}


def _await_connack(
    test_client: TestClient, outcome: queue.Queue[ReasonCode], timeout: float
) -> TestClient:
    try:
        reason = outcome.get(timeout=timeout)
    except queue.Empty:
        test_client.close()
        raise ConnectionRefused("no CONNACK (connection dropped)") from None
    if reason.is_failure:
        test_client.close()
        raise ConnectionRefused(str(reason))
    return test_client
