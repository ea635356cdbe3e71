"""``locker-demo`` as a person runs it: a subprocess, its printed lines, its pages, Ctrl-C.

The scenario must finish well under a minute and print every step; the interactive demo
must print its URLs, answer on them, and stop cleanly (exit 0, no traceback) on SIGINT.
Both run beside the Mosquitto on 127.0.0.1:1883: the demo's broker finds another port.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_LIMIT_S = 60.0
START_LIMIT_S = 60.0

STEPS = (
    "▶ The carrier announces parcels for Alice and Bob through the courier API",
    "▶ The courier signs in at the kiosk with the courier code",
    "▶ The courier deposits Alice's parcel at the kiosk",
    "▶ The courier deposits Bob's parcel at the kiosk",
    "▶ The courier finishes the session",
    "▶ The notification e-mails arrive",
    "▶ The cabinet has both parcels in its allow-list",
    "▶ Alice shows the e-mailed QR to the kiosk camera",
    "▶ A wrong code typed at the kiosk is refused",
    "▶ The cabinet goes offline (network cable pulled)",
    "▶ Bob types the e-mailed code at the offline kiosk",
    "▶ The cabinet comes back; the server records Bob's pickup exactly once",
    "▶ The doors really moved",
    "▶ The audit log verifies",
)


def _demo_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "simulators.demo", *arguments]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def test_scenario_runs_every_step_and_exits_zero() -> None:
    started = time.monotonic()
    finished = subprocess.run(
        _demo_command("--scenario"),
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=SCENARIO_LIMIT_S,
        check=False,
    )
    took = time.monotonic() - started
    assert finished.returncode == 0, finished.stdout + finished.stderr
    lines = finished.stdout.splitlines()
    assert [line for line in lines if line.startswith("▶")] == list(STEPS)
    assert finished.stdout.count("the kiosk journaled deposit") == 2
    assert "Scenario finished: every step happened" in finished.stdout
    assert "Traceback" not in finished.stderr
    assert took < SCENARIO_LIMIT_S


class _Lines:
    """A child's stdout read on a thread, so waiting for a line has a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, marker: str, timeout: float) -> str:
        """Everything printed up to the line containing ``marker``."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if marker in line:
                return "\n".join(self.seen)
        raise AssertionError(f"{marker!r} never printed; got:\n" + "\n".join(self.seen))


@pytest.fixture
def interactive_demo() -> Iterator[tuple[subprocess.Popen[str], _Lines]]:
    process = subprocess.Popen(
        _demo_command(),
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process, _Lines(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _url(banner: str, label: str) -> str:
    found = re.search(rf"^\s*{re.escape(label)}\s+(http://\S+)", banner, re.MULTILINE)
    assert found is not None, f"no {label} URL in the banner:\n{banner}"
    return found.group(1)


def test_interactive_demo_prints_its_urls_serves_them_and_stops_on_ctrl_c(
    interactive_demo: tuple[subprocess.Popen[str], _Lines],
) -> None:
    process, lines = interactive_demo
    banner = lines.until("Press Ctrl-C to stop.", START_LIMIT_S)
    assert "demo-admin-password" in banner
    assert "DEMO2025" in banner
    assert "DEVELOPMENT broker" in banner
    assert "Deposit at a kiosk page" in banner

    console = httpx.get(_url(banner, "Web console") + "sign-in", timeout=10)
    assert console.status_code == 200
    assert "password" in console.text.lower()
    for label in ("Kiosk LOBBY-A", "Kiosk LOBBY-B"):
        kiosk = httpx.get(_url(banner, label), timeout=10)
        assert kiosk.status_code == 200
        assert "<html" in kiosk.text.lower()
    mail = httpx.get(_url(banner, "Mail catcher"), timeout=10)
    assert mail.status_code == 200
    assert "Demo mail catcher" in mail.text

    _deposit_at_the_kiosk_as_the_banner_says(banner)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    lines.until("Stopped.", 5)
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def _deposit_at_the_kiosk_as_the_banner_says(banner: str) -> None:
    """Courier, the printed code, a printed tracking number, Open door: the simulated
    person fills and closes the door, and the recipient's e-mail arrives."""
    tracking, recipient = _announced_parcel(banner)
    with httpx.Client(base_url=_url(banner, "Kiosk LOBBY-B"), timeout=10) as kiosk:
        _post(kiosk, "/courier/key", {"key": "courier"})
        _wait_page(kiosk, "Courier sign-in")
        _post(kiosk, "/courier/text", {"text": "DEMO2025"})
        _wait_page(kiosk, "Scan a parcel")
        _post(kiosk, "/courier/text", {"text": tracking})
        _wait_page(kiosk, f"is ready for parcel {tracking}")
        _post(kiosk, "/courier/key", {"key": "open"})
        _wait_page(kiosk, "the parcel is recorded")
    mail = _url(banner, "Mail catcher")
    _wait_for(lambda: recipient in httpx.get(mail, timeout=10).text, f"an e-mail to {recipient}")


def _post(kiosk: httpx.Client, path: str, form: dict[str, str]) -> None:
    """One input, posted as the page's script does (which gets 204, not a redirect)."""
    assert kiosk.post(path, data=form, headers={"x-kiosk-fetch": "1"}).status_code == 204


def _announced_parcel(banner: str) -> tuple[str, str]:
    found = re.search(r"^\s+(DEMO-\d{4})\s+for (\S+@\S+)", banner, re.MULTILINE)
    assert found is not None, f"no announced parcel in the banner:\n{banner}"
    return found.group(1), found.group(2)


def _wait_page(kiosk: httpx.Client, text: str) -> None:
    _wait_for(lambda: text in kiosk.get("/screen").text, repr(text))


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.1)
