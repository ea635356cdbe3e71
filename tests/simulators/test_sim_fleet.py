"""The simulated fleet against a real private Mosquitto started with the project's config.

A test client logged in as the server account plays the server: it watches presence,
receives evt batches, acknowledges them, and publishes signed commands.
"""

from __future__ import annotations

import functools
import json
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import locker_contract as contract
from locker_contract.pickup_qr import encode_pickup_qr
from simulators.errors import SimulatorConfigError
from simulators.fleet import Fleet, FleetSettings, cabinet_ids, fleet_pickup_key
from simulators.mosquitto import PrivateMosquitto
from tests.link_support.clients import Received, TestClient, connect

MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "contract"
SIGNING_KEY = Ed25519PrivateKey.generate()
TRUSTED = {contract.key_id_of(SIGNING_KEY.public_key()): SIGNING_KEY.public_key()}


def _broker(ids: tuple[str, ...]) -> PrivateMosquitto:
    return PrivateMosquitto(cabinets={cid: f"pw-{cid}" for cid in ids}, plain=True)


def _settings(broker: PrivateMosquitto, ids: tuple[str, ...], **overrides: object) -> FleetSettings:
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.plain_port,
        "cabinet_ids": ids,
        "passwords": {cid: f"pw-{cid}" for cid in ids},
        "trusted_keys": TRUSTED,
        "doors": 4,
    }
    values.update(overrides)
    return FleetSettings(**values)  # type: ignore[arg-type]


def _server(broker: PrivateMosquitto) -> TestClient:
    account = broker.server_credentials
    return connect(broker, account.username, account.password, tls=False)


def _drain(client: TestClient, until: float) -> Iterator[Received]:
    while (left := until - time.monotonic()) > 0:
        try:
            yield client.next_message(timeout=left)
        except queue.Empty:
            return


@functools.cache
def _schema(kind: str) -> dict[str, object]:
    schema: dict[str, object] = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    return schema


def _valid(kind: str, payload: bytes) -> dict[str, object]:
    """The message, after checking it against the committed JSON Schema of its type."""
    document: dict[str, object] = json.loads(payload)
    jsonschema.validate(document, _schema(kind))
    return document


def _retained_presence(broker: PrivateMosquitto, count: int) -> dict[str, dict]:
    """cabinet id → retained presence body, read as the server account.

    With ``mosquitto_sub``: paho's own loop thread uses ``select()``, which cannot watch a
    descriptor above 1024, and the fleet holds a thousand sockets in this process.
    """
    account = broker.server_credentials
    command = [MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.plain_port), "-V", "mqttv5"]
    command += ["-u", account.username, "-P", account.password, "-t", "lockers/v1/+/presence"]
    command += ["-v", "-C", str(count), "-W", "30"]
    lines = subprocess.run(command, capture_output=True, check=True, timeout=60).stdout
    latest: dict[str, dict] = {}
    for line in lines.decode().splitlines():
        topic, payload = line.split(" ", 1)
        assert payload.startswith("{"), line
        body = _valid("presence", payload.encode())["body"]
        assert isinstance(body, dict)
        latest[contract.topics.parse(topic).cabinet_id] = body
    return latest


def test_a_thousand_cabinets_connect_at_once_and_all_are_online_again_after_broker_restart() -> (
    None
):
    ids = cabinet_ids("FLEET-", 1000)
    with _broker(ids) as broker, Fleet(_settings(broker, ids)) as fleet:
        assert fleet.wait_online(timeout=60)
        broker.restart()
        everyone_reconnected = lambda c: c.connects >= 2 * len(ids) and c.online == len(ids)  # noqa: E731
        assert fleet.counters.wait_for(everyone_reconnected, timeout=60)
        latest = _retained_presence(broker, len(ids))
    assert set(latest) == set(ids)
    for cid, body in latest.items():
        assert body["status"] == "online"
        assert body["connection"] == fleet.cabinets[cid].connection >= 2


