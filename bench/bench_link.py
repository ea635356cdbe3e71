"""Benchmark of the cabinet ↔ server link. Not a test.

Every part runs against a private Mosquitto started from the project's generated
configuration (``PrivateMosquitto``: passwords, ACLs; the loopback plain listener) and
the real server bridge (``MqttBridge`` + ``Ingest``, as ``serve`` starts them) on a fresh
PostgreSQL database. Simulated cabinets run in a separate process (``locker-sim fleet``)
so they do not share the server's interpreter.

(a) event ingest: N cabinets each journal K door events (opened/closed per door), sent
    in ``evt`` messages of up to B events; measured from the emit until every event is
    committed by the server AND its ``evt/ack`` is back at the cabinet. Baseline in the
    same run, same broker, same fleet: the raw publish → subscribe rate of the very same
    messages to a subscriber that only counts them (shared subscription, no database).
(b) command round trip: server → agent → simulated board → result, p50/p99. The cabinet
    runs as deployed, in processes of its own: ``locker-agent run`` on a pty served by
    ``locker-sim board`` (``bench.cabinet_processes``). Baseline: raw MQTT round trip of
    messages of the same sizes.
(c) a fleet of ≥ 1,000 cabinets connected at once to one server: time until all are
    online in the server's database, then the broker restarts and every cabinet must be
    online again in the database under its new connection number.

Usage (from the repository root)::

    .venv/bin/python -m bench.bench_link                 # all parts
    .venv/bin/python -m bench.bench_link --part a --cabinets 50 --events 400
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

import locker_server.models.links  # noqa: F401  (registers the link tables)
from bench.bench_server import fresh_database
from bench.cabinet_processes import AgentProcess, BoardProcess
from locker_contract import CommandResultMessage, decode, encode_public_key, topics
from locker_server.audit import Actor, AuditLog
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import load_keys
from locker_server.link.bridge import BridgeConfig, MqttBridge
from locker_server.link.ingest import Ingest
from locker_server.models import CabinetCreate, DoorCreate, SiteCreate
from locker_server.models.links import CabinetLink, LinkEvent
from locker_server.notifications import Notifier
from locker_server.services import Caller, DomainDeps
from locker_server.services import layout as config_service
from locker_server.services.commands import issue_command
from simulators.mosquitto import PrivateMosquitto
from simulators.timing import Timing

ADMIN = Caller(actor=Actor(type="system", id="bench"), channel="cli")


# ------------------------------------------------------------------ the pieces
def domain_deps(engine: sa.Engine, directory: Path) -> DomainDeps:
    settings = Settings(
        data_dir=directory / "data",
        database_url=str(engine.url.render_as_string(hide_password=False)),
        secrets_dir=directory / "secrets",
    )
    keys = load_keys(directory / "secrets")
    audit = AuditLog(signing_key=keys.audit_signing_key)
    notifier = Notifier(settings=settings, keys=keys)
    return DomainDeps(settings=settings, keys=keys, audit=audit, notifier=notifier)


def create_cabinets(engine: sa.Engine, deps: DomainDeps, codes: list[str], doors: int) -> None:
    with session_scope(engine) as session:
        site = config_service.create_site(session, deps, SiteCreate(name="Bench"), caller=ADMIN)
        for code in codes:
            body = CabinetCreate(site_id=site.id or 0, code=code, name=code)
            cabinet = config_service.create_cabinet(session, deps, body, caller=ADMIN)
            bodies = [DoorCreate(number=n, size="M", board=1, lock=n) for n in range(1, doors + 1)]
            config_service.add_doors(session, deps, cabinet.id or 0, bodies, caller=ADMIN)


def start_bridge(
    broker: PrivateMosquitto, engine: sa.Engine, deps: DomainDeps, **overrides: Any
) -> MqttBridge:
    account = broker.server_credentials
    config = BridgeConfig(
        **overrides,
        host=broker.host,
        port=broker.plain_port or 0,
        client_id=f"bench-server-{uuid.uuid4().hex[:8]}",
        username=account.username,
        password=account.password,
        share_group="bench",
    )
    bridge = MqttBridge(config, Ingest(engine, deps))
    bridge.start()
    if not bridge.wait_until_subscribed(30):
        raise RuntimeError("the bridge never subscribed")
    return bridge


class FleetProcess:
    """``locker-sim fleet`` in its own process, driven line by line over stdin/stdout."""

    def __init__(self, broker: PrivateMosquitto, passwords: dict[str, str], **options: Any):
        self._secrets = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        json.dump(passwords, self._secrets)
        self._secrets.close()
        command = [sys.executable, "-m", "simulators.cli", "fleet", "--host", broker.host]
        command += ["--port", str(broker.plain_port), "--passwords", self._secrets.name]
        for name, value in options.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self.started = time.perf_counter()
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.banner = self._line()

    def ask(self, line: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._line()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = json.loads(self.ask("stats"))
        return stats

    def _line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fleet process ended")
        return line.strip()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.unlink(self._secrets.name)


class CountingSubscriber:
    """The raw baseline's receiver: a paho client (server account) that only counts."""

    def __init__(self, broker: PrivateMosquitto, filter_: str) -> None:
        account = broker.server_credentials
        self.messages = 0
        self.last_at = 0.0
        self._target = 0
        self._done = threading.Event()
        self._subscribed: queue.Queue[int] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.username_pw_set(account.username, account.password)
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self._subscribed.put(1)
        client.on_connect = lambda c, *_: c.subscribe(filter_, qos=1)
        client.connect(broker.host, broker.plain_port or 0)
        client.loop_start()
        self._subscribed.get(timeout=10)
        self.client = client

    def expect(self, messages: int) -> None:
        self._target = messages
        if self.messages >= messages:
            self._done.set()

    def wait(self, timeout: float, idle: float = 3.0) -> bool:
        """Until every expected message arrived, or none came for ``idle`` seconds (the
        broker drops QoS 1 messages beyond ``max_queued_messages`` for a slow reader)."""
        deadline = time.perf_counter() + timeout
        while not self._done.wait(0.2):
            quiet = self.last_at and time.perf_counter() - self.last_at > idle
            if quiet or time.perf_counter() > deadline:
                return False
        return True

    def _on_message(self, *_: Any) -> None:
        self.messages += 1
        self.last_at = time.perf_counter()
        if self._target and self.messages >= self._target:
            self._done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # paho 2.2 leaves its wake-up pair open


