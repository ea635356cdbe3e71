"""A bounded, complete record of refused inbound messages: alarms one by one, then a count.

Every refused ``cmd``, ``evt/ack`` and ``sync`` is audited as a custody ``alarm``, and
custody events are never dropped from the journal. Someone who can publish on the
cabinet's topics (a stolen server broker account) could therefore grow the journal
without bound and queue thousands of alarms ahead of real door events. So, per alarm
kind (``command_rejected``, ``ack_rejected``, ``sync_rejected``), :class:`RefusalRecorder`
journals at most :data:`ALARMS_PER_WINDOW` refusals individually per window of
:data:`WINDOW_SECONDS` (a window opens at the first refusal of that kind). The rest are
counted in memory, by reason, and summed up in ONE alarm of the same kind when the
window has ended — on the next refusal or the next :meth:`RefusalRecorder.flush_ended`
after it — or at :meth:`RefusalRecorder.flush_all` (clean shutdown)::

    {"kind": "command_rejected",
     "detail": "1234 more refused in 60 s: bad_signature 1200, replayed_counter 34"}

So a window costs at most ``ALARMS_PER_WINDOW + 1`` journal rows per kind whatever the
rate, and the number of refusals is never lost — except what is counted in memory when
the process dies without a clean stop (a power cut mid-flood): the individual alarms
journaled before it say a flood was under way.

A caller may mark a refusal as not limited (the command runner does for a refused
command the server genuinely just issued, see :mod:`locker_agent.link.commands`): it is
journaled individually and does not use up the window's budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from locker_agent.journal import Journal, JournalTx, to_contract_event

logger = logging.getLogger(__name__)

#: refusals of one kind journaled one by one per window; the rest are only counted
ALARMS_PER_WINDOW: Final = 20
#: length of a window, from the first refusal of a kind (monotonic seconds)
WINDOW_SECONDS: Final = 60.0
#: the contract's limit on an alarm's ``detail``
_MAX_DETAIL: Final = 200


@dataclass(slots=True)
class _Window:
    started: float
    journaled: int = 0
    counted: Counter[str] = field(default_factory=Counter)


class RefusalRecorder:
    """Journals refusals as ``alarm`` events, at most ``limit`` per kind and window."""

    def __init__(
        self,
        journal: Journal,
        *,
        limit: int = ALARMS_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._journal = journal
        self._limit = limit
        self._window = window
        self._monotonic = monotonic
        self._windows: dict[str, _Window] = {}
        # held inside a journal transaction, never the other way round (no lock cycle)
        self._lock = threading.Lock()

    def record(
        self, tx: JournalTx, kind: str, reason: str, detail: str, *, limited: bool = True
    ) -> bool:
        """Journal (in ``tx``) an alarm ``kind`` with ``detail``, or count it by ``reason``
        when the window already holds ``limit`` of them. True if it was journaled."""
        now = self._monotonic()
        with self._lock:
            self._summarise_ended(tx, now)
            if limited and not self._admit(kind, reason, now):
                return False
        _append_alarm(tx, kind, detail)
        return True

    def flush_ended(self) -> None:
        """Journal the summary of every window that has ended (call it now and then)."""
        with self._lock:
            now = self._monotonic()
            if not any(self._ended(window, now) for window in self._windows.values()):
                return
        with self._journal.transaction() as tx, self._lock:
            self._summarise_ended(tx, self._monotonic())

    def flush_all(self) -> None:
        """Journal the summary of every window, ended or not (clean shutdown)."""
        with self._journal.transaction() as tx, self._lock:
            for kind, window in self._windows.items():
                _summarise(tx, kind, window, self._window)
            self._windows.clear()

    def _admit(self, kind: str, reason: str, now: float) -> bool:
        window = self._windows.setdefault(kind, _Window(started=now))
        if window.journaled < self._limit:
            window.journaled += 1
            return True
        if not window.counted:
            logger.warning(
                "more than %d %s in %g s: counting the rest for one summary alarm",
                self._limit,
                kind,
                self._window,
            )
        window.counted[reason] += 1
        return False

    def _ended(self, window: _Window, now: float) -> bool:
        return now - window.started >= self._window

    def _summarise_ended(self, tx: JournalTx, now: float) -> None:
        for kind, window in list(self._windows.items()):
            if self._ended(window, now):
                _summarise(tx, kind, window, self._window)
                del self._windows[kind]


def _summarise(tx: JournalTx, kind: str, window: _Window, seconds: float) -> None:
    if window.counted:
        _append_alarm(tx, kind, summary_detail(window.counted, seconds))


def summary_detail(counted: Counter[str], seconds: float) -> str:
    """``"<total> more refused in <seconds> s: <reason> <n>, …"``, most frequent reason
    first; reasons that no longer fit in 200 characters are left out (the total stays)."""
    text = f"{counted.total()} more refused in {seconds:g} s:"
    separator = " "
    for reason, count in counted.most_common():
        part = f"{separator}{reason} {count}"
        if len(text) + len(part) > _MAX_DETAIL - len(", …"):
            return f"{text}, …"
        text += part
        separator = ", "
    return text


def _append_alarm(tx: JournalTx, kind: str, detail: str) -> None:
    # checked against the contract now, so an alarm can never block the outbox
    to_contract_event(tx.append("alarm", data={"kind": kind, "detail": detail[:_MAX_DETAIL]}))
