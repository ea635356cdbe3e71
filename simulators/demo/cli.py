"""``locker-demo [--scenario] [--data-dir DIR]``: run the demo system, or the story on it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Final

import httpx

from simulators.demo.hands import DWELL_SECONDS
from simulators.demo.scenario import Announced, Api, Story, StoryFailed, parcels_to_deposit
from simulators.demo.seed import ACCOUNTS, COURIER_CODE, COURIER_NAME, RECIPIENTS
from simulators.demo.system import DemoOptions, DemoSystem

#: the parcels the interactive demo keeps announced for a person to deposit at a kiosk
PARCELS_TO_DEPOSIT: Final = (("carol@example.org", "S"), ("alice@example.org", "M"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locker-demo",
        description="The whole parcel-locker system on this machine: server, development "
        "broker, mail catcher and two simulated cabinets with kiosk pages.",
    )
    parser.add_argument(
        "--scenario",
        action="store_true",
        help="run the scripted story (deposits, pickups by QR and code, a wrong code, an "
        "offline pickup, audit verification) and exit: 0 only if every step happened",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the database, keys and journals here (default: a temporary directory, "
        "removed on exit)",
    )
    parser.add_argument("--verbose", action="store_true", help="log the parts' INFO lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stopping = _stop_on_signals()
    if args.scenario:
        return _run_scenario(args.data_dir)
    return _run_interactive(args.data_dir, stopping)


def _stop_on_signals() -> threading.Event:
    """Ctrl-C and SIGTERM ask for a clean stop instead of raising in the main thread."""
    stopping = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    return stopping


def _run_interactive(data_dir: Path | None, stopping: threading.Event) -> int:
    options = DemoOptions(data_dir=data_dir, preferred_ports=True, person_at_doors=True)
    system = DemoSystem(options)
    try:
        system.start()
        parcels = _announce_parcels(system)
    except Exception as exc:
        print(f"locker-demo: could not start: {exc}", file=sys.stderr)
        system.stop()
        return 1
    try:
        print(banner(system, parcels), flush=True)
        stopping.wait()
        print("Stopping...", flush=True)
    finally:
        system.stop()
    print("Stopped.", flush=True)
    return 0


def _announce_parcels(system: DemoSystem) -> list[Announced]:
    """Parcels announced through the courier API, for a person to deposit at a kiosk."""
    api = Api(system, httpx.Client(base_url=system.api_url, timeout=10))
    try:
        return parcels_to_deposit(api, system.data, PARCELS_TO_DEPOSIT)
    finally:
        api.close()


def _run_scenario(data_dir: Path | None) -> int:
    started = time.monotonic()
    system = DemoSystem(DemoOptions(data_dir=data_dir, preferred_ports=False))
    try:
        system.start()
    except Exception as exc:
        print(f"locker-demo: could not start: {exc}", file=sys.stderr)
        return 1
    try:
        _say(f"The system is up: API {system.api_url}, cabinets {', '.join(system.cabinets)}.")
        Story(system, say=_say).run()
    except StoryFailed as failure:
        print(f"FAILED: {failure.step}: {failure.reason}", file=sys.stderr, flush=True)
        return 1
    finally:
        system.stop()
    _say(f"Scenario finished: every step happened ({time.monotonic() - started:.1f} s).")
    return 0


def _say(text: str) -> None:
    print(text, flush=True)


def banner(system: DemoSystem, parcels: list[Announced]) -> str:
    api = system.api_url
    lines = [
        "",
        "Parcel lockers demo: everything runs on this machine.",
        "",
        f"  Web console      {api}/",
        f"  API docs         {api}/docs",
    ]
    for code, cabinet in system.cabinets.items():
        lines.append(f"  Kiosk {code:<10} {cabinet.kiosk_url}")
    lines += [
        f"  Mail catcher     {system.mail.url}   (the notification e-mails, with their QR)",
        "",
        "  Demo accounts (console and API):",
        *(f"    {a.role.value:<9} {a.username} / {a.password}" for a in ACCOUNTS),
        f"  Courier {COURIER_NAME}: courier code {COURIER_CODE}",
        "  Recipients: " + ", ".join(f"{name} <{email}>" for name, email in RECIPIENTS),
        "",
        f"  Broker: the embedded DEVELOPMENT broker (amqtt) on 127.0.0.1:{system.broker_port}"
        " - anonymous, no TLS, no ACLs; production uses Mosquitto (docs/link.md).",
        f"  Data: {system.data_dir}",
        "",
        *_how_to_deposit(parcels),
        "  Pick up: type the e-mailed code on the kiosk page.",
        f"  A simulated person at the cabinets fills or empties each door that opens and"
        f" closes it {DWELL_SECONDS:.0f} s later.",
        "  Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _how_to_deposit(parcels: list[Announced]) -> list[str]:
    lines = [
        f"  Deposit at a kiosk page: press Courier, type the courier code {COURIER_CODE},"
        " type one of these",
        "  tracking numbers and press Open door; once the door closes, the recipient is e-mailed:",
    ]
    lines += [f"    {p.tracking_number}  for {p.recipient} (size {p.size})" for p in parcels]
    return [*lines, "  (announce more as the courier in the API docs: POST /api/v1/parcels)"]
