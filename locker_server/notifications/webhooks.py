"""Outbound webhooks to carriers, signed so the receiver can trust them.

Scheme (close to the Standard Webhooks proposal):

* body: ``{"id": <event id>, "type": ..., "created_at": ..., "data": {...}}`` (compact,
  sorted JSON, byte-identical on every retry);
* headers ``Webhook-Id`` (the event id, stable across retries: the receiver's idempotency
  key), ``Webhook-Timestamp`` (Unix seconds of this attempt) and
  ``Webhook-Signature: v1=<hex HMAC-SHA256 over "<id>.<timestamp>.<body>">``;
* the per-carrier secret is ``HMAC-SHA256(webhook_signing_key, "carrier:<id>")``, derived
  on demand so no secret is stored in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from locker_server.keys import ServerKeys
from locker_server.notifications import _http
from locker_server.notifications.errors import WebhookSignatureInvalid

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300.0


def carrier_webhook_secret(keys: ServerKeys, carrier_id: int) -> bytes:
    """The secret a carrier uses to verify our webhooks (give it to them as hex)."""
    label = f"carrier:{carrier_id}".encode()
    return hmac.new(keys.webhook_signing_key, label, hashlib.sha256).digest()


def webhook_body(
    event_id: str, event_type: str, created_at: datetime, data: Mapping[str, Any]
) -> bytes:
    envelope = {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat(),
        "data": dict(data),
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def signed_headers(secret: bytes, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Webhook-Id": event_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": f"{SIGNATURE_VERSION}={sign(secret, event_id, timestamp, body)}",
    }


def verify_webhook_signature(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> None:
    """Receiver side: raise :class:`WebhookSignatureInvalid` unless the request is ours.

    ``tolerance`` (seconds) bounds how old or how far in the future the timestamp may be,
    so a captured request cannot be replayed later.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    event_id, timestamp = _required(lowered, "webhook-id"), _timestamp(lowered)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureInvalid("webhook timestamp outside the tolerance window")
    expected = sign(secret, event_id, timestamp, body)
    for candidate in _required(lowered, "webhook-signature").split():
        version, _, value = candidate.partition("=")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            return
    raise WebhookSignatureInvalid("no matching webhook signature")


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookSignatureInvalid(f"missing {name} header")
    return value


def _timestamp(headers: Mapping[str, str]) -> int:
    try:
        return int(_required(headers, "webhook-timestamp"))
    except ValueError as exc:
        raise WebhookSignatureInvalid("webhook-timestamp is not an integer") from exc


class WebhookPoster(Protocol):
    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Deliver one signed request; raise Transient/PermanentDeliveryError if refused."""


class HttpWebhookPoster:
    """Posts with httpx; redirects are not followed (the carrier configures the final URL)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        _http.post(url, content=body, headers=headers, timeout=self._timeout)
