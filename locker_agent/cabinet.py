"""Wiring of one cabinet bus: serial link → board client → door controller.

The layers stay separate; this only builds them in order and starts/stops them
together, so the CLI, the demo and the tests assemble a cabinet the same way.
"""

from __future__ import annotations

from firmware_protocol import get_protocol
from firmware_protocol.base import BoardProtocol
from firmware_protocol.errors import ProtocolError
from locker_agent.boards import BoardClient
from locker_agent.doors import ControllerSettings, DoorController
from locker_agent.errors import ConfigError
from locker_agent.layout import CabinetLayout
from locker_agent.serial_link import LinkSettings, SerialLink


def protocol_named(name: str) -> BoardProtocol:
    """The codec called ``name``; an unknown name is a configuration error."""
    try:
        return get_protocol(name)
    except (ProtocolError, LookupError) as exc:
        raise ConfigError(str(exc)) from exc


class Cabinet:
    """One bus of a cabinet with its door controller, started and stopped as one."""

    def __init__(
        self,
        url: str,
        protocol: BoardProtocol,
        layout: CabinetLayout,
        link_settings: LinkSettings | None = None,
        controller_settings: ControllerSettings | None = None,
    ) -> None:
        settings = link_settings or LinkSettings(baudrate=protocol.default_baud)
        self.layout = layout
        self.link = SerialLink(url, protocol, settings)
        polarity = {address: board.polarity for address, board in layout.boards.items()}
        self.boards = BoardClient(self.link, polarity)
        self.doors = DoorController(layout, self.boards, controller_settings)

    def start(self) -> Cabinet:
        self.link.start()
        try:
            self.doors.start()
        except BaseException:
            self.link.stop()
            raise
        return self

    def stop(self) -> None:
        self.doors.stop()
        self.link.stop()

    def __enter__(self) -> Cabinet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
