"""An intruder changes the database directly; verification names the first bad entry and how.

The log has 25 entries with signed checkpoints at 1, 11 and 21 (see ``audit_log``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from locker_server.audit import AuditLog, VerificationReport
from locker_server.audit.models import AuditEntry
from locker_server.db import session_scope
from tests.audit.conftest import (
    FakeClock,
    entry_hash_at,
    forged_entry,
    insert_entry,
    sample_event,
)

Tamper = Callable[..., None]
FORGED_TIME = datetime(2026, 11, 26, 9, 0, 0, 500000, tzinfo=UTC)


@pytest.fixture
def log_of_25(filled: Callable[[int], None]) -> None:
    filled(25)


def _verify(engine: Engine, audit_log: AuditLog) -> VerificationReport:
    with session_scope(engine) as session:
        return audit_log.verify(session)


def _assert_found(report: VerificationReport, kind: str, first_bad_seq: int) -> None:
    assert not report.ok
    assert (report.kind, report.first_bad_seq) == (kind, first_bad_seq), report


@pytest.mark.usefixtures("log_of_25")
def test_edited_outcome_is_found_at_that_entry(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper("UPDATE audit_entries SET outcome = 'denied' WHERE seq = 7")

    _assert_found(_verify(engine, audit_log), "edited", 7)


@pytest.mark.usefixtures("log_of_25")
def test_edit_with_its_hash_recomputed_is_found_at_that_entry(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    prev = entry_hash_at(engine, 6)
    forged = forged_entry(7, prev, FORGED_TIME)
    tamper("DELETE FROM audit_entries WHERE seq = 7", insert_entry(forged))

    _assert_found(_verify(engine, audit_log), "edited", 7)


@pytest.mark.usefixtures("log_of_25")
def test_deleted_entry_is_found_as_a_gap(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper("DELETE FROM audit_entries WHERE seq = 13")

    _assert_found(_verify(engine, audit_log), "deleted", 13)


@pytest.mark.usefixtures("log_of_25")
def test_deletion_hidden_by_renumbering_is_still_found_as_deleted(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper(
        "DELETE FROM audit_entries WHERE seq = 13",
        "UPDATE audit_entries SET seq = -(seq - 1) WHERE seq > 13",
        "UPDATE audit_entries SET seq = -seq WHERE seq < 0",
    )

    _assert_found(_verify(engine, audit_log), "deleted", 13)


@pytest.mark.usefixtures("log_of_25")
def test_inserted_forged_entry_is_found_at_its_position(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    forged = forged_entry(8, entry_hash_at(engine, 7), FORGED_TIME)
    tamper(
        "UPDATE audit_entries SET seq = -(seq + 1) WHERE seq >= 8",
        "UPDATE audit_entries SET seq = -seq WHERE seq < 0",
        insert_entry(forged),
    )

    _assert_found(_verify(engine, audit_log), "inserted", 8)


@pytest.mark.usefixtures("log_of_25")
def test_inserted_entry_with_a_made_up_link_is_found_at_its_position(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    forged = forged_entry(8, "ab" * 32, FORGED_TIME)
    tamper(
        "UPDATE audit_entries SET seq = -(seq + 1) WHERE seq >= 8",
        "UPDATE audit_entries SET seq = -seq WHERE seq < 0",
        insert_entry(forged),
    )

    _assert_found(_verify(engine, audit_log), "inserted", 8)


@pytest.mark.usefixtures("log_of_25")
def test_swapped_entries_are_found_as_reordered(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper(
        "UPDATE audit_entries SET seq = -1 WHERE seq = 16",
        "UPDATE audit_entries SET seq = 16 WHERE seq = 17",
        "UPDATE audit_entries SET seq = 17 WHERE seq = -1",
    )

    _assert_found(_verify(engine, audit_log), "reordered", 16)


@pytest.mark.usefixtures("log_of_25")
def test_tail_cut_behind_a_signed_checkpoint_is_found_as_truncated(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper("DELETE FROM audit_entries WHERE seq >= 18")

    report = _verify(engine, audit_log)
    _assert_found(report, "truncated", 18)
    assert report.entries_checked == 17


@pytest.mark.usefixtures("log_of_25")
def test_tail_cut_after_the_last_checkpoint_is_found_by_the_chain_head(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper("DELETE FROM audit_entries WHERE seq >= 23")

    _assert_found(_verify(engine, audit_log), "truncated", 23)


@pytest.mark.usefixtures("log_of_25")
def test_whole_log_truncated_is_found(engine: Engine, audit_log: AuditLog, tamper: Tamper) -> None:
    tamper("DELETE FROM audit_entries")

    _assert_found(_verify(engine, audit_log), "truncated", 1)


@pytest.mark.usefixtures("log_of_25")
def test_entries_appended_around_the_chain_head_are_found_as_inserted(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    forged = forged_entry(26, entry_hash_at(engine, 25), FORGED_TIME)
    tamper(insert_entry(forged))

    _assert_found(_verify(engine, audit_log), "inserted", 26)


@pytest.mark.usefixtures("log_of_25")
def test_recomputed_chain_is_caught_by_the_signed_checkpoint(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    """The intruder edits entry 5 and recomputes every later hash; only signatures catch it."""
    statements: list[object] = ["DELETE FROM audit_entries WHERE seq >= 5"]
    prev = entry_hash_at(engine, 4)
    for seq in range(5, 26):
        forged = forged_entry(seq, prev, FORGED_TIME)
        statements.append(insert_entry(forged))
        prev = forged["entry_hash"]
    tamper(*statements, "UPDATE audit_head SET entry_hash = :tip", tip=prev)

    report = _verify(engine, audit_log)
    _assert_found(report, "rewritten", 2)
    assert "11" in report.message


@pytest.mark.usefixtures("log_of_25")
def test_checkpoint_moved_to_another_hash_fails_its_signature(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper(
        "UPDATE audit_checkpoints SET entry_hash = :other WHERE seq = 11",
        other=entry_hash_at(engine, 12),
    )

    _assert_found(_verify(engine, audit_log), "bad_checkpoint_signature", 11)


@pytest.mark.usefixtures("log_of_25")
def test_checkpoint_signed_with_an_untrusted_key_is_reported(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper("UPDATE audit_checkpoints SET key_id = :other WHERE seq = 21", other="cd" * 32)

    _assert_found(_verify(engine, audit_log), "unknown_checkpoint_key", 21)


@pytest.mark.usefixtures("log_of_25")
def test_untouched_log_reports_every_checkpoint_checked(
    engine: Engine, audit_log: AuditLog
) -> None:
    report = _verify(engine, audit_log)

    assert report.ok
    assert (report.kind, report.first_bad_seq) == (None, None)
    assert (report.checkpoints_checked, report.latest_checkpoint_seq) == (3, 21)
    assert (report.last_seq, report.last_entry_hash) == (25, entry_hash_at(engine, 25))


# --- junk rows: reported at their own position, never at the entry before them -----------------


@pytest.mark.usefixtures("log_of_25")
def test_junk_entry_appended_past_the_chain_head_is_found_at_its_own_position(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    junk = forged_entry(26, "ab" * 32, FORGED_TIME)  # self-consistent, linked to nothing
    tamper(insert_entry(junk))

    _assert_found(_verify(engine, audit_log), "inserted", 26)


@pytest.mark.usefixtures("log_of_25")
def test_entry_replaced_by_junk_is_found_at_that_entry_not_the_one_before(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    junk = forged_entry(8, "ab" * 32, FORGED_TIME)
    tamper("DELETE FROM audit_entries WHERE seq = 8", insert_entry(junk))

    _assert_found(_verify(engine, audit_log), "edited", 8)


@pytest.mark.usefixtures("log_of_25")
def test_junk_row_slipped_in_with_a_bad_hash_is_found_as_inserted_at_its_position(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    junk = forged_entry(8, entry_hash_at(engine, 7), FORGED_TIME)
    junk["entry_hash"] = "ef" * 32  # not the hash of anything
    tamper(
        "UPDATE audit_entries SET seq = -(seq + 1) WHERE seq >= 8",
        "UPDATE audit_entries SET seq = -seq WHERE seq < 0",
        insert_entry(junk),
    )

    _assert_found(_verify(engine, audit_log), "inserted", 8)


@pytest.mark.usefixtures("log_of_25")
def test_last_entry_edited_and_rehashed_is_still_blamed_on_itself(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    """Entry 24 rehashed, entry 25 still chained to its old hash, the head to 25."""
    forged = forged_entry(24, entry_hash_at(engine, 23), FORGED_TIME)
    tamper("DELETE FROM audit_entries WHERE seq = 24", insert_entry(forged))

    _assert_found(_verify(engine, audit_log), "edited", 24)


# --- checkpoints removed: the cadence says where one is missing ---------------------------------


@pytest.mark.usefixtures("log_of_25")
def test_history_rewritten_after_removing_the_later_checkpoints_is_found_by_the_cadence(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    """Checkpoints are due every 10 entries: deleting 11 and 21 leaves a hole the verifier sees."""
    statements: list[object] = [
        "DELETE FROM audit_checkpoints WHERE seq > 1",
        "DELETE FROM audit_entries WHERE seq >= 5",
    ]
    prev = entry_hash_at(engine, 4)
    for seq in range(5, 26):
        forged = forged_entry(seq, prev, FORGED_TIME)
        statements.append(insert_entry(forged))
        prev = forged["entry_hash"]
    tamper(
        *statements,
        "UPDATE audit_head SET entry_hash = :tip, last_checkpoint_seq = 1",
        tip=prev,
    )

    report = _verify(engine, audit_log)
    _assert_found(report, "checkpoint_missing", 11)


@pytest.mark.usefixtures("log_of_25")
def test_checkpoint_missing_after_a_quiet_spell_is_found(
    engine: Engine, audit_log: AuditLog, clock: FakeClock, tamper: Tamper
) -> None:
    """After 300 s without a checkpoint the next append signs; its removal is a finding."""
    clock.advance(301)
    with session_scope(engine) as session:
        audit_log.record(session, sample_event(26))
    tamper("DELETE FROM audit_checkpoints WHERE seq = 26")

    _assert_found(_verify(engine, audit_log), "checkpoint_missing", 26)


@pytest.mark.usefixtures("log_of_25")
def test_checkpoints_signed_on_demand_keep_the_cadence(
    engine: Engine, audit_log: AuditLog, filled: Callable[[int], None]
) -> None:
    with session_scope(engine) as session:
        audit_log.checkpoint_now(session)
    filled(12)

    assert _verify(engine, audit_log).ok


# --- rows written around the chain head never stop the log ---------------------------------------


@pytest.mark.usefixtures("log_of_25")
def test_log_keeps_appending_after_rows_written_around_its_head_and_keeps_the_evidence(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    for seq in (26, 27):
        forged = forged_entry(seq, entry_hash_at(engine, seq - 1), FORGED_TIME)
        tamper(insert_entry(forged))

    with session_scope(engine) as session:
        recorded = audit_log.record(session, sample_event(30))

    assert recorded.seq == 29
    with session_scope(engine) as session:
        alarm, entry = session.exec(
            select(AuditEntry).where(col(AuditEntry.seq) >= 28).order_by(col(AuditEntry.seq))
        ).all()
    assert (alarm.action, alarm.outcome, alarm.prev_hash) == (
        "audit.head_bypassed",
        "alarm",
        entry_hash_at(engine, 25),
    )
    assert json.loads(alarm.details) == {"first_seq": 26, "last_seq": 27}
    assert entry.parcel_id == 530
    report = _verify(engine, audit_log)
    _assert_found(report, "inserted", 26)
    assert "26..27" in report.message


@pytest.mark.usefixtures("log_of_25")
def test_batch_appends_also_step_over_rows_written_around_the_head(
    engine: Engine, audit_log: AuditLog, tamper: Tamper
) -> None:
    tamper(insert_entry(forged_entry(26, entry_hash_at(engine, 25), FORGED_TIME)))

    with session_scope(engine) as session:
        recorded = audit_log.record_many(session, [sample_event(40), sample_event(41)])

    assert [entry.seq for entry in recorded] == [28, 29]
    _assert_found(_verify(engine, audit_log), "inserted", 26)


@pytest.mark.usefixtures("log_of_25")
def test_tampering_after_an_earlier_incident_is_still_reported(
    engine: Engine, audit_log: AuditLog, tamper: Tamper, filled: Callable[[int], None]
) -> None:
    """Rows written around the head stay in the log forever; a later edit must not hide
    behind them."""
    tamper(insert_entry(forged_entry(26, entry_hash_at(engine, 25), FORGED_TIME)))
    filled(5)  # the log steps over 26: alarm at 27, entries 28..32
    tamper("UPDATE audit_entries SET outcome = 'denied' WHERE seq = 30")

    report = _verify(engine, audit_log)

    _assert_found(report, "inserted", 26)
    assert [(f.kind, f.seq) for f in report.findings] == [("inserted", 26), ("edited", 30)]


@pytest.mark.usefixtures("log_of_25")
def test_log_that_stepped_over_foreign_rows_reports_only_them(
    engine: Engine, audit_log: AuditLog, tamper: Tamper, filled: Callable[[int], None]
) -> None:
    tamper(insert_entry(forged_entry(26, "ab" * 32, FORGED_TIME)))
    filled(12)

    report = _verify(engine, audit_log)

    assert [(f.kind, f.seq) for f in report.findings] == [("inserted", 26)]
    assert report.last_seq == 39
