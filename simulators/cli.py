"""``locker-sim``: serve simulated lock-control boards until SIGINT/SIGTERM.

::

    locker-sim board --protocol 8a80 --boards 1 2 --locks 24            # raw pty
    locker-sim board --protocol kerong --boards 0 1 --locks 16 --tcp    # socket://…
    locker-sim board --protocol 8a80 --boards 1 --link /tmp/locker-bus --no-pacing
    locker-sim board --boards 1 --unlock-reply-delay 0.05 --query-reply-delay 0.002 \\
                     --pulse 0.04 --spring-delay 0.02                   # fast boards

    locker-sim fleet --port 8883 --ca-file ca.crt --passwords pw.json --count 1000

Board timing flags, in seconds, default the realistic ``Timing`` values:
``--unlock-reply-delay`` an 8A/80 board's answer to an unlock, ``--query-reply-delay``
every other answer (a Kerong board's unlock too), ``--pulse`` how long the latch stays
released, ``--spring-delay`` how long a released door takes to spring open.

The first stdout line is the device path (or socket URL) to give the agent. After it,
every door move is printed (``door 1/5 open``), and these commands are read from stdin::

    open B L | close B L | jam B L | unjam B L | slow B L SECONDS | item B L | noitem B L
    push B [L]                 board B sends an unsolicited frame
    fault B NAME VALUE         e.g. ``fault 2 offline on``, ``fault 1 reply_delay 0.8``
    echo on|off                adapter echo on the whole bus
    doors                      print every open door

``locker-sim fleet`` connects many lightweight simulated cabinets (:mod:`simulators.fleet`)
and reads these commands from stdin, answering each with one line::

    wait online|acked SECONDS  "online ok 1.234" once all are online (or all events acked),
                               "online timeout 1.234" otherwise
    emit N [TYPE ...]          journal N events per cabinet (types cycle; default
                               door.opened door.closed) and publish them: "emitted TOTAL"
    stats                      one JSON line: counters and every cabinet's connection number
    drop ID ...                cut these cabinets' connections without DISCONNECT: "dropped N"

With ``--kiosks`` every cabinet also has the agent's kiosk (pickup by code or QR against
the allow-list the server syncs; ``--pickup-keys`` gives each cabinet's key, otherwise a
key derived from its id), and three more commands answer with what the kiosk shows::

    type ID CODE               keys typed on cabinet ID's keypad: "doors", "refused", …
    scan ID TEXT               a text held up to its reader (a pickup QR's payload)
    close ID DOOR              a person shuts that door: the kiosk's screen after it
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from locker_contract import ContractError, trusted_keys
from simulators.board import BoardConfig, DoorChange, SimulatedDoor
from simulators.bus import SimulatedBus
from simulators.errors import SimulatorError
from simulators.faults import BoardFaults
from simulators.fleet import Fleet, FleetSettings, cabinet_ids
from simulators.timing import Timing

logger = logging.getLogger(__name__)

_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="locker-sim", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    board = commands.add_parser("board", help="serve a bus of simulated lock-control boards")
    board.add_argument("--protocol", choices=("8a80", "kerong"), default="8a80")
    board.add_argument("--boards", type=int, nargs="+", default=[1], metavar="ADDRESS")
    board.add_argument("--locks", type=int, default=None, help="locks per board")
    board.add_argument("--tcp", type=int, nargs="?", const=0, default=None, metavar="PORT")
    board.add_argument("--baud", type=int, default=None, help="pacing rate (protocol default)")
    board.add_argument("--no-pacing", action="store_true", help="send replies in one go")
    board.add_argument("--link", default=None, help="also make this symlink to the pty")
    board.add_argument("--verbose", "-v", action="store_true", help="debug logs to stderr")
    _add_timing_flags(board)
    _add_fleet_parser(commands)
    return parser


def _add_timing_flags(board: argparse.ArgumentParser) -> None:
    """Board timing; the defaults are the realistic ``Timing`` values."""
    real = Timing()
    for flag, default, meaning in (
        ("--unlock-reply-delay", real.unlock_reply_delay, "8A/80 answer to an unlock"),
        ("--query-reply-delay", real.query_reply_delay, "every other answer"),
        ("--pulse", real.pulse_duration, "latch released this long"),
        ("--spring-delay", real.spring_delay, "released door springs open after"),
    ):
        help_text = f"{meaning} (s, default {default})"
        board.add_argument(flag, type=_seconds, default=default, metavar="S", help=help_text)


def _seconds(text: str) -> float:
    """A delay for argparse: a finite number of seconds, zero or more."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a delay in seconds (0 or more)")
    return value