def passwords_for(codes: list[str]) -> dict[str, str]:
    return {code: uuid.uuid4().hex for code in codes}


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


# ------------------------------------------------------------------ (a) ingest
DOOR_EVENTS = ("door.opened", "door.closed")
TELEMETRY = ("telemetry.temperature",)


@dataclass(frozen=True)
class IngestFigures:
    kinds: tuple[str, ...]
    events: int
    batch: int
    raw_seconds: float
    raw_single_seconds: float
    ingest_seconds: float
    stored: int

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def raw_single_rate(self) -> float:
        return self.events / self.raw_single_seconds

    @property
    def ingest_rate(self) -> float:
        return self.events / self.ingest_seconds


def bench_ingest(
    cabinets: int, events: int, batch: int, kinds: tuple[str, ...], doors: int = 12
) -> IngestFigures:
    """``events`` per cabinet, ``batch`` events per evt message, types cycling ``kinds``."""
    codes = [f"INGEST-{n:04d}" for n in range(cabinets)]
    passwords = passwords_for(codes)
    total = cabinets * events
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        engine = stack.enter_context(fresh_database("postgres", Path(tmp)))
        deps = domain_deps(engine, Path(tmp))
        create_cabinets(engine, deps, codes, doors)
        broker = stack.enter_context(PrivateMosquitto(cabinets=passwords, plain=True))
        raw = _raw_publish_subscribe(broker, passwords, events, batch, doors, kinds)
        raw_single = _raw_publish_subscribe(broker, passwords, events, 1, doors, kinds)
        bridge = start_bridge(broker, engine, deps)
        stack.callback(bridge.stop)
        fleet = FleetProcess(broker, passwords, batch_size=batch, doors=doors)
        stack.callback(fleet.close)
        _expect(fleet.ask("wait online 120"), "online ok")
        started = time.perf_counter()
        fleet.ask(f"emit {events} {' '.join(kinds)}")
        _expect(fleet.ask("wait acked 900"), "acked ok")
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(LinkEvent)).scalar_one()
    return IngestFigures(kinds, total, batch, raw, raw_single, elapsed, stored)


