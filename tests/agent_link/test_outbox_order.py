"""Each ``evt`` message names the newest older event still unacknowledged, so the server
can tell a message that overtook a lost one from the next in line."""

from __future__ import annotations

from pathlib import Path

import pytest

from locker_agent.journal import Journal
from locker_agent.link.mqtt import Outgoing
from locker_agent.link.outbox import Outbox
from locker_contract import EventBatch, topics
from locker_contract.bodies import EventMessage
from locker_contract.envelope import decode

CABINET = "CAB-OUT-1"


class Published:
    def __init__(self) -> None:
        self.batches: list[EventBatch] = []

    def __call__(self, message: Outgoing) -> int:
        if message.topic == topics.evt(CABINET):
            self.batches.append(decode(message.payload, EventMessage).body)
        return len(self.batches)


def _journal_of(tmp_path: Path, events: int) -> Journal:
    journal = Journal.open(tmp_path / "journal.sqlite")
    for index in range(events):
        journal.append("door.opened" if index % 2 == 0 else "door.closed", door=1)
    return journal


def test_the_first_message_follows_nothing_and_each_next_one_follows_the_one_before(
    tmp_path: Path,
) -> None:
    journal = _journal_of(tmp_path, 250)
    published = Published()

    Outbox(CABINET, journal, published).flush()

    first, second, third = published.batches
    assert first.after_event is None
    assert second.after_event == first.events[-1].event_id
    assert third.after_event == second.events[-1].event_id


@pytest.mark.parametrize(
    "acknowledged", [0, 1], ids=["the first acknowledged", "the second, the first lost"]
)
def test_published_again_the_oldest_unacknowledged_message_follows_nothing(
    tmp_path: Path, acknowledged: int
) -> None:
    journal = _journal_of(tmp_path, 150)
    published = Published()
    outbox = Outbox(CABINET, journal, published)
    outbox.flush()
    batches = published.batches[:2]
    outbox.acknowledged([event.event_id for event in batches[acknowledged].events])

    outbox.restart()  # a reconnect: everything unacknowledged goes out again
    outbox.flush()

    again, left = published.batches[2], batches[1 - acknowledged]
    assert [e.event_id for e in again.events] == [e.event_id for e in left.events]
    assert again.after_event is None
