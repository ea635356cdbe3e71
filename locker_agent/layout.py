"""Cabinet configuration: which door number is which (board, lock), and board settings.

Values only, no I/O. Everything is validated when built, so a bad layout fails at
start-up with a message an installer can act on, never at the first door open.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from firmware_protocol import errors as protocol_errors
from firmware_protocol import kerong
from firmware_protocol.base import BoardProtocol
from locker_agent.errors import ConfigError, UnknownDoorError


class Polarity(enum.StrEnum):
    """How a board's raw feedback signal maps to the door state.

    ``NORMAL``: signal present (8A/80 status ``11`` / bit set, Kerong hook bit set)
    means the door is closed. ``INVERTED``: signal present means open.
    """

    NORMAL = "normal"
    INVERTED = "inverted"


@dataclass(frozen=True, slots=True)
class DoorAddress:
    """Where one door's lock sits on the bus."""

    board: int
    lock: int

    def __str__(self) -> str:
        return f"board {self.board} lock {self.lock}"


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """One lock-control board on the bus."""

    address: int
    locks: int
    polarity: Polarity = Polarity.NORMAL


@dataclass(frozen=True, slots=True)
class CabinetLayout:
    """Door numbers → (board, lock), and the boards they live on.

    Build it with :meth:`build` (or :meth:`sequential`) so it is validated against the
    bus protocol: unique board addresses in the protocol's range, locks within each
    board, no door number or (board, lock) used twice, item sensors only on doors of
    boards that report them.
    """

    boards: Mapping[int, BoardConfig]
    doors: Mapping[int, DoorAddress]
    _by_address: Mapping[DoorAddress, int] = field(repr=False)
    #: doors whose compartment has a working item sensor wired; only their item readings
    #: count (an input with nothing wired reads a fixed value, which means nothing)
    item_sensors: frozenset[int] = frozenset()

    @classmethod
    def build(
        cls,
        protocol: BoardProtocol,
        boards: Iterable[BoardConfig],
        doors: Mapping[int, DoorAddress],
        item_sensors: Iterable[int] = (),
    ) -> CabinetLayout:
        """``item_sensors``: the doors whose item sensor is wired and used."""
        board_map = _validate_boards(protocol, boards)
        by_address = _validate_doors(board_map, doors)
        sensors = _validate_item_sensors(protocol, doors, item_sensors)
        return cls(
            boards=MappingProxyType(board_map),
            doors=MappingProxyType(dict(sorted(doors.items()))),
            _by_address=MappingProxyType(by_address),
            item_sensors=sensors,
        )

    @classmethod
    def sequential(
        cls,
        protocol: BoardProtocol,
        boards: Iterable[BoardConfig],
        item_sensors: Iterable[int] = (),
    ) -> CabinetLayout:
        """Number doors 1..N board after board, lock after lock (the usual wiring)."""
        board_list = list(boards)
        doors: dict[int, DoorAddress] = {}
        for board in board_list:
            for lock in range(1, board.locks + 1):
                doors[len(doors) + 1] = DoorAddress(board.address, lock)
        return cls.build(protocol, board_list, doors, item_sensors)

    def address_of(self, door: int) -> DoorAddress:
        try:
            return self.doors[door]
        except KeyError:
            raise UnknownDoorError(f"door {door} is not in the cabinet layout") from None

    def door_at(self, address: DoorAddress) -> int | None:
        return self._by_address.get(address)

    def has_item_sensor(self, door: int) -> bool:
        return door in self.item_sensors

    def doors_on(self, board: int) -> dict[int, int]:
        """Lock number → door number for every configured door of ``board``."""
        return {a.lock: d for d, a in self.doors.items() if a.board == board}


def reports_items(protocol: BoardProtocol) -> bool:
    """Whether the protocol's status replies say per lock if an item is inside: the
    Kerong CU16's infrared bits do; an 8A/80 board reports its lock feedback only."""
    return isinstance(protocol, kerong.KerongProtocol)


def _validate_boards(
    protocol: BoardProtocol, boards: Iterable[BoardConfig]
) -> dict[int, BoardConfig]:
    board_map: dict[int, BoardConfig] = {}
    for board in boards:
        if board.address in board_map:
            raise ConfigError(f"board address {board.address} is configured twice")
        if board.address not in protocol.board_range:
            raise ConfigError(
                f"board address {board.address} is outside {protocol.name}'s range "
                f"{protocol.board_range.start}..{protocol.board_range.stop - 1}"
            )
        if not 1 <= board.locks <= protocol.max_locks:
            raise ConfigError(
                f"board {board.address} has {board.locks} locks; "
                f"{protocol.name} boards have 1..{protocol.max_locks}"
            )
        _check_encodable(protocol, board)
        board_map[board.address] = board
    if not board_map:
        raise ConfigError("the cabinet has no boards")
    return board_map


def _check_encodable(protocol: BoardProtocol, board: BoardConfig) -> None:
    """Build the frames once so a value the codec refuses fails now, not at a door."""
    try:
        protocol.query_all(board.address)
        protocol.unlock(board.address, board.locks)
    except protocol_errors.ProtocolError as exc:
        raise ConfigError(f"board {board.address}: {exc}") from exc


def _validate_doors(
    boards: Mapping[int, BoardConfig], doors: Mapping[int, DoorAddress]
) -> dict[DoorAddress, int]:
    by_address: dict[DoorAddress, int] = {}
    for number, address in doors.items():
        if number < 1:
            raise ConfigError(f"door number {number} must be 1 or more")
        board = boards.get(address.board)
        if board is None:
            raise ConfigError(f"door {number} is on board {address.board}, which is not configured")
        if not 1 <= address.lock <= board.locks:
            raise ConfigError(
                f"door {number}: lock {address.lock} is outside board {board.address}'s "
                f"locks 1..{board.locks}"
            )
        if address in by_address:
            raise ConfigError(f"doors {by_address[address]} and {number} are both on {address}")
        by_address[address] = number
    return by_address


def _validate_item_sensors(
    protocol: BoardProtocol, doors: Mapping[int, DoorAddress], item_sensors: Iterable[int]
) -> frozenset[int]:
    sensors = frozenset(item_sensors)
    unknown = sorted(sensors - set(doors))
    if unknown:
        raise ConfigError(f"item_sensor is set on door {unknown[0]}, which is not configured")
    if sensors and not reports_items(protocol):
        raise ConfigError(
            f"item_sensor is set on door {min(sensors)}, but {protocol.name} boards report"
            " no item sensor"
        )
    return sensors
