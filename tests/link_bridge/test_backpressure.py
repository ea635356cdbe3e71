"""A bridge whose worker falls behind holds the broker back; it never drops a message."""

from __future__ import annotations

import queue
import threading
import uuid

import paho.mqtt.client as mqtt

from locker_server.link.bridge import BridgeConfig, InboundMessage, LinkPublisher, MqttBridge
from tests.link_bridge.conftest import BROKER_HOST, BROKER_PORT, WAIT_S, wait_for


class HeldWorker:
    """Handles nothing until released, then records every topic it is given."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.topics: list[str] = []

    def __call__(self, message: InboundMessage, _publisher: LinkPublisher) -> None:
        if not message.retained:  # the shared broker replays other tests' retained presence
            self.released.wait(WAIT_S)
        self.topics.append(message.topic)


def test_messages_beyond_a_full_queue_wait_for_the_worker_instead_of_being_dropped() -> None:
    group, prefix = f"bp-{uuid.uuid4().hex[:8]}", f"BP{uuid.uuid4().hex[:8]}"
    worker = HeldWorker()
    config = BridgeConfig(
        host=BROKER_HOST,
        port=BROKER_PORT,
        client_id=f"srv-{prefix}",
        share_group=group,
        session_expiry_s=60,
    )
    bridge = MqttBridge(config, worker)
    # A queue far smaller than what the broker may push at once (Receive Maximum): the
    # situation a burst of 1,000 cabinets coming online creates.
    bridge._queue = queue.Queue(maxsize=2)  # type: ignore[misc]
    bridge.start()
    try:
        assert bridge.wait_until_subscribed(WAIT_S)
        sent = [f"lockers/v1/{prefix}-{n}/presence" for n in range(20)]
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect(BROKER_HOST, BROKER_PORT)
        publisher.loop_start()
        for topic in sent:
            publisher.publish(topic, b"{}", qos=1).wait_for_publish(WAIT_S)
        publisher.loop_stop()
        publisher.disconnect()
        worker.released.set()
        mine = lambda: sorted(t for t in worker.topics if prefix in t)  # noqa: E731
        assert wait_for(lambda: len(mine()) >= len(sent))
        assert mine() == sorted(sent)
    finally:
        worker.released.set()
        bridge.stop()
