"""An operator's remote open over HTTP goes through the signed-command path: 202 and a
command to follow when the link runs, 503 ``link_unavailable`` (recorded as failed) when it
does not, 409 while the kill switch is on."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from locker_contract import CommandMessage, decode, trusted_keys, verify_command
from locker_contract.signing import encode_public_key
from locker_server.auth.roles import Role
from tests.api.conftest import MakeUser
from tests.api_domain import conftest as api_domain
from tests.api_domain.conftest import Setup, ok
from tests.link_commands.conftest import RecordingPublisher

app = api_domain.app
client = api_domain.client
make_user = api_domain.make_user
admin_headers = api_domain.admin_headers
audit_entries = api_domain.audit_entries
setup = api_domain.setup


@pytest.fixture
def cabinet_trust_app(app: FastAPI) -> dict[str, Any]:
    public = encode_public_key(app.state.keys.command_signing_key.public_key())
    return trusted_keys([public])


def _door_url(setup: Setup, number: int = 2) -> str:
    return f"/api/v1/cabinets/{setup.cabinet_id}/doors/{setup.door_ids[number]}"


def test_operator_opens_a_door_remotely_and_follows_the_signed_command(
    app: FastAPI, client: TestClient, setup: Setup, make_user: MakeUser,
    cabinet_trust_app: dict[str, Any], audit_entries: Any,
) -> None:  # fmt: skip
    publisher = RecordingPublisher()
    app.state.link_publisher = publisher
    operator = make_user(Role.operator, sites=[setup.site_id])
    body = {"reason": "recipient locked keys inside"}
    command = ok(client.post(f"{_door_url(setup)}/open", headers=operator, json=body), 202)
    assert (command["status"], command["door"], command["action"]) == ("sent", 2, "open_door")
    [message] = publisher.on("cmd")
    envelope = decode(message.payload, CommandMessage)
    verify_command(envelope, cabinet_trust_app)
    assert envelope.body.command_id == command["command_id"]
    url = f"/api/v1/cabinets/{setup.cabinet_id}/commands/{command['command_id']}"
    security = make_user(Role.security)
    assert ok(client.get(url, headers=security))["status"] == "sent"
    [entry] = audit_entries("door.remote_open")
    assert (entry.reason, entry.door_id, entry.outcome) == (
        "recipient locked keys inside", setup.door_ids[2], "requested",
    )  # fmt: skip


def test_without_a_running_link_the_api_answers_503_and_keeps_the_failed_command(
    client: TestClient, setup: Setup, make_user: MakeUser, audit_entries: Any
) -> None:
    operator = make_user(Role.operator, sites=[setup.site_id])
    response = client.post(f"{_door_url(setup)}/open", headers=operator, json={"reason": "test"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "link_unavailable"
    [failed] = audit_entries("command.failed")
    assert failed.reason == "link_unavailable"
    assert [e.outcome for e in audit_entries("door.remote_open")] == ["requested"]


def test_kill_switch_over_http_refuses_remote_opens_with_409(
    app: FastAPI, client: TestClient, setup: Setup, make_user: MakeUser, audit_entries: Any
) -> None:
    publisher = RecordingPublisher()
    app.state.link_publisher = publisher
    operator = make_user(Role.operator, sites=[setup.site_id])
    switch_url = f"/api/v1/cabinets/{setup.cabinet_id}/remote-open"
    off = {"enabled": False, "reason": "incident 42"}
    state = ok(client.put(switch_url, headers=operator, json=off))
    assert (state["remote_open_enabled"], state["site_remote_open_enabled"]) == (False, True)
    response = client.post(f"{_door_url(setup)}/open", headers=operator, json={"reason": "x-y"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "remote_open_disabled"
    assert publisher.messages == []
    security = make_user(Role.security)
    assert client.put(switch_url, headers=security, json=off).status_code == 403
    assert [e.outcome for e in audit_entries("door.remote_open")] == ["refused"]


def test_a_command_of_another_cabinet_or_site_is_not_found(
    app: FastAPI, client: TestClient, setup: Setup, make_user: MakeUser, admin_headers: Any
) -> None:
    app.state.link_publisher = RecordingPublisher()
    operator = make_user(Role.operator, sites=[setup.site_id])
    command = ok(
        client.post(f"{_door_url(setup)}/open", headers=operator, json={"reason": "check"}), 202
    )
    annex = ok(client.post("/api/v1/sites", json={"name": "Annex"}, headers=admin_headers), 201)
    stranger = make_user(Role.operator, sites=[annex["id"]])
    url = f"/api/v1/cabinets/{setup.cabinet_id}/commands/{command['command_id']}"
    assert client.get(url, headers=stranger).status_code == 404
    missing = f"/api/v1/cabinets/{setup.cabinet_id}/commands/{'0' * 32}"
    assert client.get(missing, headers=operator).status_code == 404
