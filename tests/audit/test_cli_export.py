"""Security staff at the command line: verify, export, and an auditor's offline bundle check."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlmodel import col, select

from locker_server.audit import AuditLog, canonical
from locker_server.audit.export import entry_values
from locker_server.audit.models import AuditEntry
from locker_server.cli import main
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import load_keys
from tests.audit.conftest import entry_hash_at, forged_entry, insert_entry, sample_event
from tests.cli.test_cli_core import CLI

Tamper = Callable[..., None]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("LOCKER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("LOCKER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LOCKER_SECRETS_DIR", str(settings.resolved_secrets_dir))
    return settings


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _actions(engine: Engine) -> list[tuple[str, str, str | None]]:
    with session_scope(engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [(entry.action, entry.outcome, entry.channel) for entry in entries]


def _unzip(bundle: Path, into: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(into)
    return into


def _rewrite_lines(path: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    change(lines)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.usefixtures("cli_env")
def test_verify_reports_an_intact_log_and_is_itself_recorded(
    capsys: pytest.CaptureFixture[str], engine: Engine, filled: Callable[[int], None]
) -> None:
    filled(12)

    code, out, _ = _run(capsys, "audit", "verify")

    assert code == 0
    assert out.startswith("OK: the audit log is intact")
    assert "entries checked:     12" in out
    assert _actions(engine)[-1] == ("audit.verified", "success", "cli")


@pytest.mark.usefixtures("cli_env")
def test_verify_exits_1_naming_the_tampered_entry_and_kind(
    capsys: pytest.CaptureFixture[str],
    engine: Engine,
    filled: Callable[[int], None],
    tamper: Tamper,
) -> None:
    filled(12)
    tamper("DELETE FROM audit_entries WHERE seq = 4")

    code, out, _ = _run(capsys, "audit", "verify", "--json")

    report = json.loads(out)
    assert code == 1
    assert (report["ok"], report["kind"], report["first_bad_seq"]) == (False, "deleted", 4)
    assert _actions(engine)[-1] == ("audit.verified", "failure", "cli")


@pytest.mark.usefixtures("cli_env")
def test_verify_names_rows_written_around_the_head_and_the_log_keeps_working(
    capsys: pytest.CaptureFixture[str],
    engine: Engine,
    filled: Callable[[int], None],
    tamper: Tamper,
) -> None:
    filled(25)
    forged = forged_entry(26, entry_hash_at(engine, 25), datetime(2026, 11, 26, 9, tzinfo=UTC))
    tamper(insert_entry(forged))

    code, out, err = _run(capsys, "audit", "verify")

    assert code == 1, err
    assert out.startswith("TAMPERING FOUND: inserted at entry 26")
    assert _actions(engine)[-2:] == [
        ("audit.head_bypassed", "alarm", "cli"),
        ("audit.verified", "failure", "cli"),
    ]


def _sign_tip(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "audit", "checkpoint")
    assert code == 0, err


def _server_log_with_checkpoints(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's own log (witness in the data dir), with the tip signed at 5, 10, 15."""
    log = AuditLog.for_server(settings, load_keys(settings.resolved_secrets_dir))
    for number in range(1, 16):
        with session_scope(engine) as session:
            log.record(session, sample_event(number))
        if number % 5 == 0:
            _sign_tip(capsys)


def _rewrite_after_checkpoint_1(engine: Engine, tamper: Tamper) -> None:
    statements: list[object] = [
        "DELETE FROM audit_checkpoints WHERE seq > 1",
        "DELETE FROM audit_entries WHERE seq >= 3",
    ]
    prev = entry_hash_at(engine, 2)
    with engine.connect() as conn:
        last = int(conn.execute(text("SELECT max(seq) FROM audit_entries")).scalar_one())
    for seq in range(3, last + 1):
        forged = forged_entry(seq, prev, datetime(2026, 11, 26, 9, 0, 0, 200000, tzinfo=UTC))
        statements.append(insert_entry(forged))
        prev = forged["entry_hash"]
    tamper(
        *statements, "UPDATE audit_head SET entry_hash = :tip, last_checkpoint_seq = 1", tip=prev
    )


def test_verify_holds_the_database_to_the_configured_witness_file(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, engine: Engine, tamper: Tamper
) -> None:
    _server_log_with_checkpoints(cli_env, engine, capsys)
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 0, out
    assert f"witness:             4 checkpoints in {cli_env.resolved_audit_witness_path}" in out
    _rewrite_after_checkpoint_1(engine, tamper)

    code, out, _ = _run(capsys, "audit", "verify")

    assert code == 1
    assert out.startswith("TAMPERING FOUND: rewritten at entry 2")
    assert "also:                checkpoint_removed at entry 5" in out


