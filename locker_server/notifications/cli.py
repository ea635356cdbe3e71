"""``locker-server notifications ...``: run the delivery worker, list and resend messages.

Exit codes: 0 ok, 1 failure (e.g. no such message, not resendable), 2 usage error.
Destinations are printed masked, as in the API.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import threading
from typing import Any

from locker_server.audit import Actor, AuditEvent
from locker_server.cli_context import CliContext
from locker_server.db import session_scope
from locker_server.notifications.models import NotificationMessage, Status
from locker_server.notifications.outbox import (
    MessageFilter,
    list_messages,
    mask_destination,
    resend,
)
from locker_server.notifications.worker import NotificationWorker

EXIT_OK = 0
_CLI_ACTOR = Actor(type="system", id="cli")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def register(subparsers: Any) -> None:
    top = subparsers.add_parser("notifications", help="deliver, list and resend notifications")
    actions = top.add_subparsers(title="notifications commands", metavar="ACTION", required=True)
    worker = actions.add_parser("run-worker", help="deliver queued email, SMS and webhooks")
    worker.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    worker.add_argument("--poll", type=float, default=5.0, help="idle wait in seconds")
    worker.set_defaults(handler=run_worker_command)
    listing = actions.add_parser("list", help="list notifications, newest first")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only failed deliveries")
    which.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=list_command)
    again = actions.add_parser("resend", help="queue a failed notification again")
    again.add_argument("id", type=int, help="notification id (see `notifications list`)")
    again.set_defaults(handler=resend_command)


def run_worker_command(args: argparse.Namespace, ctx: CliContext) -> int:
    worker = NotificationWorker(
        ctx.engine, ctx.settings, ctx.keys, audit=ctx.audit, poll_seconds=args.poll
    )
    if args.once:
        print(f"{worker.run_once()} delivery attempts", file=ctx.out)
        return EXIT_OK
    logging.getLogger("locker_server").setLevel(logging.INFO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        worker.run_forever(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _row(message: NotificationMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status,
        "kind": message.kind,
        "event": message.event,
        "parcel_id": message.parcel_id,
        "attempts": message.attempts,
        "destination": mask_destination(message.kind, message.destination),
        "next_attempt_at": message.next_attempt_at.isoformat(),
        "last_error": message.last_error,
    }


def list_command(args: argparse.Namespace, ctx: CliContext) -> int:
    status = Status.failed if args.failed else (Status(args.status) if args.status else None)
    with session_scope(ctx.engine) as session:
        rows = [_row(m) for m in list_messages(session, MessageFilter(status), limit=args.limit)]
    for row in rows:
        if args.json:
            print(json.dumps(row, ensure_ascii=False), file=ctx.out)
        else:
            print(
                "{id:>6} {status:<9} {kind:<7} {event:<18} tries={attempts} {destination}"
                " {last_error}".format(**row | {"last_error": row["last_error"] or ""}),
                file=ctx.out,
            )
    return EXIT_OK


def resend_command(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        message = resend(session, args.id)
        ctx.audit.record(
            session,
            AuditEvent(
                action="notification.resent",
                actor=_CLI_ACTOR,
                outcome="success",
                channel="cli",
                parcel_id=message.parcel_id,
                recipient_id=message.recipient_id,
                details={"message_id": message.id, "os_user": getpass.getuser()},
            ),
        )
    print(f"notification {args.id} queued again", file=ctx.out)
    return EXIT_OK
