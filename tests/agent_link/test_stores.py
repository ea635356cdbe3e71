"""The journal-backed guard and allow-list stores keep their memory across a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from locker_agent.journal import Journal
from locker_agent.link.guard_store import JournalGuardStore
from locker_agent.pickup.allowlist import AllowList, Match
from locker_agent.pickup.store import JournalAllowListStore
from locker_contract import AllowListEntry, AllowListSync
from tests.agent_link.rig import PICKUP_KEY, entry
from tests.contract import messages

CODE = "31415926"


def full_list(version: int, *entries: AllowListEntry) -> AllowListSync:
    return messages.allow_list_sync(
        version=version, entries=list(entries), sent_at=datetime.now(UTC)
    ).body


def test_decided_commands_and_the_counter_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal.open(path)
    JournalGuardStore(journal).remember("a" * 32, 41)
    JournalGuardStore(journal).remember("b" * 32, 7)  # lower counter: id kept, counter not
    journal.close()

    store = JournalGuardStore(Journal.open(path))

    assert store.last_counter() == 41
    assert store.has_seen("a" * 32)
    assert store.has_seen("b" * 32)
    assert not store.has_seen("c" * 32)


def test_a_code_used_offline_stays_used_after_a_restart_and_a_stale_full_list(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal.open(path)
    allow_list = AllowList(PICKUP_KEY, JournalAllowListStore(journal))
    assert allow_list.apply(full_list(1, entry(5, 2, CODE), entry(6, 3, "27182818")))
    assert isinstance(allow_list.check(code=CODE, now=datetime.now(UTC)), Match)
    journal.close()

    journal = Journal.open(path)
    allow_list = AllowList(PICKUP_KEY, JournalAllowListStore(journal))
    assert allow_list.version == 1
    # the server has not yet stored our pickup event: its next full list still has parcel 5
    assert allow_list.apply(full_list(2, entry(5, 2, CODE), entry(6, 3, "27182818")))

    again = allow_list.check(code=CODE, now=datetime.now(UTC))
    other = allow_list.check(code="27182818", now=datetime.now(UTC))

    assert not isinstance(again, Match)
    assert isinstance(other, Match)
    assert other.parcel_ids == (6,)
    journal.close()


def test_lockout_after_repeated_wrong_codes_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal.open(path)
    allow_list = AllowList(PICKUP_KEY, JournalAllowListStore(journal))
    allow_list.apply(full_list(1, entry(8, 1, CODE)))
    for wrong in range(5):
        allow_list.check(code=f"0000000{wrong}", door=1, now=datetime.now(UTC))
    journal.close()

    journal = Journal.open(path)
    allow_list = AllowList(PICKUP_KEY, JournalAllowListStore(journal))
    verdict = allow_list.check(code=CODE, door=1, now=datetime.now(UTC))

    assert not isinstance(verdict, Match)
    assert verdict.reason == "locked_out"
    journal.close()