def test_verify_takes_a_witness_copied_off_the_server(
    capsys: pytest.CaptureFixture[str],
    cli_env: Settings,
    engine: Engine,
    tamper: Tamper,
    tmp_path: Path,
) -> None:
    _server_log_with_checkpoints(cli_env, engine, capsys)
    copy = tmp_path / "offsite-witness.jsonl"
    copy.write_bytes(cli_env.resolved_audit_witness_path.read_bytes())
    cli_env.resolved_audit_witness_path.unlink()  # the intruder removed the local one too
    _rewrite_after_checkpoint_1(engine, tamper)

    code, out, _ = _run(capsys, "audit", "verify", "--json", "--witness", str(copy))

    report = json.loads(out)
    assert code == 1
    assert (report["kind"], report["first_bad_seq"]) == ("rewritten", 2)
    assert (report["witness"], report["witness_checked"]) == (str(copy), 4)


def test_bundle_carries_the_witness_and_verifies_offline(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, engine: Engine, tmp_path: Path
) -> None:
    _server_log_with_checkpoints(cli_env, engine, capsys)
    bundle = tmp_path / "all.zip"
    assert _run(capsys, "audit", "export", "--format", "bundle", "--out", str(bundle))[0] == 0

    code, out, _ = _run(capsys, "audit", "verify-bundle", str(bundle), "--json")

    report = json.loads(out)
    assert code == 0, report
    assert report["witness_checked"] == 4  # 1, 5, 10 and 15 (the tip, already signed)


def test_bundle_exported_from_a_rewritten_database_fails_offline_against_its_witness(
    capsys: pytest.CaptureFixture[str],
    cli_env: Settings,
    engine: Engine,
    tamper: Tamper,
    tmp_path: Path,
) -> None:
    _server_log_with_checkpoints(cli_env, engine, capsys)
    _rewrite_after_checkpoint_1(engine, tamper)
    bundle = tmp_path / "all.zip"
    assert _run(capsys, "audit", "export", "--format", "bundle", "--out", str(bundle))[0] == 0

    code, out, _ = _run(capsys, "audit", "verify-bundle", str(bundle), "--json")

    report = json.loads(out)
    assert code == 1
    assert (report["kind"], report["first_bad_seq"]) == ("rewritten", 5)


@pytest.mark.usefixtures("cli_env")
def test_verify_with_a_witness_path_that_does_not_exist_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "audit", "verify", "--witness", str(tmp_path / "nope.jsonl"))

    assert code == 2
    assert "no witness file" in err


@pytest.mark.usefixtures("cli_env")
def test_jsonl_export_holds_only_matching_entries_each_rehashable(
    capsys: pytest.CaptureFixture[str], engine: Engine, filled: Callable[[int], None]
) -> None:
    filled(12)  # sample_event: site 2 for odd numbers, site 1 for even ones

    code, out, _ = _run(capsys, "audit", "export", "--format", "jsonl", "--site", "1")

    entries = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [entry["seq"] for entry in entries] == [2, 4, 6, 8, 10, 12]
    for entry in entries:
        assert canonical.entry_hash(entry["prev_hash"], entry_values(entry)) == entry["entry_hash"]
    assert _actions(engine)[-1] == ("audit.exported", "success", "cli")


#: Several times a pipe's buffer (64 KiB on Linux) of JSON Lines, so the export is still
#: writing when its reader goes away.
_MORE_THAN_A_PIPE_HOLDS = 600


@pytest.mark.usefixtures("cli_env")
def test_export_into_a_reader_that_stops_after_one_line_ends_quietly_and_is_recorded(
    engine: Engine, audit_log: AuditLog
) -> None:
    with session_scope(engine) as session:
        events = [sample_event(n) for n in range(1, _MORE_THAN_A_PIPE_HOLDS + 1)]
        audit_log.record_many(session, events)

    with subprocess.Popen(
        [*CLI, "audit", "export", "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as export:  # what `locker-server audit export | head -1` does
        assert export.stdout is not None
        assert export.stderr is not None
        first = export.stdout.readline()
        export.stdout.close()
        errors = export.stderr.read()
        export.wait(timeout=60)

    assert json.loads(first)["seq"] == 1
    assert export.returncode == 1
    assert "Traceback" not in errors
    assert "BrokenPipe" not in errors
    with session_scope(engine) as session:
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc())).first()
    assert last is not None
    assert (last.action, last.channel) == ("audit.exported", "cli")
    assert json.loads(last.details)["complete"] is False


