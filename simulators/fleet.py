"""A fleet of lightweight simulated cabinets, all connected at once to one MQTT broker.

Each :class:`FleetCabinet` is a real MQTT client (paho-mqtt, MQTT 5, persistent session)
that speaks the link contract of :mod:`locker_contract` the way an agent does:

* presence ``online`` (retained) with a per-cabinet connection counter that grows on every
  CONNECT attempt, and the same message with status ``offline`` as its last will;
* a retained ``state`` snapshot with a strictly increasing version;
* ``evt`` batches (≤ 100 events) from an in-memory journal, published again after every
  reconnect and whenever an event stays unacknowledged for ``resend_after`` seconds, and
  forgotten only when a signed ``evt/ack`` names it (``sync`` is checked the same way;
  a fleet given no trusted keys takes both unverified);
* ``cmd`` decided by the agent's own :class:`~locker_agent.link.guard.CommandGuard` (an
  in-memory store instead of the journal): every rejection reason, in the agent's order;
  ``received`` then the final status on ``cmd/res``.

Its paho clients are built as the agent builds its own (:func:`locker_agent.link.mqtt.new_client`:
MQTT 5, persistent session, will, TLS, credentials; the same subscription options and
reconnect backoff); only the network loop differs (below).

With ``FleetSettings(kiosks=True)`` every cabinet also has a kiosk
(:mod:`simulators.fleet_kiosk`): the agent's own ``KioskMachine`` and offline
``AllowList`` (in memory), fed by the signed ``allow_list`` syncs the cabinet receives.
:meth:`Fleet.type_code` / :meth:`Fleet.scan` have a person present a credential and
:meth:`Fleet.close_door` shut a door: a granted door opens at once and its close
journals the ``pickup`` event; a refusal journals ``pickup.refused``. Without the flag a
cabinet holds no kiosk at all.

What it leaves out, on purpose: serial boards (a door opens the instant it is told to), a
durable journal (a fleet lives in one process) and the open-rate limits (its guard allows
any number of opens). :mod:`simulators.cabinet` runs ONE full cabinet instead: the real
agent runtime on a simulated serial bus.

Thousands of clients fit on two cores because no client has a thread: a few
:class:`_LoopThread` each own a :mod:`selectors` selector over the non-blocking sockets of
their clients and drive paho with ``loop_read`` / ``loop_write`` / ``loop_misc``. Every
paho call and every cabinet state change happens on the owning loop thread; the public
:class:`Fleet` methods post work to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import heapq
import itertools
import json
import logging
import random
import re
import resource
import selectors
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import locker_contract as contract
from locker_agent.kiosk.machine import KeyPress, KioskInput, KioskMachine, Scanned
from locker_agent.link.errors import LinkError
from locker_agent.link.guard import CommandGuard, GuardPolicy, MemoryGuardStore, Reject
from locker_agent.link.mqtt import (
    SUBSCRIBE_OPTIONS,
    MqttSettings,
    Outgoing,
    arm_will,
    backoff_delays,
    connect_properties,
    new_client,
)
from simulators.errors import SimulatorConfigError
from simulators.fleet_kiosk import FleetKiosk

logger = logging.getLogger(__name__)

_MISC_TICK_S = 0.5
#: a fleet's door opens the instant it is told to: its guard limits no open rate
NO_OPEN_RATE_LIMIT = sys.maxsize
#: paho may hold any number of a fleet cabinet's publishes (0: no bound): a publish is
#: never refused, and what the broker did not acknowledge is published again anyway
UNBOUNDED_OUTGOING = 0
#: how long a public Fleet method waits for its cabinet's loop thread to answer
_ASK_TIMEOUT_S = 30.0
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class FleetSettings:
    """Where the fleet connects and how its cabinets behave."""

    host: str
    port: int
    cabinet_ids: tuple[str, ...]
    doors: int = 12
    passwords: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ca_file: Path | None = None
    trusted_keys: Mapping[str, Ed25519PublicKey] = dataclasses.field(default_factory=dict)
    keepalive: int = 10
    loop_threads: int = 4
    batch_size: int = 100
    resend_after: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    agent_version: str = "locker-sim-fleet/1"
    maintenance_token_hash: str | None = None
    #: give every cabinet a kiosk (the agent's pickup flow and offline allow-list)
    kiosks: bool = False
    #: cabinet id → its pickup key (allow-list hashes are keyed with it); a cabinet not
    #: listed uses :func:`fleet_pickup_key`
    pickup_keys: Mapping[str, bytes] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cabinet_ids:
            raise SimulatorConfigError("a fleet needs at least one cabinet")
        if len(set(self.cabinet_ids)) != len(self.cabinet_ids):
            raise SimulatorConfigError("cabinet ids of a fleet must be unique")
        if not 1 <= self.batch_size <= contract.MAX_EVENTS_PER_MESSAGE:
            raise SimulatorConfigError(f"batch size must be 1..{contract.MAX_EVENTS_PER_MESSAGE}")


@dataclasses.dataclass(frozen=True)
class FleetCommand:
    """A ``cmd`` message as received: decoded, or why not (keeping its id if readable)."""

    message: contract.CommandMessage | None
    command_id: str | None
    malformed: str | None = None


@dataclasses.dataclass(frozen=True)
class CommandOutcome:
    """What a simulated cabinet answered to one ``cmd`` message (final status only)."""

    cabinet_id: str
    command_id: str | None
    status: str
    reason: str | None


@dataclasses.dataclass(frozen=True)
class FleetSnapshot:
    """The fleet at one moment (see :meth:`Fleet.snapshot`)."""

    online: int
    connects: int
    events_journaled: int
    events_acked: int
    evt_messages_sent: int
    connections: Mapping[str, int]
    online_ids: tuple[str, ...]


@dataclasses.dataclass
class FleetCounters:
    """Totals over the whole fleet, updated by the loop threads under ``lock``."""

    lock: threading.Condition = dataclasses.field(default_factory=threading.Condition)
    online: int = 0
    connects: int = 0
    events_journaled: int = 0
    events_acked: int = 0
    evt_messages_sent: int = 0
    outcomes: list[CommandOutcome] = dataclasses.field(default_factory=list)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)
            self.lock.notify_all()

    def record(self, outcome: CommandOutcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            self.lock.notify_all()

    def wait_for(self, predicate: Callable[[FleetCounters], bool], timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self), timeout)


# ------------------------------------------------------------------ one cabinet
class FleetCabinet:
    """One simulated cabinet: its MQTT client and the state an agent would keep.

    Only its loop thread touches it after :meth:`Fleet.start`.
    """

    def __init__(self, cabinet_id: str, settings: FleetSettings, counters: FleetCounters):
        self.cabinet_id = cabinet_id
        self.settings = settings
        self.counters = counters
        self.connection = 0
        self.online = False
        self.announced = False
        self.presence_mid: int | None = None
        self.on_session: Callable[[FleetCabinet], None] = lambda cabinet: None
        #: failed or lost connections since the last accepted one (the backoff's exponent)
        self.reconnect_attempt = 0
        self.state_version = 0
        self.doors = dict.fromkeys(range(1, settings.doors + 1), "closed")
        self.journal: dict[str, contract.Event] = {}
        self.sent_at: dict[str, float] = {}
        self.next_seq = 1
        self.guard = CommandGuard(_guard_policy(cabinet_id, settings), MemoryGuardStore())
        self.sync_versions: dict[str, int] = {}
        self.mqtt = _mqtt_settings(cabinet_id, settings)
        self.client = self._make_client()
        self.kiosk: FleetKiosk | None = None
        if settings.kiosks:
            key = settings.pickup_keys.get(cabinet_id) or fleet_pickup_key(cabinet_id)
            self.kiosk = FleetKiosk(KioskMachine(), key, self, time.monotonic())

    def _make_client(self) -> mqtt.Client:
        try:
            client = new_client(self.mqtt)
        except LinkError as exc:
            raise SimulatorConfigError(str(exc)) from exc
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(100)
        return client

    # ---------------------------------------------------------------- connecting
    def prepare_connect(self) -> None:
        """Count this CONNECT attempt and arm the last will with the same number."""
        self.connection += 1
        payload = _presence_msg(self.cabinet_id, "offline", self.connection, self._version)
        arm_will(self.client, Outgoing(_topic("presence", self.cabinet_id), payload, retain=True))

    @property
    def _version(self) -> str:
        return self.settings.agent_version

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("cabinet %s: connection refused: %s", self.cabinet_id, reason)
            return
        for kind in ("evt/ack", "cmd", "sync"):
            client.subscribe(_topic(kind, self.cabinet_id), options=SUBSCRIBE_OPTIONS)
        self.reconnect_attempt = 0
        self.counters.add(connects=1)
        # paho re-sends the previous session's unacknowledged PUBLISHes right after this
        # callback returns; announcing later keeps a stale presence from overtaking ours.
        self.on_session(self)

    def announce(self) -> None:
        """Publish presence and state of this connection, then the whole journal."""
        presence = _presence_msg(self.cabinet_id, "online", self.connection, self._version)
        self.presence_mid = self.client.publish(
            _topic("presence", self.cabinet_id), presence, qos=1, retain=True
        ).mid
        self._publish_state()
        self.announced = True
        self.sent_at.clear()  # everything unacknowledged goes out again
        self.flush_journal()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        if mid == self.presence_mid and self.announced and not self.online:
            self.online = True  # the broker holds our presence: online as the server sees it
            self.counters.add(online=1)

    def drop_connection(self) -> None:
        """Cut the TCP connection without DISCONNECT, as a power cut would: the broker
        publishes the last will, and the cabinet reconnects after its backoff."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):  # an ssl.SSLSocket is one too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def on_connection_lost(self) -> None:
        self.announced = False
        self.presence_mid = None
        if self.online:
            self.online = False
            self.counters.add(online=-1)

    def _publish(self, kind: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(_topic(kind, self.cabinet_id), payload, qos=1, retain=retain)

    def _publish_state(self) -> None:
        self.state_version += 1
        self._publish(
            "state", _state_msg(self.cabinet_id, self.state_version, self.doors), retain=True
        )

    # ---------------------------------------------------------------- journal
    def journal_event(self, event_type: str, door: int | None, data: Mapping[str, Any]) -> None:
        event = _new_event(self.next_seq, event_type, door, data)
        self.next_seq += 1
        self.journal[event.event_id] = event
        self.counters.add(events_journaled=1)

    def flush_journal(self, now: float | None = None) -> None:
        """Publish, in journal order, every event not sent within ``resend_after``."""
        if not self.announced:
            return
        now = time.monotonic() if now is None else now
        due = [
            event
            for event in self.journal.values()
            if now - self.sent_at.get(event.event_id, -1e9) >= self.settings.resend_after
        ]
        size = self.settings.batch_size
        for start in range(0, len(due), size):
            batch = due[start : start + size]
            self._publish("evt", _evt_msg(self.cabinet_id, batch))
            self.sent_at.update((event.event_id, now) for event in batch)
        if due:
            self.counters.add(evt_messages_sent=-(-len(due) // size))

    def _on_ack(self, payload: bytes) -> None:
        ack = contract.decode(payload, contract.EventAckMessage)
        if not self._from_the_server(ack):
            return
        acked = 0
        for event_id in ack.body.event_ids:
            if self.journal.pop(event_id, None) is not None:
                self.sent_at.pop(event_id, None)
                acked += 1
        if acked:
            self.counters.add(events_acked=acked)

    # ---------------------------------------------------------------- the kiosk
    def at_kiosk(self, inputs: Sequence[KioskInput]) -> str:
        """A person at the kiosk: keys pressed, texts scanned; returns the screen after."""
        if self.kiosk is None:
            raise SimulatorConfigError(f"cabinet {self.cabinet_id} has no kiosk")
        self.kiosk.feed(inputs, time.monotonic())
        self.flush_journal()
        return self.kiosk.screen

    def open_for_pickup(self, door: int) -> None:
        """Open a granted door at once, as a command's (a fleet has no boards)."""
        self.doors[door] = "open"
        self.journal_event("door.open_confirmed", door, {})
        self._publish_state()

    def server_now(self) -> datetime:
        return self.guard.clock_offset.server_now(contract.utc_now())

    def close_door(self, door: int) -> None:
        """A person shuts an open door: ``door.closed``, then what the kiosk makes of it."""
        if self.doors.get(door) != "open":
            return
        self.doors[door] = "closed"
        self.journal_event("door.closed", door, {})
        self._publish_state()
        if self.kiosk is not None:
            self.kiosk.door_closed(door, time.monotonic())
        self.flush_journal()

    # ---------------------------------------------------------------- messages
    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        try:
            kind = contract.topics.parse(message.topic).kind
            if kind is contract.topics.Kind.EVT_ACK:
                self._on_ack(payload)
            elif kind is contract.topics.Kind.CMD:
                self._on_command(payload, retained=bool(message.retain))
            elif kind is contract.topics.Kind.SYNC:
                self._on_sync(payload)
        except contract.ContractError as exc:
            logger.warning("cabinet %s: dropped a %s: %s", self.cabinet_id, message.topic, exc)

    def _on_sync(self, payload: bytes) -> None:
        sync = contract.decode(payload, contract.SyncMessage)
        if not self._from_the_server(sync):
            return
        kind, version = sync.body.kind, sync.body.version
        self.guard.clock_offset.observe(sync.body.server_time, contract.utc_now())
        self.sync_versions[kind] = max(version, self.sync_versions.get(kind, 0))
        if self.kiosk is not None and isinstance(sync.body, contract.AllowListSync):
            self.kiosk.apply(sync.body)

    def _from_the_server(self, message: contract.Envelope[Any]) -> bool:
        """Signed with a trusted key and addressed to us, as the agent requires. A fleet
        started without trusted keys (the ingest benchmark's) takes acks and syncs
        unverified: it is a simulator and has no doors or journal to protect."""
        if not self.settings.trusted_keys:
            return True
        problem = _signature_problem(message, self.settings.trusted_keys)
        if problem is None and message.cabinet_id != self.cabinet_id:
            problem = contract.RejectReason.WRONG_CABINET.value
        if problem is not None:
            logger.warning("cabinet %s: dropped a %s: %s", self.cabinet_id, message.type, problem)
        return problem is None

    def _on_command(self, payload: bytes, *, retained: bool) -> None:
        """Every readable live command is answered ``received`` before the guard decides
        (the agent answers only accepted ones); the final status follows either way."""
        command = _read_command(payload)
        if command.command_id is None:
            logger.warning("cabinet %s: dropped an unreadable command", self.cabinet_id)
            return
        if command.message is not None and not retained:
            self._answer(command, "received", None)
        decision = self.guard.check(payload, retained=retained)
        if isinstance(decision, Reject):
            self._answer(command, "rejected", decision.reason.value)
            return
        self._execute(decision.envelope.body)

    def _doors_to_open(self, body: contract.Command) -> list[int]:
        if body.action == "open_all":
            return list(self.doors)
        return [body.door] if body.door is not None else []

    def _execute(self, body: contract.Command) -> None:
        """Open at once (no board): journal the confirmation, publish the new state."""
        doors = self._doors_to_open(body)
        for door in doors:
            self.doors[door] = "open"
            self.journal_event("door.open_confirmed", door, {"command_id": body.command_id})
        if doors:
            self._publish_state()
            self.flush_journal()
        outcome = "confirmed" if doors else None
        self._answer(FleetCommand(None, body.command_id), "succeeded", None, outcome, body.counter)

    def _answer(
        self,
        command: FleetCommand,
        status: str,
        reason: str | None,
        outcome: str | None = None,
        counter: int | None = None,
    ) -> None:
        assert command.command_id is not None
        if counter is None and command.message is not None:
            counter = command.message.body.counter
        body = contract.CommandResult(
            command_id=command.command_id,
            status=status,
            reason=reason,
            outcome=outcome,
            counter=counter,
        )
        self._publish("cmd/res", contract.encode(contract.new_envelope(self.cabinet_id, body)))
        if status != "received":
            self.counters.record(
                CommandOutcome(self.cabinet_id, command.command_id, status, reason)
            )


# ------------------------------------------------------------------ the loop threads
class _LoopThread(threading.Thread):
    """Drives the MQTT clients of some cabinets from one selector."""

    def __init__(self, name: str, settings: FleetSettings, cabinets: list[FleetCabinet]):
        super().__init__(name=name, daemon=True)
        self.settings = settings
        self.cabinets = cabinets
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._ops: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, FleetCabinet]] = []
        self._ticket = itertools.count()
        self._dirty: set[FleetCabinet] = set()
        self._sessions: list[FleetCabinet] = []
        jitter = random.Random()  # noqa: S311 - jitter, not a secret
        self._reconnect_delay = backoff_delays(
            settings.reconnect_min, settings.reconnect_max, jitter
        )
        self._stopping = False
        for cabinet in cabinets:
            self._wire(cabinet)

    def _wire(self, cabinet: FleetCabinet) -> None:
        client = cabinet.client
        client.on_socket_open = lambda _c, _u, sock: self._watch(sock, cabinet)
        client.on_socket_close = lambda _c, _u, sock: self._forget(sock)
        client.on_socket_register_write = lambda _c, _u, _s: self._dirty.add(cabinet)
        client.on_disconnect = lambda _c, _u, _f, reason, _p: self._lost(cabinet, reason)
        cabinet.on_session = self._sessions.append

    # ---------------------------------------------------------------- from other threads
    def post(self, op: Callable[[], None]) -> None:
        self._ops.append(op)
        with contextlib.suppress(OSError):  # full (a wake-up is pending) or already closed
            self._wake_w.send(b"\0")

    def stop(self) -> None:
        self.post(self._request_stop)

    def _request_stop(self) -> None:
        self._stopping = True

    # ---------------------------------------------------------------- the loop
    def run(self) -> None:
        for cabinet in self.cabinets:
            cabinet.client.connect_async(
                self.settings.host,
                self.settings.port,
                self.settings.keepalive,
                clean_start=False,
                properties=connect_properties(cabinet.mqtt),
            )
            self._schedule(cabinet, 0.0)
        next_tick = time.monotonic()
        while not self._stopping:
            timeout = max(0.0, min(next_tick, self._next_timer()) - time.monotonic())
            self._dispatch(self._selector.select(timeout))
            self._announce_sessions()
            self._run_ops()
            self._run_due_connects()
            if time.monotonic() >= next_tick:
                self._tick()
                next_tick = time.monotonic() + _MISC_TICK_S
            self._flush_writes()
        self._shut_down()

    def _dispatch(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        for key, events in ready:
            cabinet = key.data
            if cabinet is None:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
                continue
            if events & selectors.EVENT_READ:
                cabinet.client.loop_read(max_packets=100)
            if events & selectors.EVENT_WRITE:
                self._dirty.add(cabinet)

    def _announce_sessions(self) -> None:
        while self._sessions:
            cabinet = self._sessions.pop()
            if cabinet.client.is_connected():
                cabinet.announce()

    def _flush_writes(self) -> None:
        while self._dirty:
            cabinet = self._dirty.pop()
            client = cabinet.client
            sock = client.socket()
            if sock is None:
                continue
            client.loop_write()
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
            with contextlib.suppress(KeyError, ValueError):
                if self._selector.get_key(sock).events != wanted:
                    self._selector.modify(sock, wanted, cabinet)

    def _run_ops(self) -> None:
        while self._ops:
            op = self._ops.popleft()
            try:
                op()
            except Exception:
                logger.exception("fleet: an operation failed on %s", self.name)

    def _tick(self) -> None:
        now = time.monotonic()
        for cabinet in self.cabinets:
            if cabinet.client.socket() is not None:
                cabinet.client.loop_misc()
            if cabinet.kiosk is not None:
                cabinet.kiosk.tick(now)
            cabinet.flush_journal(now)

    def _watch(self, sock: Any, cabinet: FleetCabinet) -> None:
        self._selector.register(sock, selectors.EVENT_READ, cabinet)

    def _forget(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    # ---------------------------------------------------------------- reconnecting
    def _lost(self, cabinet: FleetCabinet, reason: Any) -> None:
        cabinet.on_connection_lost()
        if not self._stopping:
            logger.debug("cabinet %s: connection lost (%s)", cabinet.cabinet_id, reason)
            self._schedule(cabinet, self._next_backoff(cabinet))

    def _next_backoff(self, cabinet: FleetCabinet) -> float:
        delay = self._reconnect_delay(cabinet.reconnect_attempt)
        cabinet.reconnect_attempt += 1
        return delay

    def _schedule(self, cabinet: FleetCabinet, delay: float) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._ticket), cabinet))

    def _next_timer(self) -> float:
        return self._timers[0][0] if self._timers else float("inf")

    def _run_due_connects(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now and not self._stopping:
            cabinet = heapq.heappop(self._timers)[2]
            self._connect(cabinet)

    def _connect(self, cabinet: FleetCabinet) -> None:
        cabinet.prepare_connect()
        try:
            cabinet.client.reconnect()
        except (OSError, ssl.SSLError) as exc:
            logger.debug("cabinet %s: connect failed: %s", cabinet.cabinet_id, exc)
            self._schedule(cabinet, self._next_backoff(cabinet))
            return
        self._dirty.add(cabinet)

    def _shut_down(self) -> None:
        for cabinet in self.cabinets:
            with contextlib.suppress(Exception):
                cabinet.client.disconnect()
                cabinet.client.loop_write()
            cabinet.on_connection_lost()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


# ------------------------------------------------------------------ the fleet
class Fleet:
    """Many :class:`FleetCabinet` on a few loop threads.

    ::

        with Fleet(settings) as fleet:
            fleet.wait_online(timeout=60)
            fleet.emit_events(per_cabinet=10)
            fleet.wait_acked(timeout=30)
    """

    def __init__(self, settings: FleetSettings):
        self.settings = settings
        self.counters = FleetCounters()
        self.cabinets = {
            cid: FleetCabinet(cid, settings, self.counters) for cid in settings.cabinet_ids
        }
        threads = max(1, min(settings.loop_threads, len(self.cabinets)))
        shares: list[list[FleetCabinet]] = [[] for _ in range(threads)]
        for index, cabinet in enumerate(self.cabinets.values()):
            shares[index % threads].append(cabinet)
        self._loops = [_LoopThread(f"fleet-loop-{i}", settings, s) for i, s in enumerate(shares)]
        self._owner = {c.cabinet_id: loop for loop in self._loops for c in loop.cabinets}

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        raise_fd_limit(len(self.cabinets) + 256)
        for loop in self._loops:
            loop.start()

    def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        for loop in self._loops:
            loop.join(timeout=10)

    # ---------------------------------------------------------------- observing
    @property
    def online(self) -> int:
        return self.counters.online

    def wait_online(self, timeout: float, count: int | None = None) -> bool:
        """Wait until ``count`` cabinets (default: all) have a live session."""
        target = len(self.cabinets) if count is None else count
        return self.counters.wait_for(lambda c: c.online >= target, timeout)

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every journaled event has been acknowledged by the server."""
        return self.counters.wait_for(lambda c: c.events_acked >= c.events_journaled, timeout)

    def outcomes(self) -> list[CommandOutcome]:
        with self.counters.lock:
            return list(self.counters.outcomes)

    # ---------------------------------------------------------------- acting
    def emit_events(
        self,
        per_cabinet: int,
        event_types: Sequence[str] = ("door.opened", "door.closed"),
        cabinet_ids: Iterable[str] | None = None,
    ) -> None:
        """Journal ``per_cabinet`` events in each cabinet and publish them.

        The types cycle per door: with the default, every door opens, then closes, and
        the next door does the same, as a real cabinet's door events would.
        """
        emit = functools.partial(_emit, count=per_cabinet, kinds=tuple(event_types))
        for cabinet_id in cabinet_ids or self.cabinets:
            self.on_loop(cabinet_id, emit)
        self.settle()

    def snapshot(self) -> FleetSnapshot:
        """Totals and every cabinet's current connection number (taken on the loops)."""
        self.settle()
        with self.counters.lock:
            counters = self.counters
            return FleetSnapshot(
                online=counters.online,
                connects=counters.connects,
                events_journaled=counters.events_journaled,
                events_acked=counters.events_acked,
                evt_messages_sent=counters.evt_messages_sent,
                connections={cid: c.connection for cid, c in self.cabinets.items()},
                online_ids=tuple(cid for cid, c in self.cabinets.items() if c.online),
            )

    def settle(self, timeout: float = 30.0) -> None:
        """Return once every loop thread has run all the work posted before this call."""
        done = [threading.Event() for _ in self._loops]
        for loop, event in zip(self._loops, done, strict=True):
            loop.post(event.set)
        for event in done:
            event.wait(timeout)

    def on_loop(self, cabinet_id: str, op: Callable[[FleetCabinet], None]) -> None:
        """Run ``op(cabinet)`` on the cabinet's loop thread (the only safe place)."""
        cabinet = self.cabinets[cabinet_id]
        self._owner[cabinet_id].post(lambda: op(cabinet))

    def ask(self, cabinet_id: str, op: Callable[[FleetCabinet], _T]) -> _T:
        """Run ``op(cabinet)`` on the cabinet's loop thread and return (or raise) what it did."""
        done = threading.Event()
        answer: list[_T] = []
        failure: list[BaseException] = []

        def run(cabinet: FleetCabinet) -> None:
            try:
                answer.append(op(cabinet))
            except Exception as exc:  # raised again in the caller's thread
                failure.append(exc)
            finally:
                done.set()

        self.on_loop(cabinet_id, run)
        if not done.wait(_ASK_TIMEOUT_S):
            raise TimeoutError(f"cabinet {cabinet_id}'s loop thread did not answer")
        if failure:
            raise failure[0]
        return answer[0]

    # ---------------------------------------------------------------- kiosks
    def type_code(self, cabinet_id: str, code: str) -> str:
        """A person types ``code`` on the cabinet's keypad (Enter after a short one);
        returns what the kiosk shows then (the machine's phase: ``doors``, ``refused``…)."""
        keys: list[KioskInput] = [KeyPress(digit) for digit in code]
        if len(code) < KioskMachine().rules.code_length:
            keys.append(KeyPress("enter"))
        return self.ask(cabinet_id, lambda cabinet: cabinet.at_kiosk(keys))

    def scan(self, cabinet_id: str, text: str) -> str:
        """A person holds up ``text`` (e.g. a pickup QR's payload) to the kiosk's reader."""
        return self.ask(cabinet_id, lambda cabinet: cabinet.at_kiosk([Scanned(text)]))

    def close_door(self, cabinet_id: str, door: int) -> None:
        """A person shuts the door (a door that is not open stays as it is)."""
        self.ask(cabinet_id, lambda cabinet: cabinet.close_door(door))

    def kiosk_screen(self, cabinet_id: str) -> str:
        """What the cabinet's kiosk shows now: the machine's phase (``home``, ``doors``…)."""
        return self.ask(cabinet_id, lambda cabinet: cabinet.at_kiosk([]))


def _emit(cabinet: FleetCabinet, *, count: int, kinds: tuple[str, ...]) -> None:
    doors = list(cabinet.doors)
    for index in range(count):
        door = doors[(index // len(kinds)) % len(doors)]
        cabinet.journal_event(kinds[index % len(kinds)], door, {})
    cabinet.flush_journal()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft open-files limit to ``wanted`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < wanted:
        raise SimulatorConfigError(f"open-files limit {soft} is below the {wanted} needed")
    return soft


def fleet_pickup_key(cabinet_id: str) -> bytes:
    """The pickup key of a fleet cabinet given none: derived from its id (a simulator's
    key, known to anyone; a server sending it allow-lists hashes with the same)."""
    return hashlib.sha256(b"locker-sim-fleet pickup key\0" + cabinet_id.encode()).digest()


def cabinet_ids(prefix: str, count: int) -> tuple[str, ...]:
    """``count`` cabinet ids ``PREFIX00001``…, valid MQTT client ids and usernames."""
    return tuple(f"{prefix}{n:05d}" for n in range(1, count + 1))


# ------------------------------------------------------------------ agent glue
def _mqtt_settings(cabinet_id: str, settings: FleetSettings) -> MqttSettings:
    """The client settings of one cabinet: it logs in as itself when it has a password."""
    password = settings.passwords.get(cabinet_id)
    return MqttSettings(
        host=settings.host,
        port=settings.port,
        client_id=cabinet_id,
        username=None if password is None else cabinet_id,
        password=password,
        tls=settings.ca_file is not None,
        ca_file=settings.ca_file,
        keepalive=settings.keepalive,
        backoff_initial=settings.reconnect_min,
        backoff_max=settings.reconnect_max,
        max_outgoing=UNBOUNDED_OUTGOING,
    )


def _guard_policy(cabinet_id: str, settings: FleetSettings) -> GuardPolicy:
    return GuardPolicy(
        cabinet_id=cabinet_id,
        doors=frozenset(range(1, settings.doors + 1)),
        trusted_keys=settings.trusted_keys,
        maintenance_token_hash=settings.maintenance_token_hash,
        max_opens_per_window=NO_OPEN_RATE_LIMIT,
    )


# ------------------------------------------------------------------ contract glue
def _topic(kind: str, cabinet_id: str) -> str:
    return contract.topics.topic(cabinet_id, contract.topics.Kind(kind))


def _presence_msg(cabinet_id: str, status: str, connection: int, version: str) -> bytes:
    body = contract.Presence(status=status, connection=connection, agent_version=version)
    return contract.encode(contract.new_envelope(cabinet_id, body))


def _state_msg(cabinet_id: str, version: int, doors: Mapping[int, str]) -> bytes:
    snapshot = {
        str(number): contract.DoorSnapshot(state=state, occupied=None)
        for number, state in doors.items()
    }
    body = contract.State(version=version, doors=snapshot)
    return contract.encode(contract.new_envelope(cabinet_id, body))


def _new_event(
    seq: int, event_type: str, door: int | None, data: Mapping[str, Any]
) -> contract.Event:
    return contract.Event(
        event_id=contract.new_message_id(),
        seq=seq,
        type=event_type,
        device_time=contract.utc_now(),
        door=door,
        data=dict(data),
    )


def _evt_msg(cabinet_id: str, events: list[contract.Event]) -> bytes:
    return contract.encode(contract.new_envelope(cabinet_id, contract.EventBatch(events=events)))


def _read_command(payload: bytes) -> FleetCommand:
    """The command in ``payload``; a malformed one keeps its id when it can be read."""
    try:
        message = contract.decode(payload, contract.CommandMessage)
    except contract.ContractError as exc:
        return FleetCommand(None, _salvage_command_id(payload), malformed=str(exc))
    return FleetCommand(message, message.body.command_id)


def _salvage_command_id(payload: bytes) -> str | None:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        command_id = json.loads(payload)["body"]["command_id"]
        if isinstance(command_id, str) and re.fullmatch(r"[0-9a-f]{32}", command_id):
            return command_id
    return None


def _signature_problem(
    message: contract.Envelope[Any], keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    try:
        contract.verify_message(message, keys)
    except contract.UnknownKey:
        return contract.RejectReason.UNKNOWN_KEY.value
    except contract.BadSignature:
        return contract.RejectReason.BAD_SIGNATURE.value
    return None
