"""SMS through a pluggable gateway.

:class:`SmsGateway` is the whole interface the worker needs; :class:`HttpSmsGateway` speaks
a plain JSON-over-HTTPS API with a bearer token, which most SMS providers (or a small
adapter in front of them) accept. The token and the text (it may hold a pickup code) are
never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from pydantic import SecretStr

from locker_server.config import Settings
from locker_server.notifications import _http

logger = logging.getLogger(__name__)


class SmsGateway(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Hand one text to the gateway; raise Transient/PermanentDeliveryError if refused."""


class HttpSmsGateway:
    """POSTs ``{"to": phone, "text": text}`` with ``Authorization: Bearer <token>``."""

    def __init__(self, url: str, token: SecretStr | None, timeout: float = 10.0) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpSmsGateway | None:
        if not settings.sms_gateway_url:
            return None
        return cls(
            settings.sms_gateway_url,
            settings.sms_gateway_token,
            settings.notification_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"HttpSmsGateway(host={_http.host_of(self._url)!r})"

    def send(self, phone: str, text: str) -> None:
        headers = {"Content-Type": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        body = json.dumps({"to": phone, "text": text}, ensure_ascii=False).encode()
        _http.post(self._url, content=body, headers=headers, timeout=self._timeout)
        logger.debug("SMS handed to gateway %s", _http.host_of(self._url))
