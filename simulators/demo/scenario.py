"""``locker-demo --scenario``: a scripted story on the running demo system, every step checked.

The story, at cabinet LOBBY-A: the carrier announces parcels for Alice and Bob through
the courier API; the courier signs in on the kiosk page with the courier code, types each
tracking number, the reserved door opens on the simulated board, the parcel goes in and
the door is closed, the kiosk journals the deposit and the server records it; their
notification e-mails arrive at the mail catcher, where the story reads the code and
decodes the QR image with the kiosk's own decoder chain; Alice holds the QR up to the
kiosk's camera and her door opens; a wrong code typed on the kiosk page is refused; the
cabinet's network cable is pulled, Bob types his code on the kiosk page, his door opens
offline; the cable goes back and the server records Bob's pickup exactly once; the doors
moved on the simulated boards and the server saw them move; the audit log verifies.

Each step says what it does as it starts and what it saw when it ends; a step that did
not happen raises :class:`StoryFailed` naming it. People act through the same surfaces
a person would use: the API over HTTP, the kiosk page over HTTP (as its browser posts
keys), the camera's picture, and the simulated doors (opened only by the boards' unlock
pulses; closed, filled and emptied by hand).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final, TypeVar

import cv2
import httpx
import numpy as np

from locker_agent.boards import DoorState
from locker_agent.kiosk.courier import CourierKey, CourierState, Deposited, Stage
from locker_agent.kiosk.courier import DoorStatus as CourierDoorStatus
from locker_agent.kiosk.machine import DoorStatus, Phase, Refusal, Screen
from locker_agent.kiosk.service import KioskService
from locker_agent.pickup.store import JournalAllowListStore
from locker_agent.scan.decoders import default_chain
from locker_contract.pickup_qr import parse_pickup_qr
from locker_server.auth.roles import Role
from simulators.demo.mailcatcher import body_text, qr_image
from simulators.demo.seed import COURIER_CODE, DemoData
from simulators.demo.system import DemoSystem

T = TypeVar("T")

CABINET: Final = "LOBBY-A"
ALICE: Final = "alice@example.org"
BOB: Final = "bob@example.org"
#: how long any one thing may take to happen (the mail worker polls every 5 s)
PATIENCE: Final = 15.0
#: the demo's tracking numbers: DEMO-0001, DEMO-0002, …
TRACKING_PREFIX: Final = "DEMO-"
_CODE_LINE: Final = re.compile(r"Pickup code:\s+(\d{6,12})\b")


class StoryFailed(Exception):
    """A step of the story did not happen."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class _NotSo(Exception):
    """Raised inside a step; the step turns it into :class:`StoryFailed` with its name."""


@dataclass(frozen=True)
class Announced:
    """A parcel the carrier announced, waiting for the courier."""

    recipient: str
    parcel_id: int
    tracking_number: str
    size: str


@dataclass(frozen=True)
class Delivery:
    recipient: str
    parcel_id: int
    door: int


@dataclass(frozen=True)
class Notice:
    """What the recipient's e-mail gave them."""

    code: str
    qr_text: str


def wait_until(condition: Callable[[], T | None], what: str, timeout: float = PATIENCE) -> T:
    """The first truthy value of ``condition``, checked every 50 ms; else the step fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _NotSo(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise _NotSo(what)


class Api:
    """The server's REST API over HTTP, signed in as one of the demo accounts per call."""

    def __init__(self, system: DemoSystem, client: httpx.Client) -> None:
        self._system = system
        self._client = client
        self._tokens: dict[Role, str] = {}

    def call(self, role: Role, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token(role)}"}
        response = self._client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        if response.is_error:
            raise _NotSo(f"{method} {path} as {role.value}: {response.status_code} {response.text}")
        return response.json()

    def close(self) -> None:
        self._client.close()

    def _token(self, role: Role) -> str:
        if role not in self._tokens:
            account = self._system.data.account(role)
            form = {"username": account.username, "password": account.password}
            response = self._client.post("/api/v1/auth/token", data=form)
            if response.is_error:
                raise _NotSo(f"{account.username} cannot sign in: {response.status_code}")
            self._tokens[role] = str(response.json()["access_token"])
        return self._tokens[role]


