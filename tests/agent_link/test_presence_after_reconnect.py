"""After a reconnect the broker's retained presence is the NEW connection's online.

paho re-sends the previous connection's unacknowledged PUBLISHes after every CONNACK; an
online announcement among them is stale. These tests leave one unacknowledged for real —
the connection is cut, or the broker frozen and killed, right after a CONNACK, before the
announcement's PUBACK can be read — and then check what a fresh subscriber (a restarted
server, an operator tool) reads from the broker.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from locker_agent.journal import Journal
from locker_agent.link.mqtt import Connected, LinkEvent, MqttAdapter
from locker_agent.link.presence import PresenceCounter, presence_message
from locker_contract import PresenceMessage, decode, topics
from simulators.mosquitto import PrivateMosquitto
from tests.agent_link.conftest import (
    PRIVATE_CABINET,
    PRIVATE_PASSWORD,
    ObserverFactory,
    fast_settings,
)
from tests.link_support.clients import TestClient, connect

Presence = tuple[str, int]
#: how long the broker must stay silent before we take its last presence as settled
QUIET = 0.5


class AtNextConnect:
    """The adapter's ``post``: runs ``action`` at the first ``Connected`` once armed.

    ``Connected`` is posted from paho's network thread after the online announcement was
    handed to paho and before the thread reads anything else, so whatever ``action`` does
    (cut the connection, freeze the broker) the announcement's PUBACK cannot arrive.
    """

    def __init__(self, *, armed: bool = True) -> None:
        self.events: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        self.action: Callable[[], None] = lambda: None
        self.armed = armed

    def __call__(self, event: LinkEvent) -> None:
        if self.armed and isinstance(event, Connected):
            self.armed = False
            self.action()
        self.events.put(event)

    def next_connection(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(event, Connected):
                return event.connection


AdapterStarter = Callable[..., MqttAdapter]


@pytest.fixture
def start_adapter() -> Iterator[AdapterStarter]:
    """``start_adapter(cabinet_id, journal, hook, **settings)`` → a started adapter."""
    adapters: list[MqttAdapter] = []

    def _start(cabinet_id: str, journal: Journal, hook: AtNextConnect, **changes: Any) -> Any:
        adapter = MqttAdapter(
            fast_settings(cabinet_id, **changes),
            subscriptions=[topics.cmd(cabinet_id)],
            prepare_connect=PresenceCounter(cabinet_id, journal),
            post=hook,
        )
        adapters.append(adapter)
        return adapter

    yield _start
    for adapter in adapters:
        adapter.stop()


def presences_until_quiet(client: TestClient, timeout: float = 10.0) -> list[Presence]:
    """Every presence ``client`` receives until the broker has been quiet for ``QUIET``."""
    seen: list[Presence] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = client.next_message(QUIET)
        except queue.Empty:
            return seen
        body = decode(message.payload, PresenceMessage).body
        seen.append((body.status, body.connection))
    raise AssertionError(f"the broker never went quiet; presences so far: {seen}")


def retained_presence(client: TestClient, cabinet_id: str) -> tuple[str, int, bool]:
    client.subscribe(topics.presence(cabinet_id))
    message = client.next_message(5)
    body = decode(message.payload, PresenceMessage).body
    return body.status, body.connection, message.retain


def test_announcement_left_unacknowledged_by_a_lost_connection_never_overtakes_the_next(
    cabinet_id: str, journal: Journal, start_adapter: AdapterStarter, observe: ObserverFactory
) -> None:
    watcher = observe(topics.presence(cabinet_id))
    hook = AtNextConnect()
    adapter = start_adapter(cabinet_id, journal, hook)
    hook.action = adapter.drop_connection  # the network dies right after the CONNACK
    adapter.start()
    assert hook.next_connection() == 1
    assert hook.next_connection() == 2  # paho re-sends "online, 1" on this connection

    seen = presences_until_quiet(watcher)

    assert ("online", 2) in seen
    after_ours = seen[seen.index(("online", 2)) :]
    assert set(after_ours) == {("online", 2)}, f"a stale presence came after ours: {seen}"
    assert retained_presence(observe(), cabinet_id) == ("online", 2, True)


def test_announcement_waits_for_room_when_the_outgoing_queue_is_full_of_resends(
    cabinet_id: str, journal: Journal, start_adapter: AdapterStarter, observe: ObserverFactory
) -> None:
    """The re-sent "online, 1" fills a one-message queue: "online, 2" goes out once it is
    acknowledged, instead of being refused and lost."""
    hook = AtNextConnect()
    adapter = start_adapter(cabinet_id, journal, hook, max_outgoing=1)
    hook.action = adapter.drop_connection
    adapter.start()
    assert hook.next_connection() == 1
    assert hook.next_connection() == 2
    watcher = observe(topics.presence(cabinet_id))

    seen = presences_until_quiet(watcher)

    assert seen[-1] == ("online", 2), seen
    assert retained_presence(observe(), cabinet_id) == ("online", 2, True)


def test_stale_presence_reaching_the_broker_after_the_announcement_is_announced_over(
    cabinet_id: str, journal: Journal, start_adapter: AdapterStarter, observe: ObserverFactory
) -> None:
    """However a stale presence gets out after ours (here: a late "offline, 1" published
    through the adapter), the broker's PUBACK order shows it replaced ours: announce again."""
    watcher = observe(topics.presence(cabinet_id))
    hook = AtNextConnect(armed=False)
    adapter = start_adapter(cabinet_id, journal, hook)
    adapter.start()
    assert hook.next_connection() == 1
    adapter.drop_connection()
    assert hook.next_connection() == 2
    assert presences_until_quiet(watcher)[-1] == ("online", 2)

    adapter.publish(presence_message(cabinet_id, "offline", 1))

    assert presences_until_quiet(watcher) == [("offline", 1), ("online", 2)]
    assert retained_presence(observe(), cabinet_id) == ("online", 2, True)


def test_broker_crash_right_after_accepting_a_reconnect_leaves_the_newest_connection_retained(
    private_broker: PrivateMosquitto, journal: Journal, start_adapter: AdapterStarter
) -> None:
    """A restart (persisted: the session survives), then the broker freezes right after
    accepting the reconnect and is killed; the agent re-sends that announcement later."""
    broker, cabinet_id = private_broker, PRIVATE_CABINET
    hook = AtNextConnect(armed=False)
    adapter = start_adapter(
        cabinet_id,
        journal,
        hook,
        port=broker.tls_port,
        username=cabinet_id,
        password=PRIVATE_PASSWORD,
        tls=True,
        ca_file=broker.ca_file,
    )
    adapter.start()
    assert hook.next_connection() == 1
    hook.action = lambda: os.kill(_pid(broker), signal.SIGSTOP)
    hook.armed = True

    broker.restart()  # SIGTERM: Mosquitto saves the session and the retained presence
    frozen_at = hook.next_connection()  # ...and is frozen right after its CONNACK
    broker.kill()
    broker.start()
    newest = hook.next_connection()
    assert newest > frozen_at

    creds = broker.server_credentials
    with connect(broker, creds.username, creds.password) as watcher:
        watcher.subscribe(topics.presence(cabinet_id))
        seen = presences_until_quiet(watcher)
    with connect(broker, creds.username, creds.password) as reader:
        assert seen[-1] == ("online", newest), seen
        assert retained_presence(reader, cabinet_id) == ("online", newest, True)


def _pid(broker: PrivateMosquitto) -> int:
    assert broker.pid is not None
    return broker.pid