def test_a_cabinet_that_drops_off_is_declared_offline_by_its_will_with_the_same_connection() -> (
    None
):
    ids = cabinet_ids("WILL-", 3)
    with _broker(ids) as broker, Fleet(_settings(broker, ids, reconnect_min=2.0)) as fleet:
        assert fleet.wait_online(timeout=10)
        with _server(broker) as server:
            server.subscribe(contract.topics.presence(ids[0]))
            server.next_message()  # the retained "online"
            first = fleet.cabinets[ids[0]].connection
            fleet.on_loop(ids[0], lambda cabinet: cabinet.drop_connection())
            will = _valid("presence", server.next_message(timeout=5).payload)["body"]
            back = _valid("presence", server.next_message(timeout=10).payload)["body"]
    assert will == {
        "status": "offline",
        "connection": first,
        "agent_version": will["agent_version"],
    }
    assert back["status"] == "online"
    assert back["connection"] > first


def test_events_are_published_again_until_the_server_acknowledges_them() -> None:
    ids = cabinet_ids("EVT-", 2)
    with _broker(ids) as broker, _server(broker) as server:
        server.subscribe("lockers/v1/+/evt")
        fleet_settings = _settings(broker, ids, resend_after=0.3, batch_size=3)
        with Fleet(fleet_settings) as fleet:
            assert fleet.wait_online(timeout=10)
            fleet.emit_events(per_cabinet=5, cabinet_ids=[ids[0]])
            first_round = _collect_events(server, 5, timeout=5)
            second_round = _collect_events(server, 5, timeout=5)
            event_ids = [e["event_id"] for e in first_round]
            _acknowledge(server, ids[0], event_ids, key=Ed25519PrivateKey.generate())  # forged
            _acknowledge(server, ids[0], event_ids, addressed_to=ids[1])  # genuine, not ours
            _handled_after_what_came_before(fleet, server, ids[0])
            assert fleet.counters.events_acked == 0
            _acknowledge(server, ids[0], event_ids)
            assert fleet.wait_acked(timeout=5)
            # a later event left unacknowledged: its re-send shows a resend period passed
            fleet.emit_events(per_cabinet=1, cabinet_ids=[ids[0]])
            late = _collect_events(server, 2, timeout=5)
    assert [e["seq"] for e in first_round] == [1, 2, 3, 4, 5]
    assert [e["event_id"] for e in second_round] == [e["event_id"] for e in first_round]
    assert [e["seq"] for e in late] == [6, 6]  # sent, sent again; the acknowledged never
    assert fleet.counters.events_acked == 5


def _handled_after_what_came_before(fleet: Fleet, server: TestClient, cabinet_id: str) -> None:
    """Send the cabinet a command it refuses and wait for the refusal: a cabinet handles
    what the server publishes in order, so everything sent before has been handled."""
    sentinel = _send(server, _command(cabinet_id, 1, key=Ed25519PrivateKey.generate()))
    answered = fleet.counters.wait_for(
        lambda c: any(o.command_id == sentinel for o in c.outcomes), timeout=5
    )
    assert answered, "the cabinet never answered the sentinel command"


def _collect_events(server: TestClient, count: int, timeout: float) -> list[dict]:
    events: list[dict] = []
    for message in _drain(server, time.monotonic() + timeout):
        body = _valid("evt", message.payload)["body"]
        assert isinstance(body, dict)
        assert len(body["events"]) <= 3
        events += body["events"]
        if len(events) >= count:
            break
    return events


def _acknowledge(
    server: TestClient,
    cabinet_id: str,
    event_ids: list[str],
    *,
    key: Ed25519PrivateKey = SIGNING_KEY,
    addressed_to: str | None = None,
) -> None:
    """A signed ``evt/ack`` on ``cabinet_id``'s topic (``addressed_to`` another cabinet)."""
    body = contract.UnsignedEventAck(
        event_ids=event_ids, key_id=contract.key_id_of(key.public_key())
    )
    envelope = contract.new_envelope(addressed_to or cabinet_id, body)
    ack = contract.sign_message(envelope, key, contract.EventAckMessage)
    server.publish(contract.topics.evt_ack(cabinet_id), contract.encode(ack))


def _command(
    cabinet_id: str,
    counter: int,
    *,
    door: int | None = 1,
    key: Ed25519PrivateKey = SIGNING_KEY,
    expires_in: float = 60,
) -> contract.CommandMessage:
    now = contract.utc_now()
    body = contract.UnsignedCommand(
        command_id=contract.new_message_id(),
        counter=counter,
        issued_at=now - timedelta(seconds=1),
        expires_at=now + timedelta(seconds=expires_in),
        action="open_door",
        door=door,
        reason="test",
        maintenance_token=None,
        key_id=contract.key_id_of(key.public_key()),
    )
    return contract.sign_command(contract.new_envelope(cabinet_id, body), key)


