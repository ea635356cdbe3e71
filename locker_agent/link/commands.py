"""Received ``cmd`` messages: guard → "received" → one door action → durable final result.

* Every ``cmd`` payload goes through :class:`~locker_agent.link.guard.CommandGuard`
  inside a journal transaction. A rejection is journaled in that same transaction as a
  custody ``alarm`` (kind ``command_rejected``; the reason, never any secret) together
  with its final ``cmd/res`` — every refusal is audited and reported, through the
  :class:`~locker_agent.link.refusals.RefusalRecorder`: beyond its limit per window,
  refusals that anyone on the broker could cause are only counted (one summary alarm per
  window) and get no ``cmd/res`` of their own. A refused command the server genuinely
  just issued (signed for us, counter above every counter seen before: ``expired``,
  ``rate_limited``, ``unknown_door``, ``maintenance_required``) is never limited, so it
  is always answered; a flood cannot make the server see such a refusal as an unanswered
  command (``outcome_unknown``). (A genuine command that arrives behind a newer one is a
  ``replayed_counter`` like any replay: see docs/link.md, "Agent journal".)
* An accepted command has already been remembered by the guard (its id and counter are
  in the journal) before anything moves, so it can never run twice — not after a crash,
  not when the broker delivers it again. "received" is sent at once; the door action
  runs on a single executor thread (the worker stays responsive); ``open_door`` is
  called ONCE and never retried; its outcome becomes the final result.
* Final results are stored in the journal before they are published and deleted only
  when the server's signed ``evt/ack`` names them (``result_ids``), as events are: a
  broker PUBACK is not that, because a broker that restarts drops what it acknowledged
  before the server subscribed again. A crash between the door opening and the report
  still reports it after the restart. Results are published again after every reconnect
  and when no acknowledgement came for ``ack_timeout``; the server applies each once.
  "received" is sent once and not kept: the final result tells the server all of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from locker_agent.doors import DoorController, OpenOutcome, OpenResult
from locker_agent.journal import Journal, JournalTx
from locker_agent.link.errors import LinkDown, OutgoingQueueFull
from locker_agent.link.guard import Accept, CommandGuard, Reject
from locker_agent.link.guard_store import JournalGuardStore
from locker_agent.link.mqtt import Outgoing
from locker_agent.link.refusals import RefusalRecorder
from locker_contract import (
    CommandMessage,
    CommandResult,
    RejectReason,
    encode,
    new_envelope,
    topics,
)

logger = logging.getLogger(__name__)

Status = Literal["received", "succeeded", "failed", "rejected", "expired"]
Outcome = Literal["confirmed", "jammed", "outcome_unknown", "rate_limited"]

_OUTCOMES: dict[OpenOutcome, Outcome] = {
    OpenOutcome.CONFIRMED: "confirmed",
    OpenOutcome.JAMMED: "jammed",
    OpenOutcome.OUTCOME_UNKNOWN: "outcome_unknown",
    OpenOutcome.RATE_LIMITED: "rate_limited",
}

#: Refusals anyone who can publish on the broker can cause at any rate: no signature of
#: ours, not for us, or a genuine command played again. They count toward the limit.
_FLOODABLE: frozenset[RejectReason] = frozenset(
    {
        RejectReason.RETAINED,
        RejectReason.MALFORMED,
        RejectReason.UNKNOWN_KEY,
        RejectReason.BAD_SIGNATURE,
        RejectReason.WRONG_CABINET,
        RejectReason.REPLAYED_COUNTER,
        RejectReason.DUPLICATE_COMMAND,
    }
)


@dataclass(frozen=True, slots=True)
class ResultReady:
    """Posted to the worker's inbox when an executed command's result is journaled."""

    command_id: str


def result_message(
    cabinet_id: str,
    command_id: str,
    status: Status,
    *,
    reason: str | None = None,
    outcome: Outcome | None = None,
    counter: int | None = None,
) -> bytes:
    body = CommandResult(
        command_id=command_id, status=status, reason=reason, outcome=outcome, counter=counter
    )
    return encode(new_envelope(cabinet_id, body))


class CommandRunner:
    """Decides (worker thread), executes (executor thread) and reports commands."""

    def __init__(
        self,
        cabinet_id: str,
        guard: CommandGuard,
        journal: Journal,
        doors: DoorController,
        notify: Callable[[ResultReady], None],
        *,
        refusals: RefusalRecorder | None = None,
        ack_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``refusals`` is shared with the runtime's other inbound checks (one limit per
        alarm kind, one flush at close); ``ack_timeout``: a final result nobody
        acknowledged for this long is published again (the outbox's value for events)."""
        self.cabinet_id = cabinet_id
        self._guard = guard
        self._journal = journal
        self.refusals = refusals or RefusalRecorder(journal)
        # the guard's counter as the runtime stores it (the guard keeps its store private)
        self._counters = JournalGuardStore(journal)
        self._doors = doors
        self._notify = notify
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="door-command")
        self._ack_timeout = ack_timeout
        self._clock = clock
        #: result message id → when it was last published (since the last reconnect)
        self._sent_at: dict[str, float] = {}

    def close(self) -> None:
        """Let a running door action finish (its result is journaled), start no more;
        journal the summary of refusals counted but not yet summed up."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.refusals.flush_all()

    # -- deciding (worker thread) ---------------------------------------------------

    def receive(
        self, payload: bytes, *, retained: bool, publish: Callable[[Outgoing], int]
    ) -> None:
        with self._journal.transaction() as tx:
            highest_counter = self._counters.last_counter()
            decision = self._guard.check(payload, retained=retained)
            if isinstance(decision, Reject):
                self._journal_rejection(
                    tx, decision, _is_new_from_server(decision, highest_counter)
                )
                return
        self._acknowledge_receipt(decision, publish)
        future = self._executor.submit(self._execute, decision.envelope)
        future.add_done_callback(self._log_failure)

    def _journal_rejection(self, tx: JournalTx, rejection: Reject, new: bool) -> None:
        command = rejection.command_id or "unidentified"
        detail = f"{rejection.reason.value}: command {command}"
        reason = rejection.reason.value
        if not self.refusals.record(tx, "command_rejected", reason, detail, limited=not new):
            return  # counted for the window's summary alarm; no result of its own
        logger.warning("command %s rejected: %s", command, reason)
        if rejection.command_id is None:
            return  # nothing the server could match a result to
        status: Status = "expired" if rejection.reason is RejectReason.EXPIRED else "rejected"
        payload = result_message(
            self.cabinet_id,
            rejection.command_id,
            status,
            reason=rejection.reason.value,
            outcome="rate_limited" if rejection.reason is RejectReason.RATE_LIMITED else None,
            counter=rejection.counter,
        )
        tx.save_result(rejection.command_id, status, payload)

    def _acknowledge_receipt(self, accepted: Accept, publish: Callable[[Outgoing], int]) -> None:
        body = accepted.envelope.body
        payload = result_message(self.cabinet_id, body.command_id, "received", counter=body.counter)
        try:
            publish(Outgoing(topics.cmd_res(self.cabinet_id), payload))
        except (LinkDown, OutgoingQueueFull) as exc:  # the final result still follows
            logger.info("could not send 'received' for %s: %s", body.command_id, exc)

    # -- executing (executor thread) --------------------------------------------------

    def _execute(self, envelope: CommandMessage) -> None:
        body = envelope.body
        status, outcome, reason = self._act(envelope)
        payload = result_message(
            self.cabinet_id,
            body.command_id,
            status,
            reason=reason,
            outcome=outcome,
            counter=body.counter,
        )
        with self._journal.transaction() as tx:
            tx.save_result(body.command_id, status, payload)
        logger.info("command %s (%s): %s %s", body.command_id, body.action, status, outcome)
        self._notify(ResultReady(body.command_id))

    def _act(self, envelope: CommandMessage) -> tuple[Status, Outcome | None, str | None]:
        body = envelope.body
        if body.action == "ping":
            return "succeeded", None, None
        if body.action == "open_door" and body.door is not None:
            return _verdict([self._doors.open_door(body.door)])
        results = [self._doors.open_door(door) for door in self._doors.layout.doors]
        return _verdict(results)

    @staticmethod
    def _log_failure(future: Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            logger.error("door command failed", exc_info=future.exception())

    # -- reporting (worker thread) ----------------------------------------------------

    def restart(self) -> None:
        """After a reconnect every stored result is published again."""
        self._sent_at.clear()

    def publish_results(self, publish: Callable[[Outgoing], int]) -> None:
        """Publish every stored final result not yet published, or published
        ``ack_timeout`` ago without an acknowledgement."""
        # the worker's publishing pass is the runtime's tick (every TICK while connected):
        # a refusal window that ended with no refusal after it is summed up here
        self.refusals.flush_ended()
        now = self._clock()
        for result in self._journal.pending_results():
            if not self._due(result.message_id, now):
                continue
            try:
                publish(Outgoing(topics.cmd_res(self.cabinet_id), result.payload))
            except (LinkDown, OutgoingQueueFull):
                return
            self._sent_at[result.message_id] = now

    def _due(self, message_id: str, now: float) -> bool:
        sent_at = self._sent_at.get(message_id)
        if sent_at is None:
            return True
        if now - sent_at < self._ack_timeout:
            return False
        logger.info(
            "no ack for result %s in %.0f s: publishing it again", message_id, now - sent_at
        )
        return True

    def acknowledged(self, result_ids: list[str]) -> int:
        """The server has these results (a signed ``evt/ack``): forget them."""
        for message_id in result_ids:
            self._sent_at.pop(message_id, None)
        return self._journal.acknowledge_results(result_ids)


def _is_new_from_server(rejection: Reject, highest_counter: int) -> bool:
    """A refusal of a command the server signed for us and issued after every command
    seen so far: it happens at most once per genuine command, so it needs no limit."""
    if rejection.reason in _FLOODABLE or rejection.counter is None:
        return False
    return rejection.counter > highest_counter


def _verdict(results: list[OpenResult]) -> tuple[Status, Outcome | None, str | None]:
    """One result for one or many doors: succeeded only if every door was seen open."""
    failed = [r for r in results if r.outcome is not OpenOutcome.CONFIRMED]
    if not failed:
        return "succeeded", "confirmed", None
    worst = failed[0]
    if all(r.outcome is OpenOutcome.RATE_LIMITED for r in failed):
        return "rejected", "rate_limited", RejectReason.RATE_LIMITED.value
    doors = ", ".join(str(r.door) for r in failed)
    if all(r.outcome is OpenOutcome.BOARD_UNAVAILABLE for r in failed):
        # nothing was sent: no door outcome to report, only why
        return "failed", None, f"board_unavailable: no unlock sent: door {doors}"[:200]
    return "failed", _OUTCOMES.get(worst.outcome), f"not seen open: door {doors}"[:200]
