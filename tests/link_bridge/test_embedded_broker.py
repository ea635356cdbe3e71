"""Without LOCKER_MQTT_URL, `serve`'s background jobs run the embedded amqtt broker and the
bridge on it: a real paho client (the cabinet) is served end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.background import BackgroundJobs
from locker_server.broker.embedded import EmbeddedBroker
from locker_server.broker.errors import BrokerPortTaken
from locker_server.config import Settings
from locker_server.keys import ServerKeys
from locker_server.models.links import CabinetLink
from tests.link_bridge.conftest import WAIT_S, CabinetClient, CabinetWorld, event, wait_for
from tests.notifications.notification_support import free_port


@pytest.fixture
def embedded_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port())
    broker.start()
    yield broker
    broker.stop()


def test_the_embedded_broker_delivers_a_real_paho_clients_message(
    embedded_broker: EmbeddedBroker,
) -> None:
    received: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev-client")
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    client.connect("127.0.0.1", embedded_broker.port)
    client.loop_start()
    try:
        client.subscribe("lockers/v1/DEV-1/evt", qos=1)
        assert subscribed.wait(WAIT_S)
        client.publish("lockers/v1/DEV-1/evt", b"hello", qos=1).wait_for_publish(WAIT_S)
        assert wait_for(lambda: received == [b"hello"])
    finally:
        client.disconnect()
        client.loop_stop()


def test_serve_without_a_broker_url_runs_the_dev_broker_and_ingests_a_cabinets_messages(
    engine: Engine, settings: Settings, server_keys: ServerKeys, cabinet: CabinetWorld
) -> None:
    dev = settings.model_copy(update={"mqtt_url": None, "embedded_broker_port": free_port()})
    jobs = BackgroundJobs(engine, dev, server_keys)
    jobs.start()
    try:
        assert jobs.embedded_broker is not None
        assert jobs.bridge is not None
        assert jobs.bridge.wait_until_subscribed(WAIT_S)
        agent = CabinetClient(cabinet.code, port=dev.embedded_broker_port)
        try:
            opened = event("door.opened", door=1)
            agent.send_presence("online", 1)
            agent.send_events([opened])
            assert wait_for(lambda: agent.acked_ids() == [opened.event_id])
        finally:
            agent.close()
    finally:
        jobs.stop()
    with Session(engine) as session:
        link = session.get(CabinetLink, cabinet.cabinet_id)
        assert link is not None
        assert link.online


def test_background_jobs_refuse_to_start_when_the_dev_broker_port_is_taken(
    engine: Engine, settings: Settings, server_keys: ServerKeys, embedded_broker: EmbeddedBroker
) -> None:
    taken = settings.model_copy(
        update={"mqtt_url": None, "embedded_broker_port": embedded_broker.port}
    )
    jobs = BackgroundJobs(engine, taken, server_keys)

    with pytest.raises(BrokerPortTaken) as refused:
        jobs.start()

    assert (refused.value.host, refused.value.port) == ("127.0.0.1", embedded_broker.port)
    assert jobs.bridge is None
    assert jobs.link_publisher is None
    assert jobs._threads == []  # nothing else started without the link
