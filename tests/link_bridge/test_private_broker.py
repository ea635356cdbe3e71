"""The bridge on the project's generated Mosquitto configuration: TLS, the server's service
account, ACLs, shared subscriptions — and a broker restart in the middle."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine

from simulators.mosquitto import PrivateMosquitto
from tests.link_bridge.conftest import (
    WAIT_S,
    Bridges,
    CabinetClient,
    CabinetWorld,
    audit_entries,
    event,
    wait_for,
)


def test_the_bridge_ingests_through_the_tls_broker_and_again_after_the_broker_restarts(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld
) -> None:
    password = secrets.token_urlsafe(24)
    with PrivateMosquitto(cabinets={cabinet.code: password}) as broker:
        account = broker.server_credentials
        bridge, _ = bridges.start(
            host=broker.host,
            port=broker.server_port,
            tls=True,
            ca_file=str(broker.ca_file),
            username=account.username,
            password=account.password,
            reconnect_min_s=1,
            reconnect_max_s=1,
        )
        agent = CabinetClient(
            cabinet.code, port=broker.tls_port, ca_file=str(broker.ca_file), password=password
        )
        try:
            before = event("door.opened", door=1)
            agent.send_events([before])
            assert wait_for(lambda: agent.acked_ids() == [before.event_id])

            broker.restart()
            assert wait_for(lambda: bridge.connections == 2)
            assert bridge.wait_until_subscribed(WAIT_S)  # subscribed again on reconnect
            after = event("door.closed", door=1)
            assert wait_for(lambda: agent.client.is_connected())
            agent.send_events([after])
            assert wait_for(lambda: agent.acked_ids() == [before.event_id, after.event_id])
        finally:
            agent.close()
    assert len(audit_entries(engine, "door.opened", cabinet.cabinet_id)) == 1
    assert len(audit_entries(engine, "door.closed", cabinet.cabinet_id)) == 1
