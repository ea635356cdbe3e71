"""Publishing from the journal: ``evt`` batches in ``seq`` order, and the ``state`` snapshot.

Runs only in the runtime's worker thread (the one that also sees ``Delivered`` and
``evt/ack``), so its bookkeeping needs no lock. Rules:

* events leave in ``seq`` order, at most 100 per message, with a bounded number waiting
  for their ``evt/ack`` (``window``); more are sent as acknowledgements arrive; each
  message names the newest older event still unacknowledged (``after_event``), so the
  server never applies it ahead of an earlier message that was lost;
* after a reconnect — or when no acknowledgement came for ``ack_timeout`` seconds —
  everything unacknowledged is published again, oldest first (same ``event_id``: the
  server keeps each event once);
* the state snapshot is published (retained) whenever its version is newer than the
  one last published, and again after every reconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from locker_agent.journal import Journal, JournalEvent, StateSnapshot, to_contract_event
from locker_agent.link.errors import LinkDown, OutgoingQueueFull
from locker_agent.link.mqtt import Outgoing
from locker_contract import (
    MAX_EVENTS_PER_MESSAGE,
    DoorSnapshot,
    EventBatch,
    State,
    encode,
    new_envelope,
    topics,
)

logger = logging.getLogger(__name__)

Publish = Callable[[Outgoing], int]


def state_message(cabinet_id: str, snapshot: StateSnapshot) -> Outgoing:
    doors = {
        str(door): DoorSnapshot(state=record.state, occupied=record.occupied)
        for door, record in snapshot.doors.items()
    }
    body = State(version=snapshot.version, doors=doors)
    return Outgoing(topics.state(cabinet_id), encode(new_envelope(cabinet_id, body)), retain=True)


class Outbox:
    """Decides what to publish next from the journal."""

    def __init__(
        self,
        cabinet_id: str,
        journal: Journal,
        publish: Publish,
        *,
        window: int = 1000,
        ack_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cabinet_id = cabinet_id
        self._journal = journal
        self._publish = publish
        self._window = window
        self._ack_timeout = ack_timeout
        self._clock = clock
        self._sent_upto = 0
        self._state_sent = 0
        self._last_progress = clock()
        self.batches_published = 0

    def restart(self) -> None:
        """After a (re)connect: everything unacknowledged goes out again."""
        self._sent_upto = 0
        self._state_sent = 0
        self._last_progress = self._clock()

    def acknowledged(self, event_ids: list[str]) -> int:
        if not event_ids:  # an ack of command results only says nothing about events
            return 0
        deleted = self._journal.acknowledge(event_ids)
        self._last_progress = self._clock()
        return deleted

    def flush(self) -> None:
        """Publish what is due; a full or lost connection just leaves it for later."""
        try:
            self._flush_state()
            self._flush_events()
        except (LinkDown, OutgoingQueueFull) as exc:
            logger.debug("outbox paused: %s", exc)

    def _flush_state(self) -> None:
        snapshot = self._journal.snapshot()
        if snapshot.version > self._state_sent:
            self._publish(state_message(self.cabinet_id, snapshot))
            self._state_sent = snapshot.version

    def _flush_events(self) -> None:
        if self._sent_upto and self._clock() - self._last_progress > self._ack_timeout:
            logger.info(
                "no evt/ack for %.0f s: publishing unacknowledged events again", self._ack_timeout
            )
            self.restart()
        while self._waiting_for_ack() < self._window:
            batch = self._journal.pending(after_seq=self._sent_upto, limit=MAX_EVENTS_PER_MESSAGE)
            if not batch:
                return
            self._publish(self._batch_message(batch))
            self._sent_upto = batch[-1].seq
            self.batches_published += 1

    def _waiting_for_ack(self) -> int:
        if not self._sent_upto:
            return 0
        return self._journal.count_pending(upto_seq=self._sent_upto)

    def _batch_message(self, batch: list[JournalEvent]) -> Outgoing:
        events: list[Any] = [to_contract_event(event) for event in batch]
        earlier = self._journal.newest_pending_before(batch[0].seq)
        body = EventBatch(events=events, after_event=earlier)
        payload = encode(new_envelope(self.cabinet_id, body))
        return Outgoing(topics.evt(self.cabinet_id), payload)
