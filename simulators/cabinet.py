"""ONE full simulated cabinet: the real agent runtime on simulated lock-control boards.

:class:`SimulatedCabinet` builds a :class:`~simulators.bus.SimulatedBus` with exactly the
boards and locks an ``agent.toml`` describes, serves it on a pty, and runs the real
:class:`~locker_agent.runtime.AgentRuntime` on that pty: journal, MQTT link, command
guard, allow-list and door controller are the production code; only the boards are
simulated. Doors are moved by hand through :meth:`SimulatedCabinet.door`::

    with SimulatedCabinet(load_settings(Path("agent.toml"))) as cabinet:
        cabinet.door(3).force_open()       # the agent journals door.forced_open / opened
        cabinet.runtime.door_state(3)

The boards speak ``[serial] protocol``. A Kerong cabinet's boards report an item bit per
compartment (``cabinet.door(3).put_item()`` / ``remove_item()``); the agent reads it on
the doors whose ``[[doors]]`` entry has ``item_sensor = true``, which
:func:`with_item_sensors` sets on the settings of a cabinet built in code.

:meth:`SimulatedCabinet.serve_bus` serves only the boards, for an agent that runs in
another process (``locker-agent run --config agent.toml --serial-port <pty>``), as the
kill -9 tests do. For thousands of cabinets without boards see :mod:`simulators.fleet`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from locker_agent.config import AgentSettings, parse_settings
from locker_agent.doors import ControllerSettings
from locker_agent.kiosk.courier_desk import CourierHooks
from locker_agent.link.mqtt import MqttSettings
from locker_agent.runtime import AgentRuntime
from locker_agent.serial_link import LinkSettings
from simulators.board import BoardConfig, SimulatedDoor
from simulators.bus import SimulatedBus
from simulators.errors import SimulatorConfigError, UnknownDoorError
from simulators.timing import Timing

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CabinetTuning:
    """Timing of the simulated boards and of the agent's door layer (patched down in tests)."""

    timing: Timing = dataclasses.field(default_factory=Timing)
    link: LinkSettings | None = None
    controller: ControllerSettings | None = None
    mqtt: MqttSettings | None = None
    ack_timeout: float = 15.0
    #: None: the agent.toml `[control]` value (default 30)
    max_remote_opens_per_minute: int | None = None
    #: the kiosk's courier desk and deposit record (e.g. simulators.courier_desk's
    #: ServerCourierDesk)
    courier: CourierHooks | None = None


class SimulatedCabinet:
    """A simulated bus on a pty plus the real agent runtime driving it."""

    def __init__(
        self,
        settings: AgentSettings,
        tuning: CabinetTuning | None = None,
        *,
        stable_port: Path | None = None,
    ) -> None:
        """``stable_port``: serve the boards behind this symlink, as a USB adapter's
        ``/dev/serial/by-id`` name, so :meth:`unplug_adapter` / :meth:`replug_adapter`
        can give the agent a new pty under the same name."""
        self.settings = settings
        self.tuning = tuning or CabinetTuning()
        self.stable_port = stable_port
        self.bus = bus_for(settings, self.tuning.timing)
        self.port: str | None = None
        self._runtime: AgentRuntime | None = None

    @property
    def runtime(self) -> AgentRuntime:
        if self._runtime is None:
            raise SimulatorConfigError("the cabinet is not running; call start() first")
        return self._runtime

    def serve_bus(self) -> str:
        """Serve the boards on a pty (once) and return its path; no agent is started."""
        if self.port is None:
            self.port = self.bus.start_pty(self.stable_port)
        return self.port

    def unplug_adapter(self) -> None:
        """The boards' USB adapter goes away (the agent keeps running)."""
        self.bus.unplug()

    def replug_adapter(self) -> None:
        """The adapter is back as a new pty behind the same stable name."""
        self.bus.replug()

    def start(self) -> SimulatedCabinet:
        port = self.serve_bus()
        runtime = AgentRuntime(
            self.settings,
            serial_port=port,
            link_settings=self.tuning.link,
            controller_settings=self.tuning.controller,
            mqtt=self.tuning.mqtt,
            ack_timeout=self.tuning.ack_timeout,
            max_remote_opens_per_minute=self.tuning.max_remote_opens_per_minute,
            courier=self.tuning.courier,
        )
        self._runtime = runtime.start()
        return self

    def stop_agent(self) -> None:
        """Stop the agent (cleanly), keep the boards served: it can be started again."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.stop()

    def stop(self) -> None:
        self.stop_agent()
        self.bus.stop()
        self.port = None

    def door(self, number: int) -> SimulatedDoor:
        """The simulated door behind the agent's door ``number`` (per [[doors]])."""
        for door in self.settings.doors:
            if door.number == number:
                return self.bus.board(door.board).door(door.lock)
        raise UnknownDoorError(f"cabinet {self.settings.cabinet_id} has no door {number}")

    def __enter__(self) -> SimulatedCabinet:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def with_item_sensors(settings: AgentSettings, doors: Iterable[int] | None = None) -> AgentSettings:
    """``settings`` with ``item_sensor = true`` on ``doors`` (default: every door), as an
    installer writes it for compartments with a working item sensor. Validated again like
    a loaded file: a protocol whose boards report no item sensor (8A/80) is refused with
    a :class:`~locker_agent.errors.ConfigError`."""
    wanted = None if doors is None else set(doors)
    document = settings.model_dump()
    for door in document["doors"]:
        if wanted is None or door["number"] in wanted:
            door["item_sensor"] = True
    return parse_settings(document)


def bus_for(settings: AgentSettings, timing: Timing) -> SimulatedBus:
    """A bus with one simulated board per configured board, as many locks as configured."""
    locks: dict[int, int] = {}
    for door in settings.doors:
        locks[door.board] = max(locks.get(door.board, 0), door.lock)
    boards = [BoardConfig(address, count) for address, count in sorted(locks.items())]
    return SimulatedBus(settings.serial.protocol, boards, timing)
