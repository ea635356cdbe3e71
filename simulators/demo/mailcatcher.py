"""A mail catcher: an SMTP server that keeps every message, and a page that shows them.

The server's notification worker sends the pickup e-mails to it over real SMTP
(aiosmtpd); a person reads them at ``/`` (text, and the QR image as the e-mail carries
it, at ``/messages/<n>/qr.png``), the scenario through :meth:`MailCatcher.wait_for`.
Nothing is relayed anywhere.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from aiosmtpd.controller import Controller

logger = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"


class _Inbox:
    """aiosmtpd handler: parses and keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.changed = threading.Condition()

    async def handle_DATA(  # noqa: N802  (the name aiosmtpd calls)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        if not isinstance(parsed, EmailMessage):  # policy.default always gives one
            return "554 cannot parse the message"
        with self.changed:
            self.messages.append(parsed)
            self.changed.notify_all()
        return "250 Message accepted"


class MailCatcher:
    """SMTP on ``smtp_port``, the read-only page on ``web_port``; ``start`` / ``stop``."""

    def __init__(self, *, smtp_port: int, web_port: int) -> None:
        self._inbox = _Inbox()
        self.smtp_port = smtp_port
        self._smtp = Controller(self._inbox, hostname=HOST, port=smtp_port)
        self._web = ThreadingHTTPServer((HOST, web_port), _page_handler(self))
        self._web.daemon_threads = True
        self._web_thread = threading.Thread(
            target=self._web.serve_forever, name="mail-page", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._web.server_address[1]}/"

    def start(self) -> MailCatcher:
        self._smtp.start()
        self._web_thread.start()
        return self

    def stop(self) -> None:
        self._web.shutdown()
        self._web.server_close()
        self._web_thread.join(timeout=2)
        self._smtp.stop()

    def messages(self) -> list[EmailMessage]:
        with self._inbox.changed:
            return list(self._inbox.messages)

    def wait_for(
        self, matches: Callable[[EmailMessage], bool], timeout: float
    ) -> EmailMessage | None:
        """The first message that ``matches``, waiting up to ``timeout`` s for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._inbox.changed:
            while True:
                found = next((m for m in self._inbox.messages if matches(m)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._inbox.changed.wait(remaining)


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if isinstance(part, EmailMessage) else ""


def qr_image(message: EmailMessage) -> bytes | None:
    """The PNG the e-mail carries (the pickup QR), as sent."""
    for part in message.walk():
        if part.get_content_type() == "image/png":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


def _page_handler(catcher: MailCatcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            messages = catcher.messages()
            if self.path == "/":
                self._send(200, "text/html; charset=utf-8", _page(messages).encode())
                return
            image = _qr_at(self.path, messages)
            if image is None:
                self._send(404, "text/plain", b"no such message or image")
            else:
                self._send(200, "image/png", image)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("mail page: " + format, *args)

    return Handler


def _qr_at(path: str, messages: list[EmailMessage]) -> bytes | None:
    """``/messages/<n>/qr.png`` → that message's QR image."""
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "messages" or parts[2] != "qr.png":
        return None
    if not parts[1].isdigit() or int(parts[1]) >= len(messages):
        return None
    return qr_image(messages[int(parts[1])])


def _page(messages: list[EmailMessage]) -> str:
    items = "".join(_item(number, m) for number, m in reversed(list(enumerate(messages))))
    empty = "<p>No e-mail yet. Deposit a parcel and its notification shows up here.</p>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'><title>Demo mail catcher</title>"
        "<style>body{font-family:sans-serif;max-width:50rem;margin:2rem auto}"
        "article{border:1px solid #ccc;padding:1rem;margin:1rem 0}"
        "pre{white-space:pre-wrap}</style></head><body>"
        f"<h1>Demo mail catcher</h1><p>{len(messages)} message(s); newest first. "
        "Nothing here leaves this machine.</p>"
        f"{items or empty}</body></html>"
    )


def _item(number: int, message: EmailMessage) -> str:
    def header(name: str) -> str:
        return html.escape(str(message.get(name, "")))

    image = (
        f"<p><img alt='pickup QR' width='240' src='/messages/{number}/qr.png'></p>"
        if qr_image(message) is not None
        else ""
    )
    return (
        f"<article><h2>{header('Subject')}</h2>"
        f"<p>To: {header('To')}<br>From: {header('From')}<br>Date: {header('Date')}</p>"
        f"<pre>{html.escape(body_text(message))}</pre>{image}</article>"
    )