def _raw_publish_subscribe(
    broker: PrivateMosquitto,
    passwords: dict[str, str],
    events: int,
    batch: int,
    doors: int,
    kinds: tuple[str, ...],
) -> float:
    """Seconds for the same evt messages to go fleet → broker → a counting subscriber."""
    subscriber = CountingSubscriber(broker, topics.shared("raw", topics.Kind.EVT))
    fleet = FleetProcess(broker, passwords, batch_size=batch, doors=doors, resend_after=3600)
    try:
        _expect(fleet.ask("wait online 120"), "online ok")
        expected = len(passwords) * -(-events // batch)
        subscriber.expect(expected)
        started = time.perf_counter()
        fleet.ask(f"emit {events} {' '.join(kinds)}")
        subscriber.wait(600)
        if subscriber.messages < expected:
            print(f"    (raw: the broker dropped {expected - subscriber.messages} of {expected})")
        # seconds the whole load would take at the rate the subscriber received
        return (subscriber.last_at - started) * expected / max(1, subscriber.messages)
    finally:
        fleet.close()
        subscriber.close()


def _expect(answer: str, prefix: str) -> None:
    if not answer.startswith(prefix):
        raise RuntimeError(f"fleet answered {answer!r}, expected {prefix!r}")


# ------------------------------------------------------------------ (b) commands
#: the door-layer bench's line: 9600 baud with byte pacing, unlock answered 50 ms after
#: the pulse (docs/performance.md, door layer)
#: The simulated 8A/80 board of part (b), always on a 9600-baud line with byte pacing
#: (a 5-byte frame takes 5.2 ms each way). Real boards answer an unlock only after the
#: relay pulse (0.5-1 s, docs/protocols.md), which no round-trip goal can include, so:
#: * ``instant``: the board itself takes no time (it answers as soon as a request is in,
#:   the door springs at once): what remains is our software path plus the serial line;
#: * ``50ms-unlock``: it answers an unlock 50 ms after it (40 ms pulse, door open after
#:   20 ms) and a query after 10 ms: the board of the figures published before.
BOARD_PROFILES = {
    "instant": Timing(
        unlock_reply_delay=0.0,
        query_reply_delay=0.0,
        spring_delay=0.0,
        pulse_duration=0.04,
        baud=9600,
        pacing=True,
    ),
    "50ms-unlock": Timing(
        unlock_reply_delay=0.05,
        query_reply_delay=0.01,
        spring_delay=0.02,
        pulse_duration=0.04,
        baud=9600,
        pacing=True,
    ),
}
COMMAND_CABINET, COMMAND_DOORS, COMMAND_BOARD = "CMD-BENCH-01", 12, 1
#: the agent's routine poll (the controller's default is 0.15 s; a shorter one holds the
#: line more often, so an unlock waits behind a poll more often)
COMMAND_POLL_INTERVAL = 0.1
#: pause after the agent reported the previous door closed, before the next command
COMMAND_SETTLE = 0.1
OPERATOR = Caller(actor=Actor(type="user", id="bench"), channel="api", source="bench")


@dataclass(frozen=True)
class Percentiles:
    label: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, label: str, seconds: list[float]) -> Percentiles:
        ordered = sorted(seconds)

        def pick(quantile: float) -> float:
            return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000

        return cls(label, len(ordered), pick(0.50), pick(0.99), ordered[-1] * 1000)