@pytest.mark.usefixtures("cli_env")
def test_csv_export_filters_by_action_prefix_and_time_and_defuses_formulas(
    capsys: pytest.CaptureFixture[str],
    engine: Engine,
    audit_log: AuditLog,
    tmp_path: Path,
) -> None:
    with session_scope(engine) as session:
        audit_log.record(session, sample_event(1, action="auth.login_failed"))
        audit_log.record(session, sample_event(2, action="auth.login", reason="=HYPERLINK(1)"))
        audit_log.record(session, sample_event(3, action="parcel.deposited"))
    out_file = tmp_path / "auth.csv"

    code, _, _ = _run(
        capsys,
        *("audit", "export", "--format", "csv", "--action", "auth.login"),
        *("--from", "2026-11-26T09:00:00", "--to", "2026-11-26T10:00:00+00:00"),
        *("--out", str(out_file)),
    )

    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert code == 0
    assert [(row["seq"], row["action"]) for row in rows] == [
        ("1", "auth.login_failed"),
        ("2", "auth.login"),
    ]
    assert rows[1]["reason"] == "'=HYPERLINK(1)"


@pytest.mark.usefixtures("cli_env")
def test_export_outside_the_time_range_is_empty_but_has_a_header(
    capsys: pytest.CaptureFixture[str], filled: Callable[[int], None]
) -> None:
    filled(3)

    code, out, _ = _run(capsys, "audit", "export", "--format", "csv", "--from", "2030-01-01")

    assert code == 0
    assert out.splitlines() == [",".join(canonical.CANONICAL_FIELDS) + ",prev_hash,entry_hash"]


@pytest.mark.usefixtures("cli_env")
def test_bad_time_and_bundle_without_a_file_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(capsys, "audit", "export", "--from", "yesterday")[0] == 2
    code, _, err = _run(capsys, "audit", "export", "--format", "bundle")
    assert code == 2
    assert "--out" in err


@pytest.mark.usefixtures("cli_env")
def test_checkpoint_command_signs_a_quiet_tail(
    capsys: pytest.CaptureFixture[str], filled: Callable[[int], None]
) -> None:
    filled(4)

    first = _run(capsys, "audit", "checkpoint")
    second = _run(capsys, "audit", "checkpoint")

    assert first[:2] == (0, "signed checkpoint at entry 4\n")
    assert "nothing to sign" in second[1]


@pytest.fixture
def parcel_bundle(
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
    filled: Callable[[int], None],
    tmp_path: Path,
) -> Path:
    """Bundle of parcel 505's entries (entry 5) from a 25-entry log; checkpoints 1, 11, 21."""
    filled(25)
    bundle = tmp_path / "parcel-505.zip"
    code, _, _ = _run(
        capsys, "audit", "export", "--format", "bundle", "--parcel", "505", "--out", str(bundle)
    )
    assert code == 0
    return bundle


