"""What every ``locker-server`` sub-command handler receives.

``locker_server.cli`` builds the argument parser from the ``register(subparsers)``
functions listed in its ``COMMAND_REGISTRATIONS``; each sub-command sets
``handler=fn`` with ``fn(args: argparse.Namespace, ctx: CliContext) -> int`` (exit code).
The context is built lazily so ``--help`` never touches the database or the keys.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

from locker_server.audit import AuditLog
from locker_server.config import Settings
from locker_server.db import make_engine
from locker_server.keys import ServerKeys, load_keys

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass
class CliContext:
    settings: Settings
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def keys(self) -> ServerKeys:
        return load_keys(self.settings.resolved_secrets_dir)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog.for_server(self.settings, self.keys)