class Watcher:
    """A paho client (server account) timestamping every message on its topics."""

    def __init__(self, broker: PrivateMosquitto, *filters: str) -> None:
        account = broker.server_credentials
        self.arrivals: queue.Queue[tuple[float, str, bytes]] = queue.Queue()
        subscribed: queue.Queue[int] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.username_pw_set(account.username, account.password)
        client.on_message = lambda _c, _u, m: self.arrivals.put(
            (time.perf_counter(), m.topic, bytes(m.payload))
        )
        client.on_subscribe = lambda *_: subscribed.put(1)
        client.on_connect = lambda c, *_: (
            c.subscribe([(f, 1) for f in filters]) if filters else subscribed.put(1)
        )
        client.connect(broker.host, broker.plain_port or 0)
        client.loop_start()
        subscribed.get(timeout=10)
        self.client = client

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()


@dataclass
class CommandTimes:
    """Per command, seconds from the call to ``issue_command``."""

    on_broker: list[float]
    received: list[float]
    succeeded: list[float]


def bench_commands(samples: int, board_timing: Timing) -> tuple[Percentiles, ...]:
    """(baseline raw round trip, command on the broker, → received, → succeeded)."""
    passwords = passwords_for([COMMAND_CABINET])
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        engine = stack.enter_context(fresh_database("postgres", Path(tmp)))
        deps = domain_deps(engine, Path(tmp))
        create_cabinets(engine, deps, [COMMAND_CABINET], COMMAND_DOORS)
        broker = stack.enter_context(PrivateMosquitto(cabinets=passwords, plain=True))
        bridge = start_bridge(broker, engine, deps)
        stack.callback(bridge.stop)
        watcher = Watcher(broker, topics.cmd(COMMAND_CABINET), topics.cmd_res(COMMAND_CABINET))
        stack.callback(watcher.close)
        states = Watcher(broker, topics.state(COMMAND_CABINET))
        stack.callback(states.close)
        board = BoardProcess([COMMAND_BOARD], COMMAND_DOORS, board_timing, baud=9600)
        stack.callback(board.stop)
        document = _agent_document(broker, deps, passwords, Path(tmp))
        agent = AgentProcess(document, Path(tmp), board.port)
        stack.callback(agent.stop)
        _wait_all_closed(states, agent)
        rig = CommandRig(engine, deps, bridge, board, agent, watcher, states)
        times, sizes = _command_round_trips(rig, samples)
        baseline = _raw_round_trips(broker, sizes, samples)
    return (
        Percentiles.of("baseline: raw MQTT round trip, same sizes", baseline),
        Percentiles.of("command issued -> on the broker (stored, signed)", times.on_broker),
        Percentiles.of("command issued -> 'received' at the server", times.received),
        Percentiles.of("command issued -> 'succeeded' (door confirmed open)", times.succeeded),
    )


def _agent_document(
    broker: PrivateMosquitto, deps: DomainDeps, passwords: dict[str, str], directory: Path
) -> dict[str, object]:
    return {
        "cabinet_id": COMMAND_CABINET,
        "broker": {
            "host": broker.host,
            "port": broker.plain_port,
            "tls": False,
            "username": COMMAND_CABINET,
            "password": passwords[COMMAND_CABINET],
        },
        "security": {
            "command_public_keys": [encode_public_key(deps.keys.command_signing_key.public_key())],
            "pickup_key": "00" * 32,
        },
        "serial": {"port": "CHANGE-ME", "protocol": "8a80", "baud": 9600},
        "control": {
            "poll_interval": COMMAND_POLL_INTERVAL,
            # the bench opens far more often than a cabinet may
            "max_opens_per_door": 100_000,
            "max_remote_opens_per_minute": 100_000,
        },
        "doors": [
            {"number": n, "board": COMMAND_BOARD, "lock": n} for n in range(1, COMMAND_DOORS + 1)
        ],
        "journal": {"path": str(directory / "journal.sqlite3")},
    }


