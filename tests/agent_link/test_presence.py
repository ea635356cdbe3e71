"""Presence over the real broker: online, last will, the per-connection counter."""

from __future__ import annotations

import json
import time

from locker_agent.journal import Journal
from locker_agent.link.mqtt import Connected, Received
from locker_contract import PresenceMessage, decode, topics
from tests.agent_link.conftest import AdapterFactory, ObserverFactory
from tests.link_support.clients import TestClient
from tests.waiting import wait_until


def presence_of(client: TestClient, timeout: float = 5.0) -> tuple[str, int, bool]:
    message = client.next_message(timeout)
    body = decode(message.payload, PresenceMessage).body
    return body.status, body.connection, message.retain


def test_cabinet_announces_itself_online_with_a_retained_presence(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory, observe: ObserverFactory
) -> None:
    adapter, _ = make_adapter(cabinet_id, journal)
    assert adapter.wait_connected(5)  # SUBACKs in: the online announcement's PUBACK came first

    late = observe(topics.presence(cabinet_id))

    assert presence_of(late) == ("online", 1, True)


def test_lost_connection_publishes_the_will_then_a_higher_connection_comes_online(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory, observe: ObserverFactory
) -> None:
    watcher = observe(topics.presence(cabinet_id))
    adapter, inbox = make_adapter(cabinet_id, journal)
    assert adapter.wait_connected(5)
    assert presence_of(watcher)[:2] == ("online", 1)

    adapter.drop_connection()  # the network dies: no DISCONNECT packet

    assert presence_of(watcher)[:2] == ("offline", 1)  # the broker's last will
    assert presence_of(watcher)[:2] == ("online", 2)
    connects: list[int] = []
    while len(connects) < 2:
        event = inbox.get(timeout=5)
        if isinstance(event, Connected):
            connects.append(event.connection)
    assert connects == [1, 2]


def test_clean_stop_leaves_offline_retained_with_the_last_connection_number(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory, observe: ObserverFactory
) -> None:
    adapter, _ = make_adapter(cabinet_id, journal)
    assert adapter.wait_connected(5)
    adapter.stop()

    late = observe(topics.presence(cabinet_id))

    assert presence_of(late) == ("offline", 1, True)


def test_connection_counter_continues_after_an_agent_restart(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory, observe: ObserverFactory
) -> None:
    first, _ = make_adapter(cabinet_id, journal)
    assert first.wait_connected(5)
    first.stop()
    watcher = observe(topics.presence(cabinet_id))
    assert presence_of(watcher)[:2] == ("offline", 1)  # retained

    second, _ = make_adapter(cabinet_id, journal)
    assert second.wait_connected(5)

    assert presence_of(watcher)[:2] == ("online", 2)


def test_every_attempt_counts_even_those_the_broker_never_answered(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory
) -> None:
    adapter, _ = make_adapter(cabinet_id, journal, port=1)  # nothing listens there

    assert wait_until(lambda: journal.meta("connection") >= 3, 5)
    adapter.stop()
    assert not adapter.connected


def test_subscriptions_are_renewed_on_every_connection(
    cabinet_id: str, journal: Journal, make_adapter: AdapterFactory, observe: ObserverFactory
) -> None:
    """Even with clean_start=False, a broker that lost the session must still deliver."""
    adapter, inbox = make_adapter(cabinet_id, journal, session_expiry=0)
    assert adapter.wait_connected(5)
    adapter.drop_connection()
    assert wait_until(lambda: journal.meta("connection") == 2, 5)  # the old one is marked down
    assert adapter.wait_connected(5)  # and every SUBSCRIBE of the new one acknowledged

    server = observe()
    server.publish(topics.cmd(cabinet_id), json.dumps({"hello": 1}).encode())

    deadline = time.monotonic() + 5
    while True:
        event = inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(event, Received):
            break
    assert event.topic == topics.cmd(cabinet_id)
