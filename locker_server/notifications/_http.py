"""One HTTP POST with the error classification shared by the SMS and webhook channels."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from locker_server.notifications.errors import PermanentDeliveryError, TransientDeliveryError

# The receiver is busy or broken right now; anything else in 4xx means "this will never
# be accepted as it is" (bad request, gone, unauthorised with our configuration, ...).
_RETRYABLE_STATUS = frozenset({408, 425, 429})


def host_of(url: str) -> str:
    """The host only: URLs may hold tokens in their path or query, which we never log."""
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"


def post(url: str, *, content: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``content``; raise a Transient/PermanentDeliveryError unless the answer is 2xx."""
    try:
        response = httpx.post(url, content=content, headers=dict(headers), timeout=timeout)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentDeliveryError(f"unusable URL for host {host_of(url)}") from exc
    except httpx.TransportError as exc:
        raise TransientDeliveryError(f"{type(exc).__name__} from {host_of(url)}") from exc
    _raise_for_status(response.status_code, host_of(url))


def _raise_for_status(status: int, host: str) -> None:
    if 200 <= status < 300:
        return
    message = f"HTTP {status} from {host}"
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise TransientDeliveryError(message)
    raise PermanentDeliveryError(message)