def _final_result(server: TestClient, command_id: str) -> dict:
    for message in _drain(server, time.monotonic() + 5):
        body = _valid("cmd_res", message.payload)["body"]
        assert isinstance(body, dict)
        if body["command_id"] == command_id and body["status"] != "received":
            return body
    raise AssertionError(f"no final result for {command_id}")


def _send(
    server: TestClient,
    command: contract.CommandMessage,
    *,
    retain: bool = False,
    to: str | None = None,
) -> str:
    topic = contract.topics.cmd(to or command.cabinet_id)
    server.publish(topic, contract.encode(command), retain=retain)
    return command.body.command_id


def test_a_signed_command_opens_the_door_and_every_bad_one_is_rejected_with_its_reason() -> None:
    ids = cabinet_ids("CMD-", 2)
    cid = ids[0]
    stranger = Ed25519PrivateKey.generate()
    good = _command(cid, 5)
    tampered = good.model_copy(update={"body": good.body.model_copy(update={"door": 2})})
    retargeted = good.model_copy(update={"cabinet_id": ids[1]})
    cases = [
        (good, "succeeded", None),
        (good, "rejected", "replayed_counter"),  # the guard checks the counter before the id
        (_command(cid, 4), "rejected", "replayed_counter"),
        (_command(cid, 6, key=stranger), "rejected", "unknown_key"),
        (tampered, "rejected", "bad_signature"),
        (_command(cid, 7, door=99), "rejected", "unknown_door"),
        (_command(cid, 8, expires_in=0.001), "rejected", "expired"),
    ]
    with _broker(ids) as broker, Fleet(_settings(broker, ids)) as fleet:
        assert fleet.wait_online(timeout=10)
        with _server(broker) as server:
            server.subscribe("lockers/v1/+/cmd/res")
            results = [_final_result(server, _send(server, c)) for c, _, _ in cases]
            retargeted_result = _final_result(server, _send(server, retargeted))
            misdelivered = _final_result(server, _send(server, _command(ids[1], 9), to=cid))
        doors = dict(fleet.cabinets[cid].doors)
    assert [(r["status"], r["reason"]) for r in results] == [(s, r) for _, s, r in cases]
    assert results[0]["outcome"] == "confirmed"
    assert doors == {1: "open", 2: "closed", 3: "closed", 4: "closed"}
    assert (retargeted_result["status"], retargeted_result["reason"]) == (
        "rejected",
        "bad_signature",
    )
    assert (misdelivered["status"], misdelivered["reason"]) == ("rejected", "wrong_cabinet")


def test_a_retained_command_is_never_acted_on() -> None:
    ids = cabinet_ids("RET-", 1)
    with _broker(ids) as broker, _server(broker) as server:
        server.subscribe("lockers/v1/+/cmd/res")
        command_id = _send(server, _command(ids[0], 1), retain=True)
        with Fleet(_settings(broker, ids)) as fleet:
            assert fleet.wait_online(timeout=10)
            result = _final_result(server, command_id)
            doors = dict(fleet.cabinets[ids[0]].doors)
    assert (result["status"], result["reason"]) == ("rejected", "retained")
    assert set(doors.values()) == {"closed"}


def test_the_fleet_connects_over_tls_with_the_brokers_ca() -> None:
    ids = cabinet_ids("TLS-", 20)
    with _broker(ids) as broker:
        settings = _settings(broker, ids, port=broker.tls_port, ca_file=broker.ca_file)
        with Fleet(settings) as fleet:
            assert fleet.wait_online(timeout=30)
            assert fleet.online == 20


def test_locker_sim_fleet_is_driven_from_stdin_and_reports_every_cabinets_connection(
    tmp_path: Path,
) -> None:
    ids = cabinet_ids("CLI-", 5)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({cid: f"pw-{cid}" for cid in ids}))
    with _broker(ids) as broker:
        command = [sys.executable, "-m", "simulators.cli", "fleet", "--host", broker.host]
        command += ["--port", str(broker.plain_port), "--passwords", str(passwords)]
        script = f"wait online 20\ndrop {ids[0]}\nemit 2\nstats\n"
        done = subprocess.run(
            command, input=script, capture_output=True, text=True, timeout=60, check=True
        )
    lines = done.stdout.splitlines()
    assert lines[0] == f"fleet 5 cabinets -> {broker.host}:{broker.plain_port}"
    assert lines[1].startswith("online ok ")
    assert lines[2:4] == ["dropped 1", "emitted 10"]
    stats = json.loads(lines[4])
    assert set(stats["connections"]) == set(ids)
    assert stats["events_journaled"] == 10


