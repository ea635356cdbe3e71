"""A whole cabinet with a kiosk: the real agent (runtime, desk, journal, door layer, kiosk)
on simulated pty boards, a virtual scanner module on its own pty, and an allow-list
supplied the way the server does it (a full ``sync``, hashed under the cabinet's key)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from locker_agent.config import parse_settings
from locker_agent.kiosk.courier_desk import CourierHooks
from locker_agent.kiosk.machine import Screen
from locker_agent.kiosk.service import KioskService
from locker_contract import AllowListEntry, credential_hash
from simulators.cabinet import CabinetTuning, SimulatedCabinet, with_item_sensors
from simulators.scanner import VirtualScanner
from simulators.timing import Timing
from tests import waiting
from tests.agent_link.conftest import fast_settings
from tests.agent_link.rig import FAST_CONTROL, FAST_LINK, PICKUP_KEY, Signer, agent_document
from tests.contract import messages


def qr_entry(parcel_id: int, door: int, token: str) -> AllowListEntry:
    """An allow-list entry for a parcel collected with the QR ``token``."""
    return AllowListEntry(
        parcel_id=parcel_id,
        door=door,
        code_hash=None,
        qr_hash=credential_hash(PICKUP_KEY, "qr", token),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


@dataclass
class KioskCabinet:
    cabinet: SimulatedCabinet
    scanner: VirtualScanner

    @property
    def kiosk(self) -> KioskService:
        kiosk = self.cabinet.runtime.kiosk
        assert kiosk is not None
        return kiosk

    def supply(self, *entries: AllowListEntry) -> None:
        """The server's full allow-list, as the runtime applies a ``sync``."""
        body = messages.allow_list_sync(version=1, entries=list(entries)).body
        assert self.cabinet.runtime.allow_list.apply(body)

    def journaled(self, event_type: str) -> list[Any]:
        return [e for e in self.cabinet.runtime.journal.pending() if e.type == event_type]

    def wait_screen(self, predicate: Callable[[Screen], object], timeout: float = 5.0) -> Screen:
        def shown() -> Screen | None:
            screen = self.kiosk.screen()[1]
            return screen if predicate(screen) else None

        screen = waiting.wait_until(shown, timeout)
        assert screen is not None, f"screen never matched; last: {self.kiosk.screen()[1]}"
        return screen


KioskCabinetFactory = Callable[..., KioskCabinet]


@pytest.fixture
def make_kiosk_cabinet(tmp_path: Path) -> Iterator[KioskCabinetFactory]:
    """``make_kiosk_cabinet(**kiosk_section)`` → a started cabinet with a kiosk and scanner
    (``scanner_port=`` points ``[scanner]`` elsewhere than the virtual module; ``courier=``
    gives the kiosk a courier desk; ``item_sensors=`` makes it a Kerong cabinet with an
    item sensor wired behind those doors)."""
    started: list[KioskCabinet] = []

    def _make(
        *,
        scanner_port: str | None = None,
        courier: CourierHooks | None = None,
        item_sensors: Sequence[int] = (),
        **kiosk: Any,
    ) -> KioskCabinet:
        cabinet_id = f"K-{uuid.uuid4().hex[:12]}"
        scanner = VirtualScanner()
        document = agent_document(cabinet_id, tmp_path / "journal.sqlite3", Signer("x").public_key)
        document["kiosk"] = {"port": 0, **kiosk}
        document["scanner"] = {"port": scanner_port or scanner.port}
        settings = parse_settings(document)
        if item_sensors:
            document["serial"]["protocol"] = "kerong"
            settings = with_item_sensors(parse_settings(document), item_sensors)
        tuning = CabinetTuning(
            timing=Timing.fast(),
            link=FAST_LINK,
            controller=FAST_CONTROL,
            mqtt=fast_settings(cabinet_id),
            courier=courier,
        )
        rig = KioskCabinet(SimulatedCabinet(settings, tuning), scanner)
        started.append(rig)
        rig.cabinet.start()
        return rig

    yield _make
    for rig in started:
        rig.cabinet.stop()
        rig.scanner.close()
