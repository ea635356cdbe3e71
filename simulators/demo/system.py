"""The whole locker system in one process: server, broker, mail catcher, two cabinets.

:class:`DemoSystem` starts, in this order, each on its own threads:

1. the mail catcher (SMTP + a page to read the e-mails);
2. the server's database (SQLite in the data directory, migrated), its keys (created on
   first use) and the demo data (:mod:`simulators.demo.seed`);
3. the server's background jobs exactly as ``locker-server serve`` runs them — the
   notification worker, sweeps, audit checkpoints and the MQTT bridge to the embedded
   development broker (amqtt: anonymous, no TLS, no ACLs; on a free port when 1883 is
   taken) — and the API with the web console (uvicorn);
4. per cabinet: its credential and agent configuration provisioned by the server
   (:func:`locker_server.broker.provisioning.provision`), a network cable to the broker
   (:mod:`simulators.demo.network`), a virtual camera (:mod:`simulators.demo.camera_stream`)
   and the real agent with its kiosk page on simulated pty boards
   (:class:`simulators.cabinet.SimulatedCabinet`); interactively, a simulated person at
   its doors (:mod:`simulators.demo.hands`).

:meth:`DemoSystem.stop` stops them in the opposite order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import socket
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import tomli_w
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from locker_agent.config import parse_settings
from locker_agent.runtime import AgentRuntime, mqtt_settings
from locker_server.audit import AuditLog
from locker_server.background import BackgroundJobs
from locker_server.broker.provisioning import BrokerEndpoint, provision
from locker_server.broker.tls import write_private
from locker_server.config import Settings
from locker_server.db import make_engine, migrate
from locker_server.keys import ServerKeys, load_keys
from locker_server.notifications import Notifier
from locker_server.services import DomainDeps
from locker_server.web.app import create_console_app
from simulators.cabinet import CabinetTuning, SimulatedCabinet
from simulators.demo.camera_stream import VirtualCameraStream
from simulators.demo.hands import PersonAtTheDoors
from simulators.demo.mailcatcher import MailCatcher
from simulators.demo.network import NetworkCable
from simulators.demo.seed import CABINET_CODES, DemoData, seed

logger = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
#: where a person finds things on a machine with these ports free; else any free port
PREFERRED_PORTS: Final = {"api": 8000, "mail page": 8025, "smtp": 2525}
PREFERRED_KIOSK_PORTS: Final = {"LOBBY-A": 8781, "LOBBY-B": 8782}
START_TIMEOUT: Final = 20.0
HELP_CONTACT: Final = "the demo's operator (console: user operator)"


class DemoStartFailed(Exception):
    """A part of the demo did not come up."""


@dataclass(frozen=True)
class DemoOptions:
    #: keep the database, keys and journals here; None: a temporary directory, removed
    data_dir: Path | None = None
    #: try the well-known ports first (interactive); False: free ports only (scenario)
    preferred_ports: bool = True
    #: a simulated person fills or empties each door that opens and closes it (interactive)
    person_at_doors: bool = False


@dataclass
class DemoCabinet:
    """One cabinet of the demo and the things around it the story can touch."""

    code: str
    db_id: int
    simulated: SimulatedCabinet
    camera: VirtualCameraStream
    cable: NetworkCable

    @property
    def runtime(self) -> AgentRuntime:
        return self.simulated.runtime

    @property
    def kiosk_url(self) -> str:
        web = self.runtime.kiosk_web
        if web is None:
            raise DemoStartFailed(f"cabinet {self.code} has no kiosk page")
        return web.url

    def stop(self) -> None:
        self.simulated.stop()
        self.cable.stop()
        self.camera.stop()


@dataclass
class DemoSystem:
    options: DemoOptions = field(default_factory=DemoOptions)
    data_dir: Path = field(init=False)
    settings: Settings = field(init=False)
    data: DemoData = field(init=False)
    mail: MailCatcher = field(init=False)
    api: ApiServer = field(init=False)
    jobs: BackgroundJobs = field(init=False)
    cabinets: dict[str, DemoCabinet] = field(default_factory=dict, init=False)
    _engine: Engine | None = field(default=None, init=False)
    _stops: list[Callable[[], None]] = field(default_factory=list, init=False)
    _temporary: bool = field(default=False, init=False)

    @property
    def broker_port(self) -> int:
        broker = self.jobs.embedded_broker
        if broker is None:
            raise DemoStartFailed("the embedded broker is not running")
        return broker.port

    def start(self) -> DemoSystem:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.data_dir = self._make_data_dir()
        self.mail = MailCatcher(smtp_port=self._port("smtp"), web_port=self._port("mail page"))
        self._started(self.mail.start().stop)
        api_socket = bound_socket(self._port("api"))
        self.settings = demo_settings(self.data_dir, self.mail.smtp_port, api_socket)
        engine = self._database()
        keys = load_keys(self.settings.resolved_secrets_dir)
        audit = AuditLog.for_server(self.settings, keys)
        deps = DomainDeps(self.settings, keys, audit, Notifier(settings=self.settings, keys=keys))
        self.data = seed(engine, deps, audit)
        self._start_jobs(engine, keys)
        app = create_console_app(self.jobs.settings, link_publisher=self.jobs.link_publisher)
        self.api = ApiServer(app, api_socket)
        self._started(self.api.start().stop)
        for code in CABINET_CODES:
            self.cabinets[code] = self._start_cabinet(code, engine, keys, audit)
        self._wait_cabinets_online()

    def stop(self) -> None:
        """Stop what was started, last first; each part is stopped even if one fails."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                logger.exception("stopping a part of the demo failed")
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> DemoSystem:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return self.settings.public_base_url

    # -- parts ----------------------------------------------------------------------------

    def _started(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    def _make_data_dir(self) -> Path:
        if self.options.data_dir is not None:
            self.options.data_dir.mkdir(parents=True, exist_ok=True)
            return self.options.data_dir.resolve()
        self._temporary = True
        return Path(tempfile.mkdtemp(prefix="locker-demo-"))

    def _port(self, name: str) -> int:
        preferred = PREFERRED_PORTS.get(name) if self.options.preferred_ports else None
        return free_port_preferring(preferred)

    def _database(self) -> Engine:
        engine = make_engine(self.settings.resolved_database_url)
        self._engine = engine
        self._started(engine.dispose)
        migrate(engine)
        return engine

    def _start_jobs(self, engine: Engine, keys: ServerKeys) -> None:
        # housekeeping every second: new parcels reach the cabinets' allow-lists quickly
        self.jobs = BackgroundJobs(engine, self.settings, keys, housekeeping_seconds=1.0)
        self.jobs.start()
        self._started(self.jobs.stop)
        bridge = self.jobs.bridge
        if bridge is None or not bridge.wait_until_subscribed(START_TIMEOUT):
            raise DemoStartFailed("the server's MQTT bridge did not subscribe to the broker")

    def _start_cabinet(
        self, code: str, engine: Engine, keys: ServerKeys, audit: AuditLog
    ) -> DemoCabinet:
        camera = VirtualCameraStream().start()
        self._started(camera.stop)
        cable = NetworkCable(HOST, self.broker_port).start()
        self._started(cable.stop)
        document = self._agent_document(code, engine, keys, audit, cable, camera)
        settings = parse_settings(document)
        # reconnect soon after the cable is back
        mqtt = dataclasses.replace(mqtt_settings(settings), backoff_initial=0.2, backoff_max=1.0)
        simulated = SimulatedCabinet(settings, CabinetTuning(mqtt=mqtt))
        simulated.start()
        self._started(simulated.stop)
        if self.options.person_at_doors:
            self._started(PersonAtTheDoors(simulated).start().stop)
        return DemoCabinet(code, self.data.cabinets[code], simulated, camera, cable)

    def _agent_document(
        self,
        code: str,
        engine: Engine,
        keys: ServerKeys,
        audit: AuditLog,
        cable: NetworkCable,
        camera: VirtualCameraStream,
    ) -> dict[str, Any]:
        """The server's provisioned ``agent.toml``, adapted to the development broker (no
        TLS, MQTT 3.1.1, through the cable), with a journal in the data directory, kiosk and
        camera."""
        directory = self.data_dir / "cabinets" / code
        endpoint = BrokerEndpoint(HOST, cable.port, self.data_dir / "broker")
        provisioned = provision(
            engine, keys, audit, reference=code, out_dir=directory, endpoint=endpoint
        )
        document = tomllib.loads(provisioned.agent_config.read_text())
        broker = document["broker"]
        document["broker"] = {
            "host": HOST,
            "port": cable.port,
            "tls": False,
            "username": broker["username"],
            "password": broker["password"],
            "protocol": "3.1.1",  # amqtt speaks nothing newer
        }
        document["journal"] = {"path": str(directory / "journal.sqlite3")}
        kiosk_port = PREFERRED_KIOSK_PORTS.get(code) if self.options.preferred_ports else None
        document["kiosk"] = {
            "host": HOST,
            "port": free_port_preferring(kiosk_port),
            "language": "en",
            "help_contact": HELP_CONTACT,
        }
        document["camera"] = {"device": camera.url}
        write_private(provisioned.agent_config, tomli_w.dumps(document).encode())
        return document

    def _wait_cabinets_online(self) -> None:
        for code, cabinet in self.cabinets.items():
            if not cabinet.runtime.link.wait_connected(START_TIMEOUT):
                raise DemoStartFailed(f"cabinet {code} did not connect to the broker")


class ApiServer:
    """The API and web console with uvicorn on its own thread, on an already bound socket."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self._socket = sock
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="api", daemon=True
        )

    def start(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DemoStartFailed("the API server did not start")
            self._thread.join(0.05)  # returns at once when the thread ends
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()


def demo_settings(data_dir: Path, smtp_port: int, api_socket: socket.socket) -> Settings:
    """Server settings for the demo, all given here so ``LOCKER_*`` variables meant for
    another server cannot point the demo at a real database or mail server."""
    port = api_socket.getsockname()[1]
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'locker.sqlite3'}",
        secrets_dir=data_dir / "secrets",
        audit_witness_path=data_dir / "audit-witness.jsonl",
        public_base_url=f"http://{HOST}:{port}",
        smtp_host=HOST,
        smtp_port=smtp_port,
        smtp_starttls=False,
        smtp_username=None,
        smtp_password=None,
        sms_gateway_url=None,
        mqtt_url=None,
        mqtt_client_id="locker-demo-server",
    )


def bound_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def free_port_preferring(preferred: int | None) -> int:
    """``preferred`` when nothing listens on it, else a free port (0 picks one)."""
    for candidate in (preferred, 0):
        if candidate is None:
            continue
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((HOST, candidate))
            return int(probe.getsockname()[1])
    raise DemoStartFailed("no free TCP port on 127.0.0.1")
