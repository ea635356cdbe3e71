"""The agent's MQTT socket is read and written by the link's own thread only.

paho writes a publish straight from the calling thread unless told otherwise; with TLS
that means two threads in one OpenSSL object at once (the runtime's worker publishing,
the link thread reading), which corrupted memory when a broker restart hit both.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from locker_agent.journal import Journal
from locker_agent.link.mqtt import Outgoing
from locker_contract import topics
from tests.agent_link.conftest import AdapterFactory, ObserverFactory


def test_publishes_from_other_threads_are_written_by_the_link_thread(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory, observe: ObserverFactory
) -> None:
    adapter, _inbox = make_adapter(cabinet_id, journal)
    assert adapter.wait_connected(10)
    writers: set[str] = set()
    client: mqtt.Client = adapter._client
    original = client.loop_write

    def recording_loop_write() -> mqtt.MQTTErrorCode:
        writers.add(threading.current_thread().name)
        return original()

    client.loop_write = recording_loop_write  # type: ignore[method-assign]
    spy = observe(topics.evt(cabinet_id))
    publishers = [
        threading.Thread(
            target=lambda n=n: adapter.publish(Outgoing(topics.evt(cabinet_id), b"%d" % n)),
            name=f"publisher-{n}",
        )
        for n in range(20)
    ]
    for publisher in publishers:
        publisher.start()
    for publisher in publishers:
        publisher.join(5)
    received = sorted(int(spy.next_message(timeout=10).payload) for _ in range(20))
    assert received == list(range(20))
    assert writers == {"mqtt-link"}
