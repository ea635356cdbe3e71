"""The durable journal: same-transaction writes, ack-only deletion, bounds, crashes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from locker_agent.journal import EventClass, Journal, event_class


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal.open(tmp_path / "journal.sqlite3", max_telemetry_events=5)
    yield opened
    opened.close()


def close_door_then_fail(journal: Journal) -> None:
    with journal.transaction() as tx:
        tx.set_door(3, "closed")
        tx.append("door.closed", door=3)
        raise RuntimeError("power fails between the two writes")


def test_event_and_the_door_change_it_describes_commit_together_or_not_at_all(
    journal: Journal,
) -> None:
    with journal.transaction() as tx:
        tx.set_door(3, "open")
        tx.append("door.opened", door=3)
    with pytest.raises(RuntimeError, match="power fails"):
        close_door_then_fail(journal)

    assert [e.type for e in journal.pending()] == ["door.opened"]
    snapshot = journal.snapshot()
    assert snapshot.doors[3].state == "open"
    assert snapshot.version == 1


def test_state_version_moves_once_per_change_and_only_up(journal: Journal) -> None:
    versions = []
    for state in ("open", "closed", "open"):
        with journal.transaction() as tx:
            tx.set_door(1, state)
            tx.set_door(2, state)
        versions.append(journal.snapshot().version)
    assert versions == [1, 2, 3]


def test_events_replay_in_order_and_leave_only_when_the_server_acknowledges(
    journal: Journal,
) -> None:
    written = [journal.append("door.opened", door=n) for n in range(1, 8)]
    assert [e.event_id for e in journal.pending()] == [e.event_id for e in written]

    deleted = journal.acknowledge([written[1].event_id, written[4].event_id, "f" * 32])

    assert deleted == 2
    left = journal.pending()
    assert [e.door for e in left] == [1, 3, 4, 6, 7]
    assert [e.seq for e in left] == sorted(e.seq for e in left)
    assert [e.door for e in journal.pending(after_seq=left[2].seq, limit=1)] == [6]


def test_full_journal_drops_the_oldest_telemetry_and_never_a_custody_event(
    journal: Journal,
) -> None:
    custody_types = ["door.opened", "deposit", "pickup", "pickup.refused", "alarm", "door.x"]
    for round_number in range(10):
        journal.append(custody_types[round_number % len(custody_types)], door=1)
        journal.append("telemetry.temperature", data={"round": round_number})

    counts = journal.counts()
    assert counts[EventClass.CUSTODY] == 10
    assert counts[EventClass.TELEMETRY] == 5
    assert journal.dropped_telemetry == 5
    kept = [e.data["round"] for e in journal.pending() if e.event_class is EventClass.TELEMETRY]
    assert kept == [5, 6, 7, 8, 9]


def test_only_explicit_telemetry_types_are_droppable() -> None:
    assert event_class("telemetry.cpu") is EventClass.TELEMETRY
    for custody in ("door.jammed", "alarm", "pickup", "telemetry", "something.new"):
        assert event_class(custody) is EventClass.CUSTODY


def test_connection_counter_increments_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    first = Journal.open(path)
    assert [first.next_connection() for _ in range(3)] == [1, 2, 3]
    first.close()
    second = Journal.open(path)
    assert second.next_connection() == 4
    second.close()


def test_files_copied_mid_run_without_a_checkpoint_hold_every_commit(tmp_path: Path) -> None:
    """A power cut: the database and its WAL as they lie on disk, never checkpointed."""
    live = Journal.open(tmp_path / "live" / "journal.sqlite3")
    ids = []
    for door in range(1, 51):
        with live.transaction() as tx:
            tx.set_door(door, "open")
            ids.append(tx.append("door.opened", door=door).event_id)
    cut = tmp_path / "cut"
    cut.mkdir()
    for name in ("journal.sqlite3", "journal.sqlite3-wal"):
        shutil.copyfile(tmp_path / "live" / name, cut / name)
    assert (cut / "journal.sqlite3-wal").stat().st_size > 0  # the commits live in the WAL

    restored = Journal.open(cut / "journal.sqlite3")
    assert [e.event_id for e in restored.pending(limit=100)] == ids
    assert restored.snapshot().version == 50
    restored.close()
    live.close()


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from locker_agent.journal import Journal

    journal = Journal.open(Path(sys.argv[1]))
    door = 0
    while True:
        door += 1
        with journal.transaction() as tx:
            tx.set_door(door, "open")
            tx.append("door.opened", door=door)
        if door == 20:
            print("ready", flush=True)  # twenty whole transactions committed; it goes on
    """
)


def test_kill_9_mid_writes_leaves_only_whole_transactions(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    command = [sys.executable, "-c", _WRITER, str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        writer.send_signal(signal.SIGKILL)  # lands in the middle of some later transaction
        assert writer.wait(timeout=10) == -signal.SIGKILL

    journal = Journal.open(path)
    events = journal.pending(limit=1_000_000)
    snapshot = journal.snapshot()
    assert len(events) >= 20
    assert [e.door for e in events] == list(range(1, len(events) + 1))
    assert set(snapshot.doors) == {e.door for e in events}
    assert snapshot.version == len(events)
    journal.close()
