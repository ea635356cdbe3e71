"""``locker-agent``: commissioning commands for the door layer.

Other tools rely on this interface (keep it; additions are fine)::

    locker-agent door open   --port PORT --board B --lock L [--protocol 8a80|kerong] [--baud N]
                             [--polarity normal|inverted] [--confirm-window SECONDS] [--echo]
    locker-agent door status --port PORT --board B [--protocol 8a80|kerong] [--baud N]
                             [--polarity normal|inverted] [--echo] [--locks N] [--json]
    locker-agent run         --config agent.toml [--serial-port URL] [-v]
    locker-agent scan        [--camera DEVICE [--frames N]] [--json] [IMAGE ...]

Exit codes: 0 door seen open (open) / board answered (status); 2 usage error;
3 the board answered the unlock but the door was not seen open (jammed?);
4 no valid answer from the board (or the port cannot be opened).
``run`` serves until SIGTERM/SIGINT and exits 0; 2 for a bad configuration, 4 when the
serial port, the journal or the kiosk's port cannot be opened.
``scan``: 0 read (even when no code was found), 1 unreadable image or camera, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from firmware_protocol.base import BoardProtocol
from locker_agent.boards import BoardClient, BoardReading, DoorState
from locker_agent.cabinet import Cabinet, protocol_named
from locker_agent.doors import ControllerSettings, OpenOutcome, OpenResult
from locker_agent.errors import AgentError, BoardError, ConfigError, TransportError
from locker_agent.layout import BoardConfig, CabinetLayout, DoorAddress, Polarity
from locker_agent.scan import usage as scan_usage
from locker_agent.serial_link import LinkSettings, SerialLink

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_NOT_OPENED: Final = 3
EXIT_NO_ANSWER: Final = 4
#: how long `door open` waits for a first reading of the door before unlocking
FIRST_READ_TIMEOUT: Final = 2.5

_OPEN_EXIT: Final = {
    OpenOutcome.CONFIRMED: EXIT_OK,
    OpenOutcome.JAMMED: EXIT_NOT_OPENED,
    OpenOutcome.OUTCOME_UNKNOWN: EXIT_NO_ANSWER,
    OpenOutcome.RATE_LIMITED: EXIT_NOT_OPENED,
    OpenOutcome.BOARD_UNAVAILABLE: EXIT_NO_ANSWER,
}


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _bus_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="device path, pty or socket://host:port")
    parser.add_argument("--board", required=True, type=int, help="board address (DIP switch)")
    parser.add_argument("--protocol", default="8a80", choices=("8a80", "kerong"))
    parser.add_argument("--baud", type=int, help="default: the protocol's usual rate")
    parser.add_argument(
        "--polarity",
        default=Polarity.NORMAL.value,
        choices=[p.value for p in Polarity],
        help="normal: feedback signal present = door closed",
    )
    parser.add_argument("--echo", action="store_true", help="the adapter echoes what it sends")
    parser.add_argument("-v", "--verbose", action="count", default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locker-agent", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    door = commands.add_parser("door", help="open or read doors on one board")
    actions = door.add_subparsers(dest="action", required=True)
    opener = actions.add_parser("open", help="send ONE unlock and confirm by the door sensor")
    _bus_options(opener)
    opener.add_argument("--lock", required=True, type=int, help="lock number on the board, 1..")
    opener.add_argument("--confirm-window", type=_positive_float, default=3.0, metavar="SECONDS")
    status = actions.add_parser("status", help="read every door of one board")
    _bus_options(status)
    status.add_argument("--json", action="store_true", help='{"board": B, "doors": {...}}')
    status.add_argument(
        "--locks", type=int, help="locks fitted on the board (default: every channel reported)"
    )
    runner = commands.add_parser("run", help="run the cabinet agent (doors, journal, MQTT link)")
    runner.add_argument("--config", required=True, type=Path, help="the provisioned agent.toml")
    runner.add_argument("--serial-port", help="overrides [serial] port (device, pty, socket://)")
    runner.add_argument("-v", "--verbose", action="count", default=0)
    scan_usage.add_parser(commands)
    return parser


def run_agent(args: argparse.Namespace) -> int:
    # imported here: the door commands must keep working without the link's dependencies
    from locker_agent.config import load_settings
    from locker_agent.runtime import AgentRuntime

    runtime = AgentRuntime(load_settings(args.config), serial_port=args.serial_port)
    runtime.run_forever()
    return EXIT_OK


def _checked_protocol(parser: argparse.ArgumentParser, args: argparse.Namespace) -> BoardProtocol:
    protocol = protocol_named(args.protocol)
    if args.board not in protocol.board_range:
        span = protocol.board_range
        parser.error(f"--board must be {span.start}..{span.stop - 1} for {protocol.name}")
    for option in ("lock", "locks"):
        value = getattr(args, option, None)
        if value is not None and not 1 <= value <= protocol.max_locks:
            parser.error(f"--{option} must be 1..{protocol.max_locks} for {protocol.name}")
    if args.baud is not None and args.baud <= 0:
        parser.error("--baud must be positive")
    return protocol


def _link_settings(protocol: BoardProtocol, args: argparse.Namespace) -> LinkSettings:
    return LinkSettings(baudrate=args.baud or protocol.default_baud, echo=args.echo)


def run_open(protocol: BoardProtocol, args: argparse.Namespace) -> int:
    board = BoardConfig(args.board, args.lock, Polarity(args.polarity))
    layout = CabinetLayout.build(protocol, [board], {args.lock: DoorAddress(args.board, args.lock)})
    settings = ControllerSettings(poll_interval=0.1, confirm_window=args.confirm_window)
    with Cabinet(args.port, protocol, layout, _link_settings(protocol, args), settings) as cabinet:
        # Read the door first, so a sensor that already says "open" is reported.
        cabinet.doors.wait_first_poll(FIRST_READ_TIMEOUT)
        result = cabinet.doors.open_door(args.lock)
    print(_describe_open(result, args.confirm_window))
    return _OPEN_EXIT[result.outcome]


def _describe_open(result: OpenResult, window: float) -> str:
    where = f"board {result.address.board} lock {result.address.lock}"
    if result.outcome is OpenOutcome.CONFIRMED and result.already_open:
        return (
            f"{where}: open — but the sensor already said open before the unlock "
            "(check the feedback polarity and wire)"
        )
    if result.outcome is OpenOutcome.CONFIRMED:
        return (
            f"{where}: opened — confirmed by the door sensor after {result.seconds_to_open:.2f} s"
        )
    if result.outcome is OpenOutcome.JAMMED:
        return f"{where}: unlock acknowledged but the door was not seen open within {window} s"
    if result.outcome is OpenOutcome.OUTCOME_UNKNOWN:
        return f"{where}: no valid answer to the unlock; door not seen open (outcome unknown)"
    return f"{where}: refused: {result.detail}"


def run_status(protocol: BoardProtocol, args: argparse.Namespace) -> int:
    polarity = {args.board: Polarity(args.polarity)}
    with SerialLink(args.port, protocol, _link_settings(protocol, args)) as link:
        locks = None if args.locks is None else tuple(range(1, args.locks + 1))
        reading = BoardClient(link, polarity).read_board(args.board, locks)
    if args.json:
        doors = {str(lock): state.value for lock, state in sorted(reading.doors.items())}
        print(json.dumps({"board": args.board, "doors": doors}))
    else:
        print(_describe_status(reading))
    return EXIT_OK


def _describe_status(reading: BoardReading) -> str:
    open_locks = [lock for lock, state in reading.doors.items() if state is DoorState.OPEN]
    listed = f" (open: {', '.join(map(str, open_locks))})" if open_locks else ""
    closed = len(reading.doors) - len(open_locks)
    return (
        f"board {reading.board}: {len(reading.doors)} doors — "
        f"{closed} closed, {len(open_locks)} open{listed}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    levels = {0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(level=levels.get(args.verbose, logging.DEBUG), stream=sys.stderr)
    if args.command == "run":
        return _run_command(args)
    if args.command == "scan":
        scan_usage.check_usage(parser, args)
        # imported here: OpenCV and the decoders load only for this command
        from locker_agent.scan.command import run_scan

        return run_scan(args)
    try:
        protocol = _checked_protocol(parser, args)
        if args.action == "open":
            return run_open(protocol, args)
        return run_status(protocol, args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BoardError, TransportError) as exc:
        print(f"board {args.board}: no valid answer: {exc}")
        return EXIT_NO_ANSWER
    except AgentError as exc:  # pragma: no cover - every AgentError is handled above
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER


def _run_command(args: argparse.Namespace) -> int:
    try:
        return run_agent(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AgentError as exc:  # serial port, journal, broker CA or kiosk port cannot be opened
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
