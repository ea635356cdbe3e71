"""Which received ``cmd`` messages may be executed: the agent's command guard (sans-IO).

An attacker who can publish on the broker must never open a door (in December 2020 one
opened 2,732 lockers of a Moscow network remotely). ``CommandGuard.check`` therefore
looks at every command in a fixed order and returns ``Accept`` only if all checks pass:

1. retained flag                → ``retained``  (a retained cmd is never acted on)
2. decode and shape             → ``malformed``
3. key id among trusted keys    → ``unknown_key``
4. Ed25519 signature            → ``bad_signature``
5. cabinet id is ours           → ``wrong_cabinet``
6. door exists in our layout    → ``unknown_door``
7. expiry vs. local clock + learned offset → ``expired``
8. counter > last accepted      → ``replayed_counter``
9. command id never seen        → ``duplicate_command``
10. per-cabinet open rate       → ``rate_limited``
11. open_all maintenance token  → ``maintenance_required``

Every authentic command addressed to us (past step 5) is remembered in the
``GuardStore`` whatever the decision, so it is decided exactly once: a rejected command
replayed later is a ``replayed_counter``, never a second chance. Only accepted commands
teach the ``ClockOffset`` (an old signed command must not drag our clock back).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from locker_contract import (
    BadSignature,
    CommandMessage,
    ContractError,
    RejectReason,
    UnknownKey,
    decode,
    utc_now,
    verify_command,
)

logger = logging.getLogger(__name__)

OPEN_ACTIONS = frozenset({"open_door", "open_all"})


class GuardStore(Protocol):
    """Durable memory of commands already decided (the agent journal implements it)."""

    def last_counter(self) -> int:
        """Highest counter remembered so far; 0 before the first command."""
        ...

    def has_seen(self, command_id: str) -> bool: ...

    def remember(self, command_id: str, counter: int) -> None:
        """Record the id and raise the last counter to ``counter`` if it is higher."""
        ...


@dataclass(slots=True)
class MemoryGuardStore:
    """In-memory ``GuardStore`` for tests and the simulator."""

    counter: int = 0
    seen: set[str] = field(default_factory=set)

    def last_counter(self) -> int:
        return self.counter

    def has_seen(self, command_id: str) -> bool:
        return command_id in self.seen

    def remember(self, command_id: str, counter: int) -> None:
        self.seen.add(command_id)
        self.counter = max(self.counter, counter)


class ClockOffset:
    """Server clock minus local clock, as the median of the most recent samples.

    A sample is ``sent_at`` of a server message minus the local time it arrived; the
    median shrugs off a few delayed deliveries. Before any sample the offset is zero.
    """

    def __init__(self, max_samples: int = 15) -> None:
        self._samples: deque[float] = deque(maxlen=max_samples)

    def observe(self, server_time: datetime, local_time: datetime) -> None:
        self._samples.append((server_time - local_time).total_seconds())

    @property
    def offset(self) -> timedelta:
        samples = tuple(self._samples)  # one atomic copy: observe() may run on another thread
        if not samples:
            return timedelta(0)
        return timedelta(seconds=statistics.median(samples))

    def server_now(self, local_now: datetime) -> datetime:
        return local_now + self.offset


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """What the guard trusts and allows (from agent.toml)."""

    cabinet_id: str
    doors: frozenset[int]
    trusted_keys: Mapping[str, Ed25519PublicKey]
    maintenance_token_hash: str | None = None
    max_opens_per_window: int = 30
    rate_window_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Accept:
    """Execute this command (it has already been remembered as decided)."""

    envelope: CommandMessage

    @property
    def command_id(self) -> str:
        return self.envelope.body.command_id


@dataclass(frozen=True, slots=True)
class Reject:
    """Do not execute; report ``reason`` on cmd/res when ``command_id`` is known."""

    reason: RejectReason
    command_id: str | None
    counter: int | None = None


Decision = Accept | Reject


class CommandGuard:
    """Decides, once per received ``cmd`` payload, whether it may be executed."""

    def __init__(
        self,
        policy: GuardPolicy,
        store: GuardStore,
        clock_offset: ClockOffset | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._store = store
        self.clock_offset = clock_offset or ClockOffset()
        self._clock = clock
        self._monotonic = monotonic
        self._recent_opens: deque[float] = deque()

    def check(self, payload: bytes, *, retained: bool) -> Decision:
        """Accept or reject one received cmd payload. A rejection is logged at DEBUG here;
        the caller warns about the ones it journals (a flood is only counted, not logged
        line by line)."""
        decision = self._decide(payload, retained=retained)
        if isinstance(decision, Reject):
            logger.debug(
                "command %s rejected: %s", decision.command_id or "<unknown>", decision.reason
            )
        return decision

    def _decide(self, payload: bytes, *, retained: bool) -> Decision:
        if retained:
            return Reject(RejectReason.RETAINED, _peek_command_id(payload))
        try:
            envelope = decode(payload, CommandMessage)
        except ContractError:
            return Reject(RejectReason.MALFORMED, None)
        rejection = self._authenticate(envelope)
        if rejection is not None:
            return rejection
        return self._decide_authentic(envelope)

    def _authenticate(self, envelope: CommandMessage) -> Reject | None:
        body = envelope.body
        try:
            verify_command(envelope, self._policy.trusted_keys)
        except UnknownKey:
            return Reject(RejectReason.UNKNOWN_KEY, body.command_id, body.counter)
        except BadSignature:
            return Reject(RejectReason.BAD_SIGNATURE, body.command_id, body.counter)
        if envelope.cabinet_id != self._policy.cabinet_id:
            return Reject(RejectReason.WRONG_CABINET, body.command_id, body.counter)
        return None

    def _decide_authentic(self, envelope: CommandMessage) -> Decision:
        body = envelope.body
        reason = self._first_objection(envelope)
        if reason not in (RejectReason.REPLAYED_COUNTER, RejectReason.DUPLICATE_COMMAND):
            self._store.remember(body.command_id, body.counter)
        if reason is not None:
            return Reject(reason, body.command_id, body.counter)
        if body.action in OPEN_ACTIONS:
            self._recent_opens.append(self._monotonic())
        self.clock_offset.observe(envelope.sent_at, self._clock())
        return Accept(envelope)

    def _first_objection(self, envelope: CommandMessage) -> RejectReason | None:
        body = envelope.body
        if body.action == "open_door" and body.door not in self._policy.doors:
            return RejectReason.UNKNOWN_DOOR
        if self.clock_offset.server_now(self._clock()) >= body.expires_at:
            return RejectReason.EXPIRED
        if body.counter <= self._store.last_counter():
            return RejectReason.REPLAYED_COUNTER
        if self._store.has_seen(body.command_id):
            return RejectReason.DUPLICATE_COMMAND
        if body.action in OPEN_ACTIONS and not self._open_allowed_now():
            return RejectReason.RATE_LIMITED
        if body.action == "open_all" and not self._maintenance_ok(body.maintenance_token):
            return RejectReason.MAINTENANCE_REQUIRED
        return None

    def _open_allowed_now(self) -> bool:
        horizon = self._monotonic() - self._policy.rate_window_seconds
        while self._recent_opens and self._recent_opens[0] <= horizon:
            self._recent_opens.popleft()
        return len(self._recent_opens) < self._policy.max_opens_per_window

    def _maintenance_ok(self, token: str | None) -> bool:
        expected = self._policy.maintenance_token_hash
        if token is None or expected is None:
            return False
        presented = hashlib.sha256(token.encode()).hexdigest()
        return hmac.compare_digest(presented, expected.lower())


def _peek_command_id(payload: bytes) -> str | None:
    """The command id of a payload we will not act on, for the report only (unverified)."""
    try:
        return decode(payload, CommandMessage).body.command_id
    except ContractError:
        return None