def _door_states(payload: bytes) -> dict[str, str]:
    doors = json.loads(payload)["body"]["doors"]
    return {number: door["state"] for number, door in doors.items()}


def _wait_all_closed(states: Watcher, agent: AgentProcess, timeout: float = 30) -> None:
    """Until the agent's retained snapshot shows every door closed (it is connected)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        agent.check_running()
        try:
            _arrived, _topic, payload = states.arrivals.get(timeout=1)
        except queue.Empty:
            continue
        snapshot = _door_states(payload)
        if len(snapshot) == COMMAND_DOORS and set(snapshot.values()) == {"closed"}:
            return
    raise RuntimeError(f"the agent never reported all doors closed; see {agent.log_path}")


def _wait_closed(states: Watcher, door: int, timeout: float = 10) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        _arrived, _topic, payload = states.arrivals.get(timeout=timeout)
        if _door_states(payload).get(str(door)) == "closed":
            return
    raise RuntimeError(f"door {door} never reported closed")


@dataclass(frozen=True)
class CommandRig:
    engine: sa.Engine
    deps: DomainDeps
    bridge: MqttBridge
    board: BoardProcess
    agent: AgentProcess
    watcher: Watcher  # cmd and cmd/res
    states: Watcher  # the agent's retained door snapshot


def _command_round_trips(rig: CommandRig, samples: int) -> tuple[CommandTimes, tuple[int, int]]:
    """One command at a time. Between two, the door is closed again and the agent has
    reported it, then a pause: the samples do not overlap, and a random part of the pause
    spreads the commands evenly over the agent's poll cycle (a command arriving while a
    poll holds the line waits for it)."""
    times = CommandTimes([], [], [])
    sizes = (0, 0)
    phases = random.Random(4)
    for index in range(samples + 5):  # the first five warm up
        rig.agent.check_running()
        door = index % COMMAND_DOORS + 1
        time.sleep(COMMAND_SETTLE + phases.uniform(0, COMMAND_POLL_INTERVAL))
        started = time.perf_counter()
        with session_scope(rig.engine) as session:
            command = issue_command(
                session, rig.bridge.publisher, rig.deps.keys,
                cabinet_id=1, action="open_door", door=door, reason="bench",
                caller=OPERATOR, audit=rig.deps.audit,
            )  # fmt: skip
            command_id = command.command_id
        arrivals, sizes = _results_of(rig.watcher, command_id)
        if index >= 5:
            times.on_broker.append(arrivals["cmd"] - started)
            times.received.append(arrivals["received"] - started)
            times.succeeded.append(arrivals["succeeded"] - started)
        rig.board.close_door(COMMAND_BOARD, door)
        _wait_closed(rig.states, door)
    return times, sizes


def _results_of(watcher: Watcher, command_id: str) -> tuple[dict[str, float], tuple[int, int]]:
    """Arrival time of the command on the broker ("cmd") and of each cmd/res status of
    ``command_id`` until the final one, and the sizes of the command and of its result."""
    times: dict[str, float] = {}
    sizes = [0, 0]
    while "cmd" not in times or "received" not in times or len(times) < 3:
        arrived, topic, payload = watcher.arrivals.get(timeout=30)
        if topics.parse(topic).kind is topics.Kind.CMD:
            if json.loads(payload)["body"]["command_id"] == command_id:
                times["cmd"] = arrived
                sizes[0] = len(payload)
            continue
        result = decode(payload, CommandResultMessage).body
        if result.command_id == command_id:
            times[result.status] = arrived
            sizes[1] = max(sizes[1], len(payload))
    if "succeeded" not in times:
        raise RuntimeError(f"command {command_id} ended {sorted(times)}")
    return times, (sizes[0], sizes[1])


def _raw_round_trips(broker: PrivateMosquitto, sizes: tuple[int, int], samples: int) -> list[float]:
    """The command path without the server or the agent: one client publishes a message of
    the command's size, an echo client answers with one of the result's size from its
    network thread, a third client receives it. QoS 1. The topics are server → cabinet
    kinds of a cabinet that does not exist, so the bridge ingests none of it."""
    request, reply = topics.sync("ECHO"), topics.evt_ack("ECHO")
    echo = Watcher(broker, request)

    def answer(client: mqtt.Client, _userdata: Any, _message: mqtt.MQTTMessage) -> None:
        client.publish(reply, b"r" * sizes[1], qos=1)  # from the echo's network thread

    echo.client.on_message = answer
    receiver = Watcher(broker, reply)
    sender = Watcher(broker)
    round_trips = []
    try:
        for index in range(samples + 5):
            started = time.perf_counter()
            sender.client.publish(request, b"c" * sizes[0], qos=1)
            arrived, _topic, _payload = receiver.arrivals.get(timeout=10)
            if index >= 5:
                round_trips.append(arrived - started)
            time.sleep(0.02)
    finally:
        for client in (echo, receiver, sender):
            client.close()
    return round_trips


# ------------------------------------------------------------------ (c) fleet
@dataclass(frozen=True)
class FleetFigures:
    cabinets: int
    fleet_online_s: float
    db_online_s: float
    restart_fleet_online_s: float
    restart_db_correct_s: float
    db_online_after: int
    db_connection_matches: int


def bench_fleet(cabinets: int, bridge_queue: int) -> FleetFigures:
    codes = [f"FLEET-{n:05d}" for n in range(cabinets)]
    passwords = passwords_for(codes)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        engine = stack.enter_context(fresh_database("postgres", Path(tmp)))
        deps = domain_deps(engine, Path(tmp))
        create_cabinets(engine, deps, codes, doors=1)
        broker = stack.enter_context(PrivateMosquitto(cabinets=passwords, plain=True))
        bridge = start_bridge(broker, engine, deps, queue_size=bridge_queue)
        stack.callback(bridge.stop)
        fleet = FleetProcess(broker, passwords, doors=1)
        stack.callback(fleet.close)
        _expect(fleet.ask("wait online 300"), "online ok")
        fleet_online = time.perf_counter() - fleet.started
        if not wait_until(lambda: _db_presence(engine, {})[0] >= cabinets, 300):
            raise RuntimeError("not every cabinet came online in the database")
        db_online = time.perf_counter() - fleet.started
        restarted = time.perf_counter()
        broker.restart()
        expected = _wait_for_new_connections(fleet, cabinets)
        restart_fleet_online = time.perf_counter() - restarted
        wait_until(lambda: _db_presence(engine, expected)[1] >= cabinets, 300, every=0.1)
        restart_db = time.perf_counter() - restarted
        online, matching = _db_presence(engine, expected)
    return FleetFigures(
        cabinets, fleet_online, db_online, restart_fleet_online, restart_db, online, matching
    )


def _wait_for_new_connections(fleet: FleetProcess, cabinets: int) -> dict[str, int]:
    """The fleet's connection numbers once every cabinet is online on a new connection."""
    for _ in range(600):
        stats = fleet.stats()
        connections: dict[str, int] = stats["connections"]
        if stats["online"] == cabinets and min(connections.values()) >= 2:
            return connections
        time.sleep(0.1)
    raise RuntimeError("the fleet did not reconnect after the broker restart")


