"""The API shows each cabinet's link: online, last seen, connection counter, agent version."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import AuthHeaders, admin_headers, app, client, make_user  # noqa: F401
from tests.link_bridge.conftest import Bridges, CabinetClient, CabinetWorld, wait_for


def test_a_cabinet_shows_offline_until_its_agent_connects_then_online_with_its_version(
    client: TestClient,  # noqa: F811
    admin_headers: AuthHeaders,  # noqa: F811
    bridges: Bridges,
    cabinet: CabinetWorld,
    cabinet_client: CabinetClient,
) -> None:
    url = f"/api/v1/cabinets/{cabinet.cabinet_id}"
    before = client.get(url, headers=admin_headers).json()
    assert {k: before[k] for k in ("online", "last_seen", "connection", "agent_version")} == {
        "online": False,
        "last_seen": None,
        "connection": None,
        "agent_version": None,
    }
    bridges.start()

    cabinet_client.send_presence("online", 3)

    assert wait_for(lambda: client.get(url, headers=admin_headers).json()["online"])
    after = client.get(url, headers=admin_headers).json()
    assert after["connection"] == 3
    assert after["agent_version"] == "1.2.3"
    assert after["last_seen"] is not None
    [listed] = client.get("/api/v1/cabinets", headers=admin_headers).json()["items"]
    assert listed == after