def _add_fleet_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = commands.add_parser("fleet", help="connect many simulated cabinets to a broker")
    fleet.add_argument("--host", default="127.0.0.1")
    fleet.add_argument("--port", type=int, default=1883)
    fleet.add_argument("--count", type=int, default=1000, help="cabinets (without --passwords)")
    fleet.add_argument("--prefix", default="SIM-", help="cabinet id prefix (without --passwords)")
    fleet.add_argument(
        "--passwords", type=Path, help="JSON file {cabinet id: password}; its ids are the fleet"
    )
    fleet.add_argument("--ca-file", type=Path, help="broker CA: connect with TLS")
    fleet.add_argument(
        "--trusted-key", action="append", default=[], help="base64 Ed25519 command key"
    )
    fleet.add_argument("--doors", type=int, default=12, help="doors per cabinet")
    fleet.add_argument("--threads", type=int, default=4, help="network loop threads")
    fleet.add_argument("--batch-size", type=int, default=100, help="events per evt message")
    fleet.add_argument("--resend-after", type=float, default=10.0, help="seconds before re-publish")
    fleet.add_argument(
        "--kiosks", action="store_true", help="give every cabinet the agent's pickup kiosk"
    )
    fleet.add_argument(
        "--pickup-keys", type=Path, help="JSON file {cabinet id: hex pickup key} (with --kiosks)"
    )
    fleet.add_argument("--verbose", "-v", action="store_true", help="debug logs to stderr")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if args.command == "fleet":
        return _run_fleet(args)
    try:
        bus = SimulatedBus(
            args.protocol,
            [BoardConfig(address, args.locks) for address in args.boards],
            board_timing(args),
        )
    except SimulatorError as exc:
        print(f"locker-sim: {exc}", file=sys.stderr)
        return 2
    return _serve(bus, tcp_port=args.tcp, link=args.link)


def board_timing(args: argparse.Namespace) -> Timing:
    """The simulated boards' timing from the ``board`` flags."""
    return Timing(
        unlock_reply_delay=args.unlock_reply_delay,
        query_reply_delay=args.query_reply_delay,
        pulse_duration=args.pulse,
        spring_delay=args.spring_delay,
        baud=args.baud,
        pacing=not args.no_pacing,
    )


def _serve(bus: SimulatedBus, *, tcp_port: int | None, link: str | None) -> int:
    stop = threading.Event()
    _on_signals(lambda: stop.set())
    with bus:
        try:
            address = bus.start_pty() if tcp_port is None else bus.start_tcp(tcp_port)
        except SimulatorError as exc:
            print(f"locker-sim: {exc}", file=sys.stderr)
            return 1
        with _symlink(address if tcp_port is None else None, link):
            print(address, flush=True)  # only once the link exists too
            bus.subscribe(_print_change)
            threading.Thread(target=_read_commands, args=(bus,), daemon=True).start()
            while not stop.wait(0.5):
                pass
    return 0


def _on_signals(handler: Callable[[], None]) -> None:
    def _handle(signum: int, frame: FrameType | None) -> None:
        handler()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)


@contextlib.contextmanager
def _symlink(target: str | None, link: str | None) -> Iterator[None]:
    if target is None or link is None:
        yield
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    os.symlink(target, link)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)


def _print_change(change: DoorChange) -> None:
    print(f"door {change.board}/{change.lock} {'open' if change.is_open else 'closed'}", flush=True)


# ------------------------------------------------------------------ stdin commands
Command = Callable[[SimulatedBus, list[str]], str | None]


def _read_commands(bus: SimulatedBus) -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            answer = _run(bus, words)
        except (SimulatorError, ValueError, IndexError) as exc:
            answer = f"error: {exc}"
        if answer:
            print(answer, flush=True)


def _run(bus: SimulatedBus, words: list[str]) -> str | None:
    command = _COMMANDS.get(words[0])
    if command is None:
        return f"error: unknown command {words[0]!r}; try: {', '.join(sorted(_COMMANDS))}"
    return command(bus, words[1:])


def _door_command(action: Callable[..., None]) -> Command:
    """A command taking ``B L`` and calling ``action(door, *rest)``."""

    def run(bus: SimulatedBus, args: list[str]) -> str | None:
        door = bus.board(int(args[0])).door(int(args[1]))
        action(door, *args[2:])
        return None

    return run


def _set_door_fault(name: str, value: object) -> Callable[..., None]:
    return lambda door: setattr(door.faults, name, value)


def _slow(door: SimulatedDoor, seconds: str) -> None:
    door.faults.slow_open = float(seconds)


def _push(bus: SimulatedBus, args: list[str]) -> str | None:
    lock = int(args[1]) if len(args) > 1 else 1
    bus.board(int(args[0])).send_unsolicited(lock)
    return None


def _fault(bus: SimulatedBus, args: list[str]) -> str:
    board, name, raw = bus.board(int(args[0])), args[1], args[2]
    fields = {f.name: str(f.type) for f in dataclasses.fields(BoardFaults)}
    if name not in fields:
        raise ValueError(f"no board fault {name!r}; known: {', '.join(sorted(fields))}")
    setattr(board.faults, name, parse_value(raw, fields[name]))
    return f"board {board.address}: {name} = {getattr(board.faults, name)!r}"


def _echo(bus: SimulatedBus, args: list[str]) -> str:
    bus.faults.echo = parse_value(args[0], "bool") is True
    return f"bus: echo = {bus.faults.echo}"