class Story:
    """Runs the steps in order on a started :class:`DemoSystem`."""

    def __init__(self, system: DemoSystem, *, say: Callable[[str], None]) -> None:
        self.system = system
        self.cabinet = system.cabinets[CABINET]
        self.say = say
        self._kiosk_page = httpx.Client(base_url=self.cabinet.kiosk_url, timeout=10)
        self.api = Api(system, httpx.Client(base_url=system.api_url, timeout=10))

    def step(self, name: str, action: Callable[[], T]) -> T:
        self.say(f"▶ {name}")
        try:
            return action()
        except _NotSo as exc:
            raise StoryFailed(name, str(exc)) from exc
        except Exception as exc:
            raise StoryFailed(name, f"{type(exc).__name__}: {exc}") from exc

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._kiosk_page.close()
            self.api.close()

    def _run(self) -> None:
        parcels = self.step(
            "The carrier announces parcels for Alice and Bob through the courier API",
            self.announce_parcels,
        )
        self.step("The courier signs in at the kiosk with the courier code", self.courier_signs_in)
        alice = self.step(
            "The courier deposits Alice's parcel at the kiosk",
            lambda: self.deposit_at_kiosk(parcels[ALICE], deposits_before=0),
        )
        bob = self.step(
            "The courier deposits Bob's parcel at the kiosk",
            lambda: self.deposit_at_kiosk(parcels[BOB], deposits_before=1),
        )
        self.step("The courier finishes the session", self.courier_finishes)
        notices = self.step("The notification e-mails arrive", lambda: self.read_emails())
        self.step("The cabinet has both parcels in its allow-list", lambda: self.wait_allow_list())
        self.step(
            "Alice shows the e-mailed QR to the kiosk camera",
            lambda: self.pick_up_by_qr(alice, notices[ALICE]),
        )
        self.step("A wrong code typed at the kiosk is refused", lambda: self.wrong_code(notices))
        self.step("The cabinet goes offline (network cable pulled)", self.go_offline)
        self.step(
            "Bob types the e-mailed code at the offline kiosk",
            lambda: self.pick_up_offline_by_code(bob, notices[BOB]),
        )
        self.step(
            "The cabinet comes back; the server records Bob's pickup exactly once",
            lambda: self.come_back(bob),
        )
        self.step("The doors really moved", lambda: self.doors_moved([alice, bob]))
        self.step("The audit log verifies", self.audit_verifies)

    # -- the courier at the kiosk ---------------------------------------------------------

    def announce_parcels(self) -> dict[str, Announced]:
        announced = {
            ALICE: announce_parcel(self.api, self.system.data, ALICE, size="S"),
            BOB: announce_parcel(self.api, self.system.data, BOB, size="M"),
        }
        for parcel in announced.values():
            self.say(
                f"  parcel #{parcel.parcel_id} {parcel.tracking_number} ({parcel.size}) "
                f"for {parcel.recipient}: announced"
            )
        return announced

    def courier_signs_in(self) -> None:
        self._wait_screen(lambda s: s.phase is Phase.HOME and s.courier_entry, "the courier key")
        self._courier_post("key", CourierKey.COURIER.value)
        self._wait_courier(lambda c: c.stage is Stage.SIGN_IN, "the courier sign-in screen")
        self._courier_post("text", COURIER_CODE)
        signed_in = self._wait_courier(lambda c: c.stage is Stage.SCAN, "the courier's scan screen")
        self.say(
            f"  the kiosk greets {signed_in.courier_name} of {signed_in.carrier_name} "
            "(the server checked the code over the link)"
        )

    def deposit_at_kiosk(self, parcel: Announced, *, deposits_before: int) -> Delivery:
        pulses_before = self._unlock_pulses()
        self._courier_post("text", parcel.tracking_number)  # typed, as a wedge scanner does
        door = self._door_ready(parcel)
        check(self._unlock_pulses() == pulses_before, "a door opened before 'Open door'")
        self._courier_post("key", CourierKey.OPEN.value)
        simulated = self.cabinet.simulated.door(door)
        wait_until(lambda: simulated.is_open, f"door {door} opening on the board")
        self._wait_courier(
            lambda c: c.door is not None and c.door.status is CourierDoorStatus.OPEN,
            f"'put the parcel in door {door}' on the kiosk",
        )
        simulated.put_item()
        simulated.close()
        recorded = Deposited(door, parcel.parcel_id)
        self._wait_courier(
            lambda c: (
                c.stage is Stage.SCAN
                and c.last_deposit == recorded
                and c.deposits == deposits_before + 1
            ),
            f"'door {door}: the parcel is recorded' on the kiosk",
        )
        self._server_has_deposit(parcel, door)
        return Delivery(parcel.recipient, parcel.parcel_id, door)

    def _door_ready(self, parcel: Announced) -> int:
        def reserved(c: CourierState) -> bool:
            held = c.reservation
            ready = c.stage is Stage.CONFIRM and held is not None
            return ready and held is not None and held.parcel_id == parcel.parcel_id

        screen = self._wait_courier(reserved, f"'door N is ready for {parcel.tracking_number}'")
        assert screen.reservation is not None
        door = screen.reservation.door
        on_server = self._parcel_by_id(parcel.parcel_id)
        check(
            on_server["state"] == "reserved"
            and on_server["cabinet_id"] == self.cabinet.db_id
            and on_server["door_number"] == door,
            f"the server has the parcel {on_server['state']} at door {on_server['door_number']}",
        )
        self.say(f"  the kiosk says door {door} ({screen.reservation.size}) is ready; reserved")
        return door

    def _server_has_deposit(self, parcel: Announced, door: int) -> None:
        desk = self.cabinet.runtime.courier_desk
        event_id = wait_until(
            lambda: desk.deposit_event_id(parcel.parcel_id), "the deposit in the journal"
        )
        wait_until(
            lambda: self._parcel_by_id(parcel.parcel_id)["state"] in ("deposited", "notified"),
            "the server recording the deposit",
        )
        history = self.api.call(Role.operator, "GET", f"/parcels/{parcel.parcel_id}/history")
        moves = [move for move in history if move["to_state"] == "deposited"]
        check(len(moves) == 1, f"{len(moves)} deposits recorded")
        check(moves[0]["actor_type"] == "cabinet", f"deposited by {moves[0]['actor_type']}")
        self.say(
            f"  door {door} opened and closed with the parcel inside; the kiosk journaled "
            f"deposit {event_id[:8]}…; the server has parcel #{parcel.parcel_id} deposited "
            f"(reported by cabinet {moves[0]['actor_id']})"
        )

    def courier_finishes(self) -> None:
        self._courier_post("key", CourierKey.FINISH.value)
        self._wait_screen(lambda s: s.phase is Phase.HOME, "the home screen again")
        self.say("  the kiosk is back on its home screen")

    def _wait_courier(self, shown: Callable[[CourierState], bool], what: str) -> CourierState:
        screen = self._wait_screen(lambda s: s.courier is not None and shown(s.courier), what)
        assert screen.courier is not None
        return screen.courier

    def _courier_post(self, field: str, value: str) -> None:
        """One courier input on the kiosk page, posted as its form does."""
        response = self._kiosk_page.post(f"/courier/{field}", data={field: value})
        if response.is_error:
            raise _NotSo(f"the kiosk page refused courier {field}: {response.status_code}")

    # -- the e-mails ----------------------------------------------------------------------

    def read_emails(self) -> dict[str, Notice]:
        notices = {address: self._notice(address) for address in (ALICE, BOB)}
        for address, notice in notices.items():
            self.say(f"  e-mail to {address}: code ••••{notice.code[-4:]}, QR read from its image")
        return notices

    def _notice(self, address: str) -> Notice:
        def to_recipient(message: EmailMessage) -> bool:
            return address in str(message.get("To", "")) and "Pickup code" in body_text(message)

        message = self.system.mail.wait_for(to_recipient, PATIENCE)
        if message is None:
            raise _NotSo(f"no pickup e-mail to {address} within {PATIENCE:.0f} s")
        found = _CODE_LINE.search(body_text(message))
        check(found is not None, f"the e-mail to {address} has no pickup code")
        assert found is not None
        return Notice(code=found.group(1), qr_text=decode_qr_png(qr_image(message), address))

    def wait_allow_list(self) -> None:
        store = JournalAllowListStore(self.cabinet.runtime.journal)

        def both_listed() -> bool:
            return len({entry.parcel_id for entry in store.entries()}) >= 2

        wait_until(both_listed, "the server's allow-list sync reaching the cabinet")
        self.say(f"  {CABINET} can check both parcels' codes on its own")

    # -- pickups at the kiosk -------------------------------------------------------------

    def pick_up_by_qr(self, delivery: Delivery, notice: Notice) -> None:
        self.cabinet.camera.show(notice.qr_text)
        self._door_opens_and_is_emptied(delivery)
        self.cabinet.camera.show(None)  # the phone goes back into the pocket
        wait_until(lambda: self._parcel(delivery)["state"] == "picked_up", "server: picked up")
        self.say(f"  the server recorded parcel #{delivery.parcel_id} as picked up")

    def wrong_code(self, notices: dict[str, Notice]) -> None:
        pulses_before = self._unlock_pulses()
        real = {notice.code for notice in notices.values()}
        wrong = next(c for c in ("13572468", "24681357", "11223344") if c not in real)
        self._type_at_kiosk(wrong)
        screen = self._wait_screen(lambda s: s.phase is Phase.REFUSED, "a refusal on screen")
        check(screen.refusal is Refusal.WRONG_CODE, f"the refusal was {screen.refusal}")
        check(self._unlock_pulses() == pulses_before, "a door got an unlock pulse")
        self.say(
            f"  the kiosk says 'wrong code' ({screen.attempts_left} tries left); no door moved"
        )
        self._press("cancel")
        self._wait_screen(lambda s: s.phase is Phase.HOME, "the home screen again")

    def go_offline(self) -> None:
        self.cabinet.cable.unplug()
        wait_until(lambda: not self.cabinet.runtime.link.connected, "the agent noticing")
        cabinet_id = self.cabinet.db_id
        wait_until(
            lambda: not self.api.call(Role.operator, "GET", f"/cabinets/{cabinet_id}")["online"],
            "the server seeing the cabinet offline",
        )
        self._wait_screen(lambda s: not s.link_up, "the kiosk's offline notice")
        self.say(f"  {CABINET} is offline for the server, and its kiosk says so")

    def pick_up_offline_by_code(self, delivery: Delivery, notice: Notice) -> None:
        self._type_at_kiosk(notice.code)
        self._door_opens_and_is_emptied(delivery)
        state = self._parcel(delivery)["state"]
        check(state != "picked_up", "the server knew of the pickup while the cabinet was offline")
        self.say(f"  the server still has parcel #{delivery.parcel_id} as {state}")

    def come_back(self, delivery: Delivery) -> None:
        self.cabinet.cable.plug_in()
        wait_until(lambda: self.cabinet.runtime.link.connected, "the agent reconnecting")
        wait_until(lambda: self._parcel(delivery)["state"] == "picked_up", "server: picked up")
        history = self.api.call(Role.operator, "GET", f"/parcels/{delivery.parcel_id}/history")
        pickups = [move for move in history if move["to_state"] == "picked_up"]
        check(len(pickups) == 1, f"{len(pickups)} pickups recorded")
        self.say(
            f"  parcel #{delivery.parcel_id} picked up once, reported by "
            f"{pickups[0]['actor_type']} {pickups[0]['actor_id']}"
        )

    def _door_opens_and_is_emptied(self, delivery: Delivery) -> None:
        door = self.cabinet.simulated.door(delivery.door)
        wait_until(lambda: door.is_open, f"door {delivery.door} opening on the board")
        self._wait_screen(
            lambda s: any(p.door == delivery.door and p.status is DoorStatus.OPEN for p in s.doors),
            f"'go to door {delivery.door}' on the kiosk",
        )
        self.say(f"  door {delivery.door} opened; the kiosk says 'go to door {delivery.door}'")
        door.remove_item()
        door.close()
        wait_until(
            lambda: self.cabinet.runtime.door_state(delivery.door) is DoorState.CLOSED,
            f"the agent seeing door {delivery.door} closed",
        )
        self._wait_screen(lambda s: s.phase in (Phase.THANKS, Phase.HOME), "'thank you'")
        self.say(f"  the parcel was taken and door {delivery.door} closed")

    # -- what the doors and the log say ---------------------------------------------------

    def doors_moved(self, deliveries: list[Delivery]) -> None:
        doors = self.api.call(Role.operator, "GET", f"/cabinets/{self.cabinet.db_id}/doors")
        door_ids = {door["number"]: door["id"] for door in doors["items"]}
        for delivery in deliveries:
            simulated = self.cabinet.simulated.door(delivery.door)
            check(
                simulated.unlock_pulses == 2,
                f"door {delivery.door}: {simulated.unlock_pulses} pulses",
            )
            check(not simulated.is_open and not simulated.item_inside, "door left open or full")
            door_id: int = door_ids[delivery.door]
            self._wait_door_moves(door_id, f"the server's door events of door {delivery.door}")
            moves = ", ".join(f"{n} {action}" for action, n in self._door_moves(door_id).items())
            self.say(
                f"  door {delivery.door}: 2 unlock pulses on the board (deposit, pickup); "
                f"server door events: {moves}"
            )

    def _wait_door_moves(self, door_id: int, what: str) -> None:
        wait_until(lambda: min(self._door_moves(door_id).values()) >= 2, what)

    def _door_moves(self, door_id: int) -> dict[str, int]:
        """How many ``door.opened`` and ``door.closed`` entries the server has for the door."""
        query = {"cabinet_id": self.cabinet.db_id, "action": "door.", "limit": 500}
        page = self.api.call(Role.security, "GET", "/audit/events", params=query)
        actions = [entry["action"] for entry in page["items"] if entry["door_id"] == door_id]
        return {action: actions.count(action) for action in ("door.opened", "door.closed")}

    def audit_verifies(self) -> None:
        report = self.api.call(Role.security, "GET", "/audit/verify")
        check(bool(report["ok"]), f"verification failed at seq {report['first_bad_seq']}")
        self.say(
            f"  {report['entries_checked']} entries and {report['checkpoints_checked']} "
            "signed checkpoints verified"
        )

    # -- helpers --------------------------------------------------------------------------

    def _parcel(self, delivery: Delivery) -> dict[str, Any]:
        return self._parcel_by_id(delivery.parcel_id)

    def _parcel_by_id(self, parcel_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.api.call(Role.operator, "GET", f"/parcels/{parcel_id}")
        return result

    def _unlock_pulses(self) -> int:
        numbers = [door.number for door in self.cabinet.simulated.settings.doors]
        return sum(self.cabinet.simulated.door(n).unlock_pulses for n in numbers)

    def _kiosk(self) -> KioskService:
        kiosk = self.cabinet.runtime.kiosk
        if kiosk is None:
            raise _NotSo(f"{CABINET} has no kiosk")
        return kiosk

    def _wait_screen(self, shown: Callable[[Screen], bool], what: str) -> Screen:
        def current() -> Screen | None:
            screen = self._kiosk().screen()[1]
            return screen if shown(screen) else None

        return wait_until(current, what)

    def _press(self, key: str) -> None:
        """One key on the kiosk page, posted as its browser does."""
        response = self._kiosk_page.post("/key", data={"key": key})
        if response.is_error:
            raise _NotSo(f"the kiosk page refused key {key!r}: {response.status_code}")

    def _type_at_kiosk(self, code: str) -> None:
        self._wait_screen(lambda s: s.phase is Phase.HOME and not s.busy, "the home screen")
        for digit in code:
            self._press(digit)


def decode_qr_png(png: bytes | None, address: str) -> str:
    """The pickup QR text in the e-mail's image, read by the kiosk's decoder chain."""
    if png is None:
        raise _NotSo(f"the e-mail to {address} has no QR image")
    decoded = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise _NotSo(f"the QR image of the e-mail to {address} is not a readable PNG")
    image = np.asarray(decoded, dtype=np.uint8)
    texts = [found.text for found in default_chain().decode(image)]
    qr = next((text for text in texts if parse_pickup_qr(text) is not None), None)
    if qr is None:
        raise _NotSo(f"no pickup QR decoded from the e-mail to {address} (read: {texts})")
    return qr


def announce_parcel(api: Api, data: DemoData, recipient: str, *, size: str) -> Announced:
    """A parcel for ``recipient`` announced as a carrier's system does (``POST /parcels``,
    as the courier), under the next demo tracking number this carrier has not used."""
    body = {
        "tracking_number": next_tracking_number(api),
        "recipient_id": data.recipients[recipient],
        "site_id": data.site_id,
        "size": size,
    }
    parcel = api.call(Role.courier, "POST", "/parcels", json=body)
    check(parcel["state"] == "announced", f"the new parcel is {parcel['state']}")
    return Announced(recipient, int(parcel["id"]), str(parcel["tracking_number"]), size)


def parcels_to_deposit(
    api: Api, data: DemoData, wanted: tuple[tuple[str, str], ...]
) -> list[Announced]:
    """The carrier's demo parcels still waiting to be deposited; when there are fewer than
    ``wanted`` (recipient, size) pairs, the missing ones are announced first."""
    query = {"search": TRACKING_PREFIX, "state": "announced", "limit": 100}
    waiting = api.call(Role.courier, "GET", "/parcels", params=query)["items"]
    by_id = {recipient_id: address for address, recipient_id in data.recipients.items()}
    found = [
        Announced(by_id[p["recipient_id"]], int(p["id"]), p["tracking_number"], p["size"] or "?")
        for p in waiting
    ]
    for recipient, size in wanted[len(found) :]:
        found.append(announce_parcel(api, data, recipient, size=size))
    return found


def next_tracking_number(api: Api) -> str:
    """``DEMO-0001``, ``DEMO-0002``, …: one past the carrier's demo parcels so far (a kept
    ``--data-dir`` has some already)."""
    query = {"search": TRACKING_PREFIX, "limit": 1}
    page = api.call(Role.courier, "GET", "/parcels", params=query)
    return f"{TRACKING_PREFIX}{int(page['total']) + 1:04d}"