# ------------------------------------------------------------------ kiosks
CODE = "12345678"
TOKEN = "pickup-token-42"


def _entry(
    cabinet_id: str, parcel_id: int, door: int, *, code: str | None = None, token: str | None = None
) -> contract.AllowListEntry:
    """An allow-list entry hashed with the cabinet's pickup key, as the server builds it."""
    key = fleet_pickup_key(cabinet_id)
    return contract.AllowListEntry(
        parcel_id=parcel_id,
        door=door,
        code_hash=None if code is None else contract.credential_hash(key, "code", code),
        qr_hash=None if token is None else contract.credential_hash(key, "qr", token),
        expires_at=contract.utc_now() + timedelta(hours=1),
    )


def _allow_list(
    cabinet_id: str,
    version: int,
    entries: list[contract.AllowListEntry],
    *,
    key: Ed25519PrivateKey = SIGNING_KEY,
) -> bytes:
    body = contract.UnsignedAllowListSync(
        kind="allow_list",
        version=version,
        server_time=contract.utc_now(),
        full=True,
        entries=entries,
        removed=[],
        key_id=contract.key_id_of(key.public_key()),
    )
    envelope = contract.new_envelope(cabinet_id, body)
    return contract.encode(contract.sign_message(envelope, key, contract.SyncMessage))


def _events_by_cabinet(server: TestClient, count: int, timeout: float) -> dict[str, list[dict]]:
    """cabinet id → its events in journal order, each once (re-sends dropped)."""
    seen: dict[str, dict[str, dict]] = {}
    for message in _drain(server, time.monotonic() + timeout):
        document = _valid("evt", message.payload)
        events = seen.setdefault(str(document["cabinet_id"]), {})
        body = document["body"]
        assert isinstance(body, dict)
        events.update((event["event_id"], event) for event in body["events"])
        if sum(len(events) for events in seen.values()) >= count:
            break
    return {cid: sorted(events.values(), key=lambda e: e["seq"]) for cid, events in seen.items()}


def test_a_person_at_a_fleet_kiosk_picks_up_with_the_code_the_server_synced_and_no_other() -> None:
    ids = cabinet_ids("KIOSK-", 3)
    here, elsewhere, forged = ids
    with _broker(ids) as broker, _server(broker) as server:
        server.subscribe("lockers/v1/+/evt")
        with Fleet(_settings(broker, ids, kiosks=True)) as fleet:
            assert fleet.wait_online(timeout=10)
            before_any_list = fleet.type_code(here, CODE)
            fleet.close_door(here, 1)  # not open: nothing happens
            server.publish(
                contract.topics.sync(here),
                _allow_list(
                    here, 7, [_entry(here, 41, 2, code=CODE), _entry(here, 42, 3, token=TOKEN)]
                ),
            )
            server.publish(
                contract.topics.sync(elsewhere),
                _allow_list(elsewhere, 3, [_entry(elsewhere, 50, 1, code="87654321")]),
            )
            stolen = _allow_list(
                forged, 9, [_entry(forged, 60, 1, code=CODE)], key=Ed25519PrivateKey.generate()
            )
            server.publish(contract.topics.sync(forged), stolen)
            for cid in ids:
                _handled_after_what_came_before(fleet, server, cid)
            wrong = fleet.type_code(here, "11112222")
            granted = fleet.type_code(here, CODE)
            door_open = fleet.ask(here, lambda cabinet: cabinet.doors[2])
            fleet.close_door(here, 2)
            after_close = fleet.kiosk_screen(here)
            again = fleet.type_code(here, CODE)  # consumed: refused
            scanned = fleet.scan(here, encode_pickup_qr(TOKEN))
            fleet.close_door(here, 3)
            not_listed = fleet.type_code(elsewhere, CODE)
            not_trusted = fleet.type_code(forged, CODE)
            events = _events_by_cabinet(server, count=11, timeout=10)
    assert before_any_list == "refused"
    assert (wrong, granted, door_open, after_close) == ("refused", "doors", "open", "thanks")
    assert (again, scanned, not_listed, not_trusted) == ("refused", "doors", "refused", "refused")
    story = [(e["type"], e["door"], e["data"]) for e in events[here]]
    assert story == [
        ("pickup.refused", None, {"reason": "no_list", "credential": "code"}),
        ("pickup.refused", None, {"reason": "no_match", "credential": "code"}),
        ("door.open_confirmed", 2, {}),
        ("door.closed", 2, {}),
        (
            "pickup",
            2,
            {"mode": "offline", "parcel_ids": [41], "credential": "code", "allow_list_version": 7},
        ),
        ("pickup.refused", None, {"reason": "no_match", "credential": "code"}),
        ("door.open_confirmed", 3, {}),
        ("door.closed", 3, {}),
        (
            "pickup",
            3,
            {"mode": "offline", "parcel_ids": [42], "credential": "qr", "allow_list_version": 7},
        ),
    ]
    assert [(e["type"], e["data"]["reason"]) for e in events[elsewhere]] == [
        ("pickup.refused", "no_match")
    ]
    assert [(e["type"], e["data"]["reason"]) for e in events[forged]] == [
        ("pickup.refused", "no_list")
    ]