def _doors(bus: SimulatedBus, args: list[str]) -> str:
    opened = [f"{d.board}/{d.lock}" for b in bus.boards for d in b.doors if d.is_open]
    return "open doors: " + (" ".join(opened) or "none")


def parse_value(raw: str, type_name: str) -> bool | int | float | None:
    """Parse ``raw`` for a fault field whose annotation reads ``type_name``."""
    text = raw.lower()
    if "None" in type_name and text in {"none", "off"}:
        return None
    if type_name == "bool":
        if text not in _TRUE | _FALSE:
            raise ValueError(f"{raw!r} is not on/off")
        return text in _TRUE
    if type_name == "int":
        return int(raw)
    return float(raw)


_COMMANDS: dict[str, Command] = {
    "open": _door_command(lambda door: door.force_open()),
    "close": _door_command(lambda door: door.close()),
    "jam": _door_command(_set_door_fault("jammed", True)),
    "unjam": _door_command(_set_door_fault("jammed", False)),
    "slow": _door_command(_slow),
    "item": _door_command(lambda door: door.put_item()),
    "noitem": _door_command(lambda door: door.remove_item()),
    "push": _push,
    "fault": _fault,
    "echo": _echo,
    "doors": _doors,
}


# ------------------------------------------------------------------ fleet
def _run_fleet(args: argparse.Namespace) -> int:
    try:
        settings = _fleet_settings(args)
    except (SimulatorError, ContractError, OSError, ValueError) as exc:
        print(f"locker-sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    _on_signals(lambda: stop.set())
    with Fleet(settings) as fleet:
        print(f"fleet {len(settings.cabinet_ids)} cabinets -> {args.host}:{args.port}", flush=True)
        threading.Thread(target=_read_fleet_commands, args=(fleet, stop), daemon=True).start()
        while not stop.wait(0.5):
            pass
    return 0


def _fleet_settings(args: argparse.Namespace) -> FleetSettings:
    passwords: dict[str, str] = {}
    if args.passwords is not None:
        passwords = {str(k): str(v) for k, v in json.loads(args.passwords.read_text()).items()}
    ids = tuple(sorted(passwords)) if passwords else cabinet_ids(args.prefix, args.count)
    return FleetSettings(
        host=args.host,
        port=args.port,
        cabinet_ids=ids,
        doors=args.doors,
        passwords=passwords,
        ca_file=args.ca_file,
        trusted_keys=trusted_keys(args.trusted_key),
        loop_threads=args.threads,
        batch_size=args.batch_size,
        resend_after=args.resend_after,
        kiosks=args.kiosks,
        pickup_keys=_pickup_keys(args.pickup_keys),
    )


def _pickup_keys(path: Path | None) -> dict[str, bytes]:
    if path is None:
        return {}
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object {{cabinet id: hex key}}")
    keys = {str(cabinet_id): bytes.fromhex(str(key)) for cabinet_id, key in document.items()}
    for cabinet_id, key in keys.items():
        if len(key) != 32:
            raise ValueError(f"{path}: the pickup key of {cabinet_id} is not 32 bytes")
    return keys


def _read_fleet_commands(fleet: Fleet, stop: threading.Event) -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            answer = _fleet_command(fleet, words)
        except (SimulatorError, ValueError, IndexError, KeyError) as exc:
            answer = f"error: {exc}"
        print(answer, flush=True)
    stop.set()  # stdin closed: the driver is gone


def _fleet_command(fleet: Fleet, words: list[str]) -> str:
    name, args = words[0], words[1:]
    if name == "wait":
        return _fleet_wait(fleet, args[0], float(args[1]))
    if name == "emit":
        kinds = args[1:] or ["door.opened", "door.closed"]
        fleet.emit_events(int(args[0]), kinds)
        return f"emitted {fleet.counters.events_journaled}"
    if name == "stats":
        return json.dumps(dataclasses.asdict(fleet.snapshot()))
    if name == "drop":
        for cabinet_id in args:
            fleet.on_loop(cabinet_id, lambda cabinet: cabinet.drop_connection())
        return f"dropped {len(args)}"
    if name in _KIOSK_COMMANDS:
        return _KIOSK_COMMANDS[name](fleet, args[0], args[1])
    return f"error: unknown command {name!r}; try: wait, emit, stats, drop, type, scan, close"


def _close(fleet: Fleet, cabinet_id: str, door: str) -> str:
    fleet.close_door(cabinet_id, int(door))
    return fleet.kiosk_screen(cabinet_id)


_KIOSK_COMMANDS: dict[str, Callable[[Fleet, str, str], str]] = {
    "type": Fleet.type_code,
    "scan": Fleet.scan,
    "close": _close,
}


def _fleet_wait(fleet: Fleet, what: str, timeout: float) -> str:
    started = time.monotonic()
    if what == "online":
        done = fleet.wait_online(timeout)
    elif what == "acked":
        done = fleet.wait_acked(timeout)
    else:
        raise ValueError(f"wait for 'online' or 'acked', not {what!r}")
    return f"{what} {'ok' if done else 'timeout'} {time.monotonic() - started:.3f}"


if __name__ == "__main__":
    sys.exit(main())
