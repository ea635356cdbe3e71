"""The journal-backed storage behind the command guard.

:class:`JournalGuardStore` implements :class:`~locker_agent.link.guard.GuardStore` on the
journal's SQLite file. Every write goes through ``Journal.transaction()``, which is
re-entrant: when the command runner wraps a guard decision in its own transaction
together with the event that records it, both commit as one.
"""

from __future__ import annotations

from locker_agent.journal import Journal

_COUNTER = "command_counter"


class JournalGuardStore:
    """``GuardStore``: command ids already decided and the highest counter."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def last_counter(self) -> int:
        return self._journal.meta(_COUNTER)

    def has_seen(self, command_id: str) -> bool:
        with self._journal.transaction() as tx:
            rows = tx.query("SELECT 1 FROM decided_commands WHERE command_id = ?", (command_id,))
        return bool(rows)

    def remember(self, command_id: str, counter: int) -> None:
        with self._journal.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO decided_commands (command_id, counter, decided_at)"
                " VALUES (?, ?, strftime('%s', 'now'))",
                (command_id, counter),
            )
            if counter > tx.get(_COUNTER):
                tx.put(_COUNTER, counter)