def _key_id(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, _ = _run(capsys, "audit", "key-id")
    assert code == 0
    return out.splitlines()[0]


def test_filtered_bundle_verifies_offline_with_the_pinned_key(
    capsys: pytest.CaptureFixture[str],
    parcel_bundle: Path,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_id = _key_id(capsys)
    manifest = json.loads(zipfile.ZipFile(parcel_bundle).read("manifest.json"))
    monkeypatch.setenv("LOCKER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/no-database")

    code, out, _ = _run(capsys, "audit", "verify-bundle", str(parcel_bundle), "--key-id", key_id)

    assert code == 0, out
    assert out.startswith("OK: the bundle is intact and signed")
    assert (manifest["first_seq"], manifest["last_seq"], manifest["matched"]) == (5, 11, 1)
    assert "audit.exported" in [action for action, _, _ in _actions(engine)]


def test_bundle_entry_edited_in_the_zip_is_caught(
    capsys: pytest.CaptureFixture[str], parcel_bundle: Path, tmp_path: Path
) -> None:
    unpacked = _unzip(parcel_bundle, tmp_path / "unpacked")
    _rewrite_lines(unpacked / "entries.jsonl", lambda lines: lines[0].update(outcome="granted"))

    code, out, _ = _run(capsys, "audit", "verify-bundle", str(unpacked), "--json")

    report = json.loads(out)
    assert code == 1
    assert report["kind"] == "file_altered"


def test_bundle_whose_digests_were_fixed_up_fails_the_manifest_signature(
    capsys: pytest.CaptureFixture[str], parcel_bundle: Path, tmp_path: Path
) -> None:
    unpacked = _unzip(parcel_bundle, tmp_path / "unpacked")
    _rewrite_lines(unpacked / "entries.jsonl", lambda lines: lines.pop())
    manifest = json.loads((unpacked / "manifest.json").read_text())
    manifest["files"]["entries.jsonl"] = hashlib.sha256(
        (unpacked / "entries.jsonl").read_bytes()
    ).hexdigest()
    (unpacked / "manifest.json").write_text(json.dumps(manifest))

    code, out, _ = _run(capsys, "audit", "verify-bundle", str(unpacked), "--json")

    assert code == 1
    assert json.loads(out)["kind"] == "bad_manifest_signature"


def test_bundle_entry_altered_under_a_validly_signed_manifest_fails_its_hash(
    capsys: pytest.CaptureFixture[str],
    parcel_bundle: Path,
    tmp_path: Path,
    audit_log: AuditLog,
) -> None:
    """Even if the manifest signature were obtained, the chain and checkpoint still hold."""
    unpacked = _unzip(parcel_bundle, tmp_path / "unpacked")
    _rewrite_lines(unpacked / "entries.jsonl", lambda lines: lines[2].update(door_id=99))
    manifest = json.loads((unpacked / "manifest.json").read_text())
    manifest["files"]["entries.jsonl"] = hashlib.sha256(
        (unpacked / "entries.jsonl").read_bytes()
    ).hexdigest()
    manifest["signature"] = audit_log.sign_bundle_manifest(
        canonical.manifest_message(manifest)
    ).hex()
    (unpacked / "manifest.json").write_text(json.dumps(manifest))

    code, out, _ = _run(capsys, "audit", "verify-bundle", str(unpacked), "--json")

    report = json.loads(out)
    assert code == 1
    assert (report["kind"], report["first_bad_seq"]) == ("edited", 7)


def test_bundle_forged_with_another_key_fails_only_when_the_key_is_pinned(
    capsys: pytest.CaptureFixture[str], parcel_bundle: Path, tmp_path: Path
) -> None:
    real_key_id = _key_id(capsys)
    forged = tmp_path / "forged.zip"
    _reseal_with_a_new_key(parcel_bundle, forged)

    unpinned = _run(capsys, "audit", "verify-bundle", str(forged))
    pinned = _run(capsys, "audit", "verify-bundle", str(forged), "--key-id", real_key_id)

    assert unpinned[0] == 0
    assert "NOT pinned" in unpinned[1]
    assert pinned[0] == 1
    assert "untrusted_key" in pinned[1]


def _reseal_with_a_new_key(bundle: Path, forged: Path) -> None:
    """What a forger can do: re-sign every checkpoint and the manifest with their own key."""
    key = Ed25519PrivateKey.generate()
    with zipfile.ZipFile(bundle) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    checkpoints = [json.loads(line) for line in files["checkpoints.jsonl"].splitlines()]
    for checkpoint in checkpoints:
        key_id, signature = canonical.sign_checkpoint(
            key, checkpoint["seq"], checkpoint["entry_hash"], checkpoint["signed_at"]
        )
        checkpoint.update(key_id=key_id, signature=signature)
    files["checkpoints.jsonl"] = "".join(json.dumps(c) + "\n" for c in checkpoints).encode()
    files["public_key.pem"] = canonical.public_key_pem(key.public_key())
    manifest = json.loads(files["manifest.json"])
    manifest["key_id"] = canonical.key_id(key.public_key())
    for name in ("checkpoints.jsonl", "public_key.pem"):
        manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
    manifest["signature"] = key.sign(canonical.manifest_message(manifest)).hex()
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.mark.usefixtures("cli_env")
def test_verify_of_a_fresh_empty_log_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "audit", "verify")

    assert code == 0
    assert "entries checked:     0" in out


def test_verify_against_an_unmigrated_database_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKER_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    monkeypatch.setenv("LOCKER_SECRETS_DIR", str(tmp_path / "secrets"))

    code, out, err = _run(capsys, "audit", "verify")

    assert (code, out) == (1, "")
    assert "locker-server migrate" in err
