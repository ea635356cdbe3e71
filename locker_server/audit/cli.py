"""``locker-server audit ...``: verify, export, verify a bundle offline, sign a checkpoint.

Exit codes: 0 ok, 1 tampering found (or the command failed), 2 usage error. Progress of
long work goes to stderr every 100,000 entries; reports go to stdout. Every verification
and export run here is itself recorded in the log (actor ``system``/``cli``, channel
``cli``, the operating-system user in the details).
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import socket
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from locker_server.audit import export, service
from locker_server.audit.bundle import BundleReport, verify_bundle
from locker_server.audit.canonical import public_key_pem
from locker_server.audit.errors import AuditError
from locker_server.audit.events import Actor
from locker_server.audit.export import EntryFilter
from locker_server.audit.service import Reader
from locker_server.audit.verify import VerificationReport
from locker_server.cli_context import CliContext
from locker_server.db import session_scope

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
Handler = Callable[[argparse.Namespace, CliContext], int]
FORMATS = ("csv", "jsonl", "bundle")


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="verify and export the tamper-evident audit log")
    actions = audit.add_subparsers(title="audit commands", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="check the whole chain, its signatures, the checkpoint cadence and the witness",
        description="Verify the whole audit log; report the first bad entry and the kind of "
        "tampering (edited, deleted, inserted, reordered, truncated, rewritten, "
        "checkpoint_missing, checkpoint_removed, ...). Exit 0: intact; 1: tampering found "
        "or the check failed; 2: usage error.",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--witness",
        type=Path,
        metavar="PATH",
        help="witness file of signed checkpoints kept outside the database; every one must "
        "still be in the database (default: LOCKER_AUDIT_WITNESS_PATH, "
        "data_dir/audit-witness.jsonl, when it exists)",
    )
    verify.set_defaults(handler=verify_command)
    _register_export(actions)
    bundle = actions.add_parser(
        "verify-bundle",
        help="verify an export bundle offline",
        description="Verify an export bundle with nothing but the bundle: signatures, chain, "
        "checkpoints, and the server's witness lines the bundle carries.",
    )
    bundle.add_argument("path", type=Path, help="bundle zip (or unpacked directory)")
    bundle.add_argument(
        "--key-id", help="the audit key fingerprint you trust (see `audit key-id`); pins the key"
    )
    bundle.add_argument("--json", action="store_true", help="print the report as JSON")
    bundle.set_defaults(handler=verify_bundle_command)
    checkpoint = actions.add_parser("checkpoint", help="sign the current tip of the log now")
    checkpoint.set_defaults(handler=checkpoint_command)
    key = actions.add_parser("key-id", help="print the checkpoint key fingerprint and PEM")
    key.set_defaults(handler=key_id_command)


def _register_export(actions: Any) -> None:
    parser = actions.add_parser("export", help="export a filtered range (csv, jsonl, bundle)")
    parser.add_argument("--format", choices=FORMATS, default="jsonl")
    parser.add_argument(
        "--from", dest="since", type=_iso_time, metavar="ISO", help="from this time (inclusive)"
    )
    parser.add_argument(
        "--to", dest="until", type=_iso_time, metavar="ISO", help="before this time (exclusive)"
    )
    parser.add_argument(
        "--action", metavar="PREFIX", help="action prefix, e.g. parcel. or auth.login"
    )
    parser.add_argument("--site", type=int, metavar="ID")
    parser.add_argument("--cabinet", type=int, metavar="ID")
    parser.add_argument("--parcel", type=int, metavar="ID")
    parser.add_argument("--door", type=int, metavar="ID")
    parser.add_argument("--outcome", help="e.g. denied, failure, alarm")
    parser.add_argument("--actor", help="actor type, or type:id (user:3, cabinet:CAB-1)")
    parser.add_argument("--text", help="text in the action, reason or details (any case)")
    parser.add_argument(
        "--out", type=Path, metavar="PATH", help="file to write (default stdout; bundle needs it)"
    )
    parser.set_defaults(handler=export_command)


def _iso_time(text: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _reader() -> Reader:
    return Reader(
        actor=Actor(type="system", id="cli"),
        channel="cli",
        source=socket.gethostname()[:64] or None,
        details={"os_user": _os_user()},
    )


def _os_user() -> str | None:
    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):  # no passwd entry (containers)
        return None


def _progress(err: TextIO, verb: str) -> Callable[[int], None]:
    def report(count: int) -> None:
        print(f"{verb} {count:,} entries ...", file=err, flush=True)

    return report


def _translating_database_errors(handler: Handler) -> Handler:
    """Database trouble (no schema, no server) becomes a one-line error, exit 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, ctx: CliContext) -> int:
        try:
            return handler(args, ctx)
        except SQLAlchemyError as exc:
            reason = type(getattr(exc, "orig", None) or exc).__name__
            raise AuditError(
                f"cannot read the audit log ({reason}); is the database reachable and "
                "migrated (locker-server migrate)?"
            ) from exc

    return run


