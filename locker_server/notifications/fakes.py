"""In-memory channels beside the real ones, for tests of code that sends notifications.

Each records what it was given and can be told to refuse the next sends, so callers can
test their retry paths without a mail server or gateway.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from locker_server.notifications.errors import DeliveryError


@dataclass
class _Recorder:
    #: Errors raised by the next sends, in order, before sends succeed again.
    failures: list[DeliveryError] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _maybe_fail(self) -> None:
        with self._lock:
            error = self.failures.pop(0) if self.failures else None
        if error is not None:
            raise error


@dataclass
class RecordingEmailTransport(_Recorder):
    sent: list[EmailMessage] = field(default_factory=list)

    def send(self, message: EmailMessage) -> None:
        self._maybe_fail()
        with self._lock:
            self.sent.append(message)


@dataclass
class RecordingSmsGateway(_Recorder):
    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, phone: str, text: str) -> None:
        self._maybe_fail()
        with self._lock:
            self.sent.append((phone, text))


@dataclass
class RecordingWebhookPoster(_Recorder):
    sent: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        self._maybe_fail()
        with self._lock:
            self.sent.append((url, dict(headers), body))
