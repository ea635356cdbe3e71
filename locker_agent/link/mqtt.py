"""The one adapter that owns the agent's paho-mqtt client and its broker connection.

How a cabinet's paho client is built — MQTT v5, client id, credentials, TLS, bounded
outgoing queue (:func:`new_client`), its CONNECT properties (:func:`connect_properties`),
its will (:func:`arm_will`), its subscription options and its reconnect backoff — is
shared with the simulated fleet (:mod:`simulators.fleet`), which drives thousands of
these clients from selectors instead of one thread each. The network loop below is the
agent's own.

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
  (same number). paho's built-in reconnect would reuse the old will.
* **The announcement goes out behind paho's re-sends.** After every CONNACK paho
  re-sends the previous connection's unacknowledged PUBLISHes — an older announcement
  among them — right *after* ``on_connect`` returns. Published inside ``on_connect``,
  ours would be overtaken and the broker would retain the stale one (what a restarted
  server or an operator tool reads first). So ``on_connect`` only marks the connection
  accepted; the network thread announces once that ``loop()`` pass is over, when paho
  has queued its re-sends (``simulators/fleet.py`` announces the same way). Only then
  is the link ``connected``, so the runtime's own messages follow the announcement. A
  full outgoing queue (re-sends fill it) postpones the announcement until there is room.
* **A stale presence acknowledged after ours means announce again.** The broker applies
  and acknowledges one client's PUBLISHes in order, so the PUBACK order says which
  presence it retained last (:class:`PresenceAcks`): belt and braces should a stale
  one still get out after ours (another paho's re-send order, a caller of
  :meth:`MqttAdapter.publish`).
* **Subscriptions renewed on every connection**, whatever ``session_present`` says: a
  broker that restarted without persistence has forgotten them. They go right behind
  the announcement, so once every SUBACK is in (``wait_connected``) the broker holds
  our presence too. They use "retain as published", so a ``cmd`` published with the
  retain flag is seen as retained even when it arrives live, and the guard refuses it.
* **Reconnect with exponential backoff and full jitter**, 0.5 s doubling to 30 s, reset
  once a connection is accepted, so a thousand cabinets do not return in one wave.
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
SUBSCRIBE_OPTIONS: Final = SubscribeOptions(qos=QOS, retainAsPublished=True)
#: MQTT v5 DISCONNECT reason 0x04: the broker publishes the will although we said goodbye
_DISCONNECT_WITH_WILL: Final = 4
#: publish() results after which paho holds the message (sent now or after a reconnect)
_QUEUED_AT_PAHO: Final = frozenset(
    {mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_CONN_LOST}
)


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
    #: publishes paho may hold (queued or awaiting PUBACK); 0 means no bound
    max_outgoing: int = 1000
    connect_timeout: float = 5.0
    #: False: MQTT 3.1.1 with ``clean_session=False``, only for the server's embedded
    #: development broker (amqtt), which speaks nothing newer. Without v5 there is no
    #: session expiry, no "retain as published" and no will on a planned stop.
    mqtt_v5: bool = True

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


class PresenceAcks:
    """Which presence the broker retained last, told by the order of its PUBACKs.

    The broker applies one client's QoS 1 PUBLISHes in order and acknowledges each as it
    applies it. A presence other than the current announcement acknowledged after the
    announcement's own PUBACK therefore replaced it as the retained value.
    """

    def __init__(self) -> None:
        self._in_flight: dict[int, bytes] = {}  # mid → payload, until its PUBACK
        self._current = b""
        self._current_applied = False

    def announcing(self, payload: bytes) -> None:
        """A new connection: ``payload`` is its announcement; every other is stale."""
        self._current, self._current_applied = payload, False

    def sent(self, mid: int, payload: bytes) -> None:
        self._in_flight[mid] = payload
        if payload == self._current:
            self._current_applied = False  # until this copy is acknowledged

    def acknowledged(self, mid: int) -> bool:
        """Record a PUBACK; True when a stale presence now sits on top of ours."""
        payload = self._in_flight.pop(mid, None)
        if payload is None:
            return False
        if payload == self._current:
            self._current_applied = True
            return False
        return self._current_applied


# -- the client as every cabinet builds it ---------------------------------------------


def new_client(settings: MqttSettings) -> mqtt.Client:
    """A paho client for one cabinet: MQTT v5 (3.1.1 when ``settings.mqtt_v5`` is off),
    its client id, its credentials, TLS when ``settings.tls`` (against ``ca_file``, else
    the system's CAs), a bounded outgoing queue. The caller sets the callbacks and drives
    the network loop."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        clean_session=None if settings.mqtt_v5 else False,
        protocol=mqtt.MQTTv5 if settings.mqtt_v5 else mqtt.MQTTv311,
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        _configure_tls(client, settings.ca_file)
    client.max_queued_messages_set(settings.max_outgoing)
    client.connect_timeout = settings.connect_timeout
    return client


def _configure_tls(client: mqtt.Client, ca_file: Path | None) -> None:
    try:
        client.tls_set(ca_certs=None if ca_file is None else str(ca_file))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise LinkError(f"cannot load the broker CA {ca_file}: {exc}") from exc


def connect_properties(settings: MqttSettings) -> Properties:
    """CONNECT properties of the persistent session (``clean_start=False``): its expiry."""
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = settings.session_expiry
    return properties


def arm_will(client: mqtt.Client, will: Outgoing) -> None:
    """The will of the next CONNECT (set anew before every attempt: its number changes)."""
    client.will_set(will.topic, will.payload, qos=QOS, retain=will.retain)


def backoff_delays(initial: float, maximum: float, rng: random.Random) -> Callable[[int], float]:
    """Full jitter: attempt n waits uniformly in [base/2, base], base = min(max, initial·2ⁿ)."""

    def delay(attempt: int) -> float:
        base = min(maximum, initial * 2 ** min(attempt, 32))
        return rng.uniform(base / 2, base)

    return delay


def _written_by_the_loop(_client: mqtt.Client, _userdata: object, _sock: object) -> None:
    """paho's register-write hook: nothing to do, the link thread's ``loop()`` selects for
    writing whenever packets wait (see ``MqttAdapter._build_client``)."""


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
        #: the broker accepted this connection: posted once it is announced
        self._accepted: Connected | None = None
        self._connection: int | None = None
        #: an announcement of the current connection still has to be published
        self._announce_due = False
        #: PUBACKs seen in paho's callback, for PresenceAcks after the loop() pass
        self._acked_mids: list[int] = []
        #: PresenceAcks is fed from both threads: record a mid before its PUBACK counts
        self._presence_lock = threading.Lock()
        self._presence_acks = PresenceAcks()
        self._thread: threading.Thread | None = None
        self._client = self._build_client()

    # -- set-up ------------------------------------------------------------------

    def _build_client(self) -> mqtt.Client:
        client = new_client(self.settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        # Every socket read and write happens on the link's own thread. Without a
        # register-write callback, paho writes a publish on the caller's thread while this
        # thread reads: an SSL socket used by two threads at once is undefined behaviour
        # in OpenSSL (seen as a heap-corruption abort when a broker restart hit both).
        # With one, publish() only queues the packet and wakes loop() through its socket
        # pair; loop() writes it.
        client.on_socket_register_write = _written_by_the_loop
        client.on_socket_unregister_write = _written_by_the_loop
        return client

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> MqttAdapter:
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Say goodbye (the broker still publishes our will: offline) and end the thread."""
        if self._connected.is_set() and self.settings.mqtt_v5:
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

    @property
    def connection(self) -> int | None:
        """The number of the connection that is up (its ``Connected`` was posted), or None."""
        return self._connection if self._connected.is_set() else None

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
        info = self._send(message)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise OutgoingQueueFull(f"{self.settings.max_outgoing} publishes already waiting")
        # NO_CONN / CONN_LOST: paho keeps the message and sends it again after the
        # reconnect, so it has an id like any other; raising would make the caller
        # publish it a second time under a new id
        if info.rc not in _QUEUED_AT_PAHO:
            raise LinkError(f"publish failed: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def _send(self, message: Outgoing) -> mqtt.MQTTMessageInfo:
        """Hand ``message`` to paho; a presence is recorded before its PUBACK can count."""
        if not self._is_presence(message.topic):
            return self._paho_publish(message)
        with self._presence_lock:
            info = self._paho_publish(message)
            if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                self._presence_acks.sent(info.mid, message.payload)
        return info

    def _paho_publish(self, message: Outgoing) -> mqtt.MQTTMessageInfo:
        return self._client.publish(message.topic, message.payload, qos=QOS, retain=message.retain)

    def _is_presence(self, topic: str) -> bool:
        announcement = self._announcement
        return announcement is not None and topic == announcement.online.topic

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
        self._accepted, self._announce_due = None, False
        with self._presence_lock:
            self._presence_acks.announcing(announcement.online.payload)
        arm_will(self._client, announcement.will)
        try:
            self._client.connect(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive,
                **self._session_options(),
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

    def _session_options(self) -> dict[str, Any]:
        """v5: resume the session, with its expiry; 3.1.1 says so in the client instead."""
        if not self.settings.mqtt_v5:
            return {}
        return {"clean_start": False, "properties": connect_properties(self.settings)}

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
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break
            self._announce_when_due()
            if self._connected.is_set():
                attempt = 0
        if self._connected.is_set():
            self._mark_down(mqtt.error_string(rc))
        return attempt

    def _announce_when_due(self) -> None:
        """After a ``loop()`` pass: paho has queued the re-sends a CONNACK triggers, so an
        announcement published now reaches the broker behind them."""
        if self._stale_presence_on_top():
            self._announce_due = True
        announcement = self._announcement
        if not self._announce_due or announcement is None or not self._announce(announcement):
            return
        self._announce_due = False
        accepted, self._accepted = self._accepted, None
        if accepted is not None:
            self._subscribe()
            # Posted before ``connected`` is set: the runtime restarts its outbox on
            # ``Connected`` and publishes only while connected, so the unacknowledged
            # events go out once per connection, not once before the restart and again
            # after it.
            self._post(accepted)
            self._connection = accepted.connection
            self._connected.set()

    def _subscribe(self) -> None:
        """Behind the announcement: its PUBACK comes first, so ``wait_connected`` (every
        SUBACK in) also means the broker holds our presence."""
        self._subscribed.clear()
        for topic in self._subscriptions:
            if self.settings.mqtt_v5:
                _, mid = self._client.subscribe(topic, options=SUBSCRIBE_OPTIONS)
            else:
                _, mid = self._client.subscribe(topic, qos=QOS)
            if mid is not None:
                self._pending_subacks.add(mid)

    def _stale_presence_on_top(self) -> bool:
        acked, self._acked_mids = self._acked_mids, []
        if not acked:
            return False
        with self._presence_lock:
            overtaken = [self._presence_acks.acknowledged(mid) for mid in acked]
        if any(overtaken):
            logger.warning("a stale presence replaced ours on the broker; announcing again")
        return any(overtaken)

    def _announce(self, announcement: Announcement) -> bool:
        """Publish this connection's online presence; False while paho's queue is full."""
        info = self._send(announcement.online)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            logger.debug("outgoing queue full of re-sends: the announcement waits for room")
            return False
        return True

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
        _client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        announcement = self._announcement
        if reason_code.is_failure or announcement is None:
            logger.error("broker refused connection: %s", reason_code)
            return
        # paho re-sends the previous connection's unacknowledged PUBLISHes after this
        # returns: announcing and subscribing wait for the end of this loop() pass
        self._accepted = Connected(announcement.connection, bool(flags.session_present))
        self._announce_due = True
        logger.info(
            "connected as connection %d (session present: %s)",
            announcement.connection,
            flags.session_present,
        )

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
        self._acked_mids.append(mid)
        self._post(Delivered(mid))