@_translating_database_errors
def verify_command(args: argparse.Namespace, ctx: CliContext) -> int:
    audit = ctx.audit
    if args.witness is not None and not args.witness.is_file():
        print(f"error: no witness file at {args.witness}", file=ctx.err)
        return EXIT_USAGE
    witness = args.witness or service.default_witness_path(audit)
    with session_scope(ctx.engine) as session:
        report = service.verify_log(
            audit, session, _reader(), progress=_progress(ctx.err, "verified"), witness_path=witness
        )
    if args.json:
        print(json.dumps({**report.to_dict(), "witness": _text(witness)}, indent=2), file=ctx.out)
    else:
        print(_human_report(report, witness), file=ctx.out)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _human_report(report: VerificationReport, witness: Path | None) -> str:
    witnessed = (
        f"{report.witness_checked:,} checkpoints in {witness}"
        if witness is not None
        else "none (no witness file: removed checkpoints are found by their cadence only)"
    )
    lines = [
        f"entries checked:     {report.entries_checked:,}",
        f"checkpoints checked: {report.checkpoints_checked:,} "
        f"(latest signed seq: {report.latest_checkpoint_seq})",
        f"witness:             {witnessed}",
    ]
    if report.ok:
        lines.insert(0, "OK: the audit log is intact")
        lines.append(f"last entry:          {report.last_seq} {report.last_entry_hash}")
        return "\n".join(lines)
    lines.insert(0, f"TAMPERING FOUND: {report.kind} at entry {report.first_bad_seq}")
    lines.append(f"detail:              {report.message}")
    lines.extend(
        f"also:                {finding.kind} at entry {finding.seq}: {finding.message}"
        for finding in report.findings[1:]
    )
    return "\n".join(lines)


def _entry_filter(args: argparse.Namespace) -> EntryFilter:
    return EntryFilter(
        since=args.since,
        until=args.until,
        action_prefix=args.action,
        site_id=args.site,
        cabinet_id=args.cabinet,
        parcel_id=args.parcel,
        door_id=args.door,
        outcome=args.outcome,
        actor=args.actor,
        text=args.text,
    )


@_translating_database_errors
def export_command(args: argparse.Namespace, ctx: CliContext) -> int:
    entry_filter = _entry_filter(args)
    audit = ctx.audit
    progress = _progress(ctx.err, "exported")
    if args.format == "bundle":
        if args.out is None:
            print("error: a bundle is a zip file: give --out PATH", file=ctx.err)
            return EXIT_USAGE
        summary = service.export_bundle(
            audit, ctx.engine, _reader(), entry_filter, args.out, progress=progress
        )
        print(
            f"bundle {summary.path}: entries {summary.first_seq}..{summary.last_seq} "
            f"({summary.matched} matching), {summary.checkpoints} checkpoints",
            file=ctx.err,
        )
        return EXIT_OK
    closed_early: BrokenPipeError | None = None
    with session_scope(ctx.engine) as session:
        lines = _lines(args.format, session, entry_filter, progress)
        try:
            _write_lines(lines, args.out, ctx.out)
        except BrokenPipeError as exc:  # `| head`: the entries read so far were still seen
            lines.close()
            closed_early = exc
        extra = {"complete": False} if closed_early else None
        service.record_export(
            audit, session, _reader(), entry_filter, export_format=args.format, extra=extra
        )
    if closed_early is not None:
        raise closed_early  # the CLI entry point ends quietly on a closed stdout
    return EXIT_OK


def _lines(
    export_format: str, session: Any, entry_filter: EntryFilter, progress: Callable[[int], None]
) -> Generator[str]:
    if export_format == "csv":
        return export.csv_lines(session, entry_filter, progress)
    return export.jsonl_lines(session, entry_filter, progress)


def _write_lines(lines: Iterator[str], out_path: Path | None, stdout: TextIO) -> None:
    if out_path is None:
        stdout.writelines(lines)
        stdout.flush()
        return
    with out_path.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)


def verify_bundle_command(args: argparse.Namespace, ctx: CliContext) -> int:
    """Offline: reads only the bundle, never the database or the server's keys."""
    progress = _progress(ctx.err, "verified")
    report = verify_bundle(args.path, expected_key_id=args.key_id, progress=progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2), file=ctx.out)
    else:
        print(_human_bundle_report(report, pinned=args.key_id is not None), file=ctx.out)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _human_bundle_report(report: BundleReport, *, pinned: bool) -> str:
    head = (
        "OK: the bundle is intact and signed"
        if report.ok
        else f"TAMPERING FOUND: {report.kind} at entry {report.first_bad_seq}"
    )
    pin_note = "" if pinned else "  (NOT pinned: compare it, or pass --key-id)"
    lines = [
        head,
        f"entries checked:     {report.entries_checked:,} "
        f"({report.matched:,} matching the export filter)",
        f"range:               {report.first_seq}..{report.last_seq}",
        f"checkpoints checked: {report.checkpoints_checked:,} "
        f"(witness lines checked: {report.witness_checked:,})",
        f"signing key id:      {report.key_id}{pin_note}",
    ]
    if not report.ok:
        lines.append(f"detail:              {report.message}")
    return "\n".join(lines)


@_translating_database_errors
def checkpoint_command(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        checkpoint = ctx.audit.checkpoint_now(session)
    if checkpoint is None:
        print("nothing to sign: the tip is already covered by a checkpoint", file=ctx.out)
    else:
        print(f"signed checkpoint at entry {checkpoint.seq}", file=ctx.out)
    return EXIT_OK


def key_id_command(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print what an auditor pins: the key fingerprint, then the public key PEM."""
    audit = ctx.audit
    print(audit.key_id, file=ctx.out)
    ctx.out.write(public_key_pem(audit.public_key).decode())
    return EXIT_OK
