"""Password login: one answer for unknown user and wrong password, and a throttle.

The throttle is an in-memory sliding window per username and per client address
(good enough for one server process; a multi-process deployment gets one window
per process, which still bounds guessing).
"""

from __future__ import annotations

import hashlib
import hmac
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
    """At most ``max_per_user`` failures per username and ``max_per_source`` per address
    within ``window_seconds``; beyond that, logins are refused without checking."""

    max_per_user: int = 5
    max_per_source: int = 20
    window_seconds: float = 900.0
    max_buckets: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, username: str, source: str | None) -> None:
        with self._lock:
            if self._count(f"u:{username}") >= self.max_per_user:
                raise TooManyAttempts("too many failed logins; try again later")
            if source and self._count(f"s:{source}") >= self.max_per_source:
                raise TooManyAttempts("too many failed logins; try again later")

    def record_failure(self, username: str, source: str | None) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_buckets:
                self._forget_expired()
            self._failures[f"u:{username}"].append(now)
            if source:
                self._failures[f"s:{source}"].append(now)

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