def _db_presence(engine: sa.Engine, expected: dict[str, int]) -> tuple[int, int]:
    """(cabinets online in the DB, of which under the fleet's current connection number)."""
    from locker_server.models import Cabinet

    query = (
        sa.select(Cabinet.code, CabinetLink.connection)  # type: ignore[call-overload]
        .join(CabinetLink, CabinetLink.cabinet_id == Cabinet.id)
        .where(CabinetLink.online.is_(True))  # type: ignore[attr-defined]
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    matching = sum(1 for code, connection in rows if expected.get(code) == connection)
    return len(rows), matching


# ------------------------------------------------------------------ report
def report_ingest(figures: IngestFigures) -> None:
    print(
        f"(a) event ingest, {figures.events} events ({'/'.join(figures.kinds)}) "
        f"in evt messages of up to {figures.batch}"
    )
    print(
        f"    raw publish -> subscribe, same messages (counting subscriber): "
        f"{figures.raw_rate:,.0f} events/s ({figures.raw_seconds:.2f} s)"
    )
    print(
        f"    raw publish -> subscribe, one event per message:               "
        f"{figures.raw_single_rate:,.0f} events/s ({figures.raw_single_seconds:.2f} s)"
    )
    print(
        f"    bridge -> PostgreSQL, committed and acked: {figures.ingest_rate:,.0f} events/s "
        f"({figures.ingest_seconds:.2f} s); {figures.ingest_rate / figures.raw_rate:.1%} of "
        f"raw (same messages), {figures.ingest_rate / figures.raw_single_rate:.1%} of raw "
        f"(one event per message); stored {figures.stored}"
    )


def report_commands(profile: str, figures: tuple[Percentiles, ...]) -> None:
    print(f"(b) command round trip, {figures[0].samples} samples, board '{profile}'")
    for row in figures:
        print(
            f"    {row.label:<55} p50 {row.p50_ms:6.1f} ms  p99 {row.p99_ms:6.1f} ms  "
            f"max {row.max_ms:6.1f} ms"
        )


def report_fleet(figures: FleetFigures) -> None:
    print(f"(c) fleet of {figures.cabinets} cabinets, one server")
    print(f"    all online at the broker (presence PUBACKed): {figures.fleet_online_s:.2f} s")
    print(f"    all online in the server's database:          {figures.db_online_s:.2f} s")
    print("    broker restart:")
    print(
        f"      all reconnected (fleet side):               {figures.restart_fleet_online_s:.2f} s"
    )
    print(f"      DB online under the new connection number:  {figures.restart_db_correct_s:.2f} s")
    print(
        f"      DB online {figures.db_online_after}, matching connection "
        f"{figures.db_connection_matches} / {figures.cabinets}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("a", "b", "c", "all"), default="all")
    parser.add_argument("--cabinets", type=int, default=50, help="(a) cabinets")
    parser.add_argument("--events", type=int, default=400, help="(a) events per cabinet")
    parser.add_argument("--batch", type=int, default=100, help="(a) events per evt message")
    parser.add_argument("--samples", type=int, default=200, help="(b) commands")
    parser.add_argument(
        "--board",
        choices=sorted(BOARD_PROFILES),
        nargs="+",
        default=list(BOARD_PROFILES),
        help="(b) simulated board timing profiles (default: all)",
    )
    parser.add_argument("--fleet", type=int, default=1000, help="(c) cabinets")
    parser.add_argument(
        "--bridge-queue", type=int, default=5000, help="(c) the bridge's inbound queue size"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    if args.part in ("a", "all"):
        for kinds in (DOOR_EVENTS, TELEMETRY):
            ingest = bench_ingest(args.cabinets, args.events, args.batch, kinds)
            report_ingest(ingest)
            figures[f"ingest {kinds[0]}"] = ingest.__dict__
    if args.part in ("b", "all"):
        for profile in args.board:
            commands = bench_commands(args.samples, BOARD_PROFILES[profile])
            report_commands(profile, commands)
            figures[f"commands {profile}"] = [row.__dict__ for row in commands]
    if args.part in ("c", "all"):
        fleet = bench_fleet(args.fleet, args.bridge_queue)
        report_fleet(fleet)
        figures["fleet"] = fleet.__dict__
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