def test_a_fleet_without_kiosks_has_no_keypad_to_type_on() -> None:
    ids = cabinet_ids("BARE-", 1)
    settings = FleetSettings(host="127.0.0.1", port=1, cabinet_ids=ids, reconnect_min=30)
    with Fleet(settings) as fleet:
        assert fleet.cabinets[ids[0]].kiosk is None
        with pytest.raises(SimulatorConfigError, match="no kiosk"):
            fleet.type_code(ids[0], CODE)


def test_locker_sim_fleet_with_kiosks_opens_a_door_for_a_typed_code_driven_from_stdin(
    tmp_path: Path,
) -> None:
    ids = cabinet_ids("CLIK-", 2)
    here = ids[0]
    key = bytes(range(32))  # the key the server derived for this cabinet
    keys_file = tmp_path / "pickup-keys.json"
    keys_file.write_text(json.dumps({here: key.hex()}))
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({cid: f"pw-{cid}" for cid in ids}))
    entry = contract.AllowListEntry(
        parcel_id=41,
        door=2,
        code_hash=contract.credential_hash(key, "code", CODE),
        qr_hash=None,
        expires_at=contract.utc_now() + timedelta(hours=1),
    )
    with _broker(ids) as broker, _server(broker) as server:
        server.subscribe(contract.topics.all_cabinets(contract.topics.Kind.CMD_RES))
        command = [sys.executable, "-m", "simulators.cli", "fleet", "--host", broker.host]
        command += ["--port", str(broker.plain_port), "--passwords", str(passwords), "--kiosks"]
        command += ["--pickup-keys", str(keys_file), "--doors", "4"]
        command += ["--trusted-key", contract.encode_public_key(SIGNING_KEY.public_key())]
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as fleet:
            assert fleet.stdin is not None
            assert fleet.stdout is not None
            answers = _FleetConsole(fleet.stdin, fleet.stdout)
            assert answers.ask("wait online 20").startswith("online ok ")
            server.publish(contract.topics.sync(here), _allow_list(here, 3, [entry]))
            _send(server, _command(here, 1, key=Ed25519PrivateKey.generate()))
            server.next_message(timeout=10)  # its refusal: the list before it was handled
            replies = [
                answers.ask(line)
                for line in (f"type {here} {CODE}", f"close {here} 2", f"type {here} {CODE}")
            ]
            replies.append(answers.ask(f"type {ids[1]} {CODE}"))
            replies.append(answers.ask("frobnicate"))
            fleet.stdin.close()
            assert fleet.wait(timeout=30) == 0
    assert replies[:4] == ["doors", "thanks", "refused", "refused"]
    assert replies[4].startswith("error: unknown command 'frobnicate'")


class _FleetConsole:
    """Writes one command to ``locker-sim fleet`` and reads its one-line answer."""

    def __init__(self, stdin: IO[str], stdout: IO[str]) -> None:
        self._stdin, self._stdout = stdin, stdout
        assert stdout.readline().startswith("fleet ")

    def ask(self, line: str) -> str:
        self._stdin.write(line + "\n")
        self._stdin.flush()
        return self._stdout.readline().strip()
