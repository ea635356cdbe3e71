"""Turning one claimed outbox row into a real email, SMS or webhook request.

The worker decides *when* and records the outcome; this module only composes the message
for its channel and hands it over, raising a DeliveryError if the channel refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from locker_server.keys import ServerKeys
from locker_server.notifications.errors import (
    PermanentDeliveryError,
    SealingError,
    TemplateRenderError,
    TransientDeliveryError,
)
from locker_server.notifications.mail import EmailTransport, build_email, new_content_id
from locker_server.notifications.models import Channel, NotificationMessage
from locker_server.notifications.qr import qr_png
from locker_server.notifications.recipient_link import (
    LinkKeys,
    RecipientLink,
    link_expiry,
    link_url,
    seal_link,
)
from locker_server.notifications.sealing import PickupSecret, unseal
from locker_server.notifications.sms import SmsGateway
from locker_server.notifications.templates import TemplateRenderer, resolve_language
from locker_server.notifications.webhooks import (
    WebhookPoster,
    carrier_webhook_secret,
    signed_headers,
    webhook_body,
)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An immutable snapshot of a claimed row: what one delivery attempt needs."""

    id: int
    event_id: str
    kind: str
    event: str
    language: str
    destination: str
    params: dict[str, Any]
    sealed_secret: bytes | None
    attempts: int
    created_at: datetime
    parcel_id: int | None
    recipient_id: int | None
    carrier_id: int | None

    @classmethod
    def of(cls, row: NotificationMessage) -> OutboxItem:
        assert row.id is not None
        return cls(
            id=row.id,
            event_id=row.event_id,
            kind=row.kind,
            event=row.event,
            language=row.language,
            destination=row.destination,
            params=dict(row.params),
            sealed_secret=row.sealed_secret,
            attempts=row.attempts,
            created_at=row.created_at,
            parcel_id=row.parcel_id,
            recipient_id=row.recipient_id,
            carrier_id=row.carrier_id,
        )


class Dispatcher:
    """Composes and sends one message on its channel."""

    def __init__(
        self,
        *,
        keys: ServerKeys,
        sender: str,
        email: EmailTransport | None,
        sms: SmsGateway | None,
        webhooks: WebhookPoster | None,
        renderer: TemplateRenderer | None = None,
        public_base_url: str | None = None,
    ) -> None:
        self._keys, self._sender = keys, sender
        self._public_base_url = public_base_url
        self._link_keys = LinkKeys.derive(keys.outbox_sealing_key)
        self._email, self._sms, self._webhooks = email, sms, webhooks
        self._renderer = renderer or TemplateRenderer()

    def deliver(self, item: OutboxItem, now: datetime) -> None:
        try:
            self._deliver(item, now)
        except (SealingError, TemplateRenderError) as exc:
            raise PermanentDeliveryError(f"{type(exc).__name__}: cannot compose message") from exc

    def _deliver(self, item: OutboxItem, now: datetime) -> None:
        if item.kind == Channel.email:
            self._send_email(item)
        elif item.kind == Channel.sms:
            self._send_sms(item)
        elif item.kind == Channel.webhook:
            self._send_webhook(item, now)
        else:
            raise PermanentDeliveryError(f"unknown channel {item.kind!r}")

    def _send_email(self, item: OutboxItem) -> None:
        if self._email is None:
            raise TransientDeliveryError("email is not configured")
        secret = self._secret(item)
        qr_cid = new_content_id(self._sender) if secret else None
        params = item.params | self._secret_params(item, secret) | {"qr_cid": qr_cid}
        rendered = self._renderer.email(item.event, item.language, params)
        message = build_email(
            sender=self._sender,
            to=item.destination,
            event_id=item.event_id,
            rendered=rendered,
            qr_png=qr_png(secret.qr_token) if secret else None,
            qr_cid=qr_cid,
        )
        self._email.send(message)

    def _send_sms(self, item: OutboxItem) -> None:
        if self._sms is None:
            raise TransientDeliveryError("no SMS gateway is configured")
        params = item.params | self._secret_params(item, self._secret(item))
        self._sms.send(item.destination, self._renderer.sms(item.event, item.language, params))

    def _send_webhook(self, item: OutboxItem, now: datetime) -> None:
        if self._webhooks is None:
            raise TransientDeliveryError("webhooks are not configured")
        if item.carrier_id is None:
            raise PermanentDeliveryError("webhook without a carrier")
        event_type = str(item.params.get("type", item.event))
        body = webhook_body(item.event_id, event_type, item.created_at, item.params["data"])
        secret = carrier_webhook_secret(self._keys, item.carrier_id)
        headers = signed_headers(secret, item.event_id, body, int(now.timestamp()))
        self._webhooks.post(item.destination, headers, body)

    def _secret(self, item: OutboxItem) -> PickupSecret | None:
        if item.sealed_secret is None:
            return None
        return unseal(
            self._keys.outbox_sealing_key,
            item.sealed_secret,
            event_id=item.event_id,
            kind=item.kind,
        )

    def _secret_params(self, item: OutboxItem, secret: PickupSecret | None) -> dict[str, Any]:
        if secret is None:
            return {}
        return {"code": secret.code, "recipient_link": self._recipient_link(item, secret)}

    def _recipient_link(self, item: OutboxItem, secret: PickupSecret) -> str | None:
        """The recipient page's link, made now (never stored) from the sealed secret."""
        deadline = item.params.get("expires_at")
        if not self._public_base_url or not isinstance(deadline, str):
            return None
        if item.parcel_id is None or item.recipient_id is None:
            return None
        link = RecipientLink(
            parcel_id=item.parcel_id,
            recipient_id=item.recipient_id,
            expires_at=link_expiry(datetime.fromisoformat(deadline)),
            qr_token=secret.qr_token,
        )
        url = link_url(self._public_base_url, seal_link(self._link_keys, link))
        # The page opens in the message's language (the recipient may switch there).
        return f"{url}?lang={resolve_language(item.language)}"
