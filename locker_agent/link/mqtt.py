"""The one adapter that owns the agent's paho-mqtt client and its broker connection.

Choices (docs/link.md "Agent MQTT adapter"):

* **MQTT v5, ``clean_start=False``, session expiry 7 days.** The broker keeps the
  cabinet's subscriptions and queues its QoS 1 ``cmd``/``evt/ack``/``sync`` messages
  through outages up to a week, and — unlike v3.1.1 ``clean_session=False`` — forgets a
  decommissioned cabinet's session by itself. v5 also reports why a CONNECT was refused
  and lets a clean stop ask for the will ("disconnect with will message"), so the
  retained presence says offline after a planned stop too.
* **Our own network thread** runs ``connect`` + ``loop`` so that *every* connection
  attempt first calls ``prepare_connect``: it increments and persists the presence
  counter and returns the will (offline, that number) and the online announcement
  (same number), which ``on_connect`` publishes. paho's built-in reconnect would reuse
  the old will.
* **Subscriptions renewed in ``on_connect`` every time**, whatever ``session_present``
  says: a broker that restarted without persistence has forgotten them. They use
  "retain as published", so a ``cmd`` published with the retain flag is seen as
  retained even when it arrives live, and the guard refuses it.
* **Reconnect with exponential backoff and full jitter**, 0.5 s doubling to 30 s, reset
  by a successful CONNACK, so a thousand cabinets do not return in one wave.
* **Nothing blocking in the network thread.** paho callbacks only ``post`` a
  :data:`LinkEvent` to the runtime's thread-safe inbox; the runtime does the work.
* **Bounded outgoing queue**: paho's ``max_queued_messages``; a full queue raises
  :class:`OutgoingQueueFull` instead of growing without bound (the journal keeps the
  events; they are published again later).
* Incoming QoS 1 messages are acknowledged when queued on the inbox. A message lost by
  a crash right after that is covered by the protocol: events are re-published until
  ``evt/ack`` arrives again, a command the server never hears about ends
  ``outcome_unknown`` on the server (never resent), and the next sync repeats the list.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from locker_agent.link.errors import LinkDown, LinkError, OutgoingQueueFull

logger = logging.getLogger(__name__)

QOS: Final = 1
SESSION_EXPIRY_SECONDS: Final = 7 * 24 * 3600
#: retainAsPublished: a cmd somebody published with the retain flag keeps that flag even
#: when it reaches us live, so the guard can refuse it (the server never retains a cmd)
_SUBSCRIBE_OPTIONS: Final = SubscribeOptions(qos=QOS, retainAsPublished=True)
#: MQTT v5 DISCONNECT reason 0x04: the broker publishes the will although we said goodbye
_DISCONNECT_WITH_WILL: Final = 4


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = 10
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    session_expiry: int = SESSION_EXPIRY_SECONDS
    max_outgoing: int = 1000
    connect_timeout: float = 5.0

    def __repr__(self) -> str:  # the password never reaches a log line
        return f"MqttSettings(host={self.host!r}, port={self.port}, client={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Announcement:
    """What one CONNECT attempt announces: its will, and what to publish once accepted."""

    connection: int
    will: Outgoing
    online: Outgoing


# -- what the network thread tells the runtime --------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    connection: int
    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Delivered:
    """The broker acknowledged (PUBACK) the publish with this message id."""

    mid: int


LinkEvent = Connected | Disconnected | Received | Delivered


def backoff_delays(initial: float, maximum: float, rng: random.Random) -> Callable[[int], float]:
    """Full jitter: attempt n waits uniformly in [base/2, base], base = min(max, initial·2ⁿ)."""

    def delay(attempt: int) -> float:
        base = min(maximum, initial * 2 ** min(attempt, 32))
        return rng.uniform(base / 2, base)

    return delay


class MqttAdapter:
    """Connects, stays connected, and shuttles messages between paho and the runtime."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        subscriptions: Sequence[str],
        prepare_connect: Callable[[], Announcement],
        post: Callable[[LinkEvent], None],
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._subscriptions = tuple(subscriptions)
        self._prepare_connect = prepare_connect
        self._post = post
        jitter = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._delay = backoff_delays(settings.backoff_initial, settings.backoff_max, jitter)
        self._stop = threading.Event()
        self._connected = threading.Event()
        #: set once every subscription of the current connection is acknowledged
        self._subscribed = threading.Event()
        self._pending_subacks: set[int] = set()
        self._announcement: Announcement | None = None
        self._thread: threading.Thread | None = None
        self._client = self._build_client()

    # -- set-up ------------------------------------------------------------------

    def _build_client(self) -> mqtt.Client:
        settings = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self._configure_tls(client)
        client.max_queued_messages_set(settings.max_outgoing)
        client.connect_timeout = settings.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def _configure_tls(self, client: mqtt.Client) -> None:
        ca_file = self.settings.ca_file
        try:
            client.tls_set(ca_certs=None if ca_file is None else str(ca_file))
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise LinkError(f"cannot load the broker CA {ca_file}: {exc}") from exc

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> MqttAdapter:
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Say goodbye (the broker still publishes our will: offline) and end the thread."""
        if self._connected.is_set():
            reason = ReasonCode(PacketTypes.DISCONNECT, identifier=_DISCONNECT_WITH_WILL)
            self._client.disconnect(reasoncode=reason)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected AND every subscription is acknowledged (ready for cmd)."""
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        return self._subscribed.wait(max(0.0, deadline - time.monotonic()))

    def drop_connection(self) -> None:
        """Cut the TCP connection without DISCONNECT, as a network failure would (tests)."""
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    # -- publishing ------------------------------------------------------------------

    def publish(self, message: Outgoing) -> int:
        """Queue ``message`` at QoS 1; returns its message id (see :class:`Delivered`)."""
        if not self._connected.is_set():
            raise LinkDown("not connected to the broker")
        info = self._client.publish(message.topic, message.payload, qos=QOS, retain=message.retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise OutgoingQueueFull(f"{self.settings.max_outgoing} publishes already waiting")
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise LinkError(f"publish failed: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    # -- the network thread ----------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._connect_once():
                attempt = self._serve_connection(attempt)
            if self._stop.is_set():
                break
            delay = self._delay(attempt)
            attempt += 1
            logger.info(
                "reconnecting to %s:%d in %.2f s", self.settings.host, self.settings.port, delay
            )
            self._stop.wait(delay)
        self._client.loop(timeout=0.1)  # flush a pending DISCONNECT
        self._close_socket()

    def _connect_once(self) -> bool:
        announcement = self._prepare_connect()
        self._announcement = announcement
        will = announcement.will
        self._client.will_set(will.topic, will.payload, qos=QOS, retain=will.retain)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry
        try:
            self._client.connect(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive,
                clean_start=False,
                properties=properties,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.warning(
                "connection %d to %s:%d failed: %s",
                announcement.connection,
                self.settings.host,
                self.settings.port,
                exc,
            )
            return False
        self._no_delay()
        return True

    def _no_delay(self) -> None:
        """Small packets (a cmd/res) leave at once instead of waiting on Nagle + delayed ACK."""
        setsockopt = getattr(self._client.socket(), "setsockopt", None)
        try:
            if setsockopt is not None:
                setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            logger.debug("TCP_NODELAY not set: %s", exc)

    def _serve_connection(self, attempt: int) -> int:
        """Run paho's loop until the connection ends; returns the next backoff attempt."""
        while not self._stop.is_set():
            rc = self._client.loop(timeout=0.05)
            if self._connected.is_set():
                attempt = 0
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break
        if self._connected.is_set():
            self._mark_down(mqtt.error_string(rc))
        return attempt

    def _close_socket(self) -> None:
        try:
            self._client.disconnect()
        except (OSError, ValueError):  # already closed
            logger.debug("socket already closed")
        # paho 2.2 keeps its wake-up socket pair open after the last loop() (a leak)
        self._client._reset_sockets()

    def _mark_down(self, reason: str) -> None:
        self._subscribed.clear()
        self._pending_subacks.clear()
        if self._connected.is_set():
            self._connected.clear()
            self._post(Disconnected(reason))

    # -- paho callbacks (network thread: never block here) -------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        announcement = self._announcement
        if reason_code.is_failure or announcement is None:
            logger.error("broker refused connection: %s", reason_code)
            return
        self._subscribed.clear()
        for topic in self._subscriptions:
            _, mid = client.subscribe(topic, options=_SUBSCRIBE_OPTIONS)
            if mid is not None:
                self._pending_subacks.add(mid)
        online = announcement.online
        client.publish(online.topic, online.payload, qos=QOS, retain=online.retain)
        self._connected.set()
        logger.info(
            "connected as connection %d (session present: %s)",
            announcement.connection,
            flags.session_present,
        )
        self._post(Connected(announcement.connection, bool(flags.session_present)))

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        logger.info("disconnected: %s", reason_code)
        self._mark_down(str(reason_code))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._post(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused a subscription: %s", ", ".join(refused))
        self._pending_subacks.discard(mid)
        if not self._pending_subacks:
            self._subscribed.set()

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        _reason_code: ReasonCode,
        _properties: Properties,
    ) -> None:
        self._post(Delivered(mid))
