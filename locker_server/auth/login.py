"""Password login: one answer for unknown user and wrong password, and a throttle.

The throttle counts failures in a sliding window (in memory: good enough for one server
process; several processes get one window each, which still bounds guessing) per
(account, address) pair, per account and per address. The rule, chosen so an attacker
cannot lock staff out:

* An address that has **no** failure for an account within the window is always
  checked: a correct password from a clean address logs in, however busy the attacker.
* An address that has failed for an account is refused without a check (429) once the
  pair has ``max_per_pair`` failures, or the account ``max_per_user`` (from any
  address: distributed guessing), or the address ``max_per_source`` (for any account:
  spraying). A throttled address thus gets at most one guess per account per window.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session, select

from locker_server.auth.errors import LoginRefused, TooManyAttempts
from locker_server.auth.models import User
from locker_server.auth.passwords import verify_password


def authenticate_user(session: Session, username: str, password: str) -> User:
    """The active user with this password, else ``LoginRefused`` (same message either way)."""
    user = session.exec(select(User).where(User.username == username)).first()
    matched = verify_password(user.password_hash if user else None, password)
    if user is None or not matched:
        raise LoginRefused(user_id=user.id if user else None, reason="wrong credentials")
    if not user.active:
        raise LoginRefused(user_id=user.id, reason="user deactivated")
    return user


def username_fingerprint(key: bytes, username: str) -> str:
    """A keyed hash of a login name: links repeated failures without storing the name."""
    digest = hmac.new(key, b"login-name\x00" + username.encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


@dataclass
class LoginThrottle:
    """Sliding windows of failed logins; see the module docstring for the rule."""

    max_per_pair: int = 5
    max_per_user: int = 50
    max_per_source: int = 20
    window_seconds: float = 900.0
    max_buckets: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, username: str, source: str | None) -> None:
        """Raise ``TooManyAttempts`` (with ``retry_after``) if this attempt is not checked."""
        with self._lock:
            wait = self._wait(_buckets(username, source))
        if wait is not None:
            raise TooManyAttempts("too many failed logins; try again later", retry_after=wait)

    def record_failure(self, username: str, source: str | None) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_buckets:
                self._forget_expired()
            for bucket in _buckets(username, source):
                self._failures[bucket].append(now)

    def record_success(self, username: str, source: str | None) -> None:
        """A correct password clears the pair's failures (the account's and the address's
        stay: they bound guessing by others)."""
        with self._lock:
            self._failures.pop(_buckets(username, source)[0], None)

    def _wait(self, buckets: tuple[str, str, str]) -> int | None:
        """Seconds until the attempt would be checked again, or ``None`` if it is checked now."""
        pair, user, address = buckets
        if self._count(pair) == 0:
            return None
        limits = (
            (pair, self.max_per_pair),
            (user, self.max_per_user),
            (address, self.max_per_source),
        )
        if all(self._count(bucket) < limit for bucket, limit in limits):
            return None
        # Free again when the pair's failures have all expired or a full bucket drops below
        # its limit, whichever comes first.
        waits = [self._until_expired(pair, 1)]
        waits += [self._until_expired(b, n) for b, n in limits if self._count(b) >= n]
        return max(1, math.ceil(min(waits)))

    def _until_expired(self, bucket: str, limit: int) -> float:
        """Seconds until ``bucket`` holds fewer than ``limit`` failures."""
        window = self._failures[bucket]
        deciding = window[len(window) - limit]
        return deciding + self.window_seconds - self.clock()

    def _forget_expired(self) -> None:
        # Bounds memory when many names are tried: drop buckets with no recent failure.
        for bucket in list(self._failures):
            if self._count(bucket) == 0:
                del self._failures[bucket]

    def _count(self, bucket: str) -> int:
        window = self._failures.get(bucket)
        if window is None:
            return 0
        horizon = self.clock() - self.window_seconds
        while window and window[0] < horizon:
            window.popleft()
        return len(window)


def _buckets(username: str, source: str | None) -> tuple[str, str, str]:
    # "\x00" cannot occur in an address, so "a\x00b" never collides with another pair.
    address = source or "unknown"
    return f"p:{username}\x00{address}", f"u:{username}", f"s:{address}"
