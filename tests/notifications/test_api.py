"""Operators see failed notifications (masked) and resend them through the REST API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from locker_server.audit.models import AuditEntry
from locker_server.auth.roles import Role
from locker_server.notifications import NotificationWorker, RecipientContact
from locker_server.notifications.errors import PermanentDeliveryError
from locker_server.notifications.fakes import RecordingEmailTransport, RecordingSmsGateway
from tests.api.conftest import (  # the identity helper's API fixtures, reused here
    MakeUser,
    app,
    audit_entries,
    client,
    make_api_key,
    make_site,
    make_user,
)
from tests.notifications.notification_support import CODE, QR_TOKEN

__all__ = [
    "app",
    "audit_entries",
    "client",
    "make_api_key",
    "make_site",
    "make_user",
]  # fixtures in use

URL = "/api/v1/notifications"


@pytest.fixture
def failed_email_and_sms(
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Callable[[RecipientContact], list[int]],
    alice: RecipientContact,
) -> list[int]:
    """Alice's pickup email and SMS, both refused for good by their channels."""
    ids = queue_pickup(alice)
    email = RecordingEmailTransport(failures=[PermanentDeliveryError("SMTP 550 5.1.1")])
    sms = RecordingSmsGateway(failures=[PermanentDeliveryError("HTTP 400 from gateway")])
    make_worker(email=email, sms=sms).run_once()
    return ids


def test_operator_lists_failed_notifications_with_masked_destinations_and_no_secrets(
    client: TestClient, make_user: MakeUser, failed_email_and_sms: list[int]
) -> None:
    response = client.get(URL, params={"status": "failed"}, headers=make_user(Role.operator))

    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 2
    by_kind = {item["kind"]: item for item in page["items"]}
    assert by_kind["email"]["destination"] == "a***@example.org"
    assert by_kind["sms"]["destination"] == "+33*******78"
    assert by_kind["email"]["last_error"] == "SMTP 550 5.1.1"
    assert {item["status"] for item in page["items"]} == {"failed"}
    for secret in (CODE, QR_TOKEN, "alice@example.org", "+33612345678"):
        assert secret not in response.text


def test_status_filter_leaves_out_other_states(
    client: TestClient, make_user: MakeUser, failed_email_and_sms: list[int]
) -> None:
    headers = make_user(Role.admin)

    delivered = client.get(URL, params={"status": "delivered"}, headers=headers).json()
    everything = client.get(URL, headers=headers).json()

    assert delivered["total"] == 0
    assert everything["total"] == 2


def test_operator_resends_a_failed_notification_and_the_resend_is_audited(
    client: TestClient,
    make_user: MakeUser,
    failed_email_and_sms: list[int],
    audit_entries: Callable[..., list[AuditEntry]],
) -> None:
    headers = make_user(Role.operator)
    email_id = failed_email_and_sms[0]

    response = client.post(f"{URL}/{email_id}/resend", headers=headers)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    (entry,) = audit_entries("notification.resent")
    assert (entry.actor_type, entry.actor_id) == ("user", str(headers.user_id))
    again = client.post(f"{URL}/{email_id}/resend", headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_resending_an_unknown_notification_is_not_found(
    client: TestClient, make_user: MakeUser
) -> None:
    response = client.post(f"{URL}/4242/resend", headers=make_user(Role.operator))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("who", ["security", "courier", "carrier api key"])
def test_only_operators_and_admins_can_see_or_resend_notifications(
    client: TestClient,
    make_user: MakeUser,
    make_api_key: Callable[..., dict[str, str]],
    failed_email_and_sms: list[int],
    who: str,
) -> None:
    headers = make_api_key() if who == "carrier api key" else make_user(Role(who))
    resend_url = f"{URL}/{failed_email_and_sms[0]}/resend"

    assert client.get(URL, headers=headers).status_code == 403
    assert client.post(resend_url, headers=headers).status_code == 403


def test_operator_limited_to_a_site_sees_nothing_about_other_sites(
    client: TestClient,
    make_user: MakeUser,
    make_site: Callable[[str], int],
    failed_email_and_sms: list[int],
) -> None:
    headers = make_user(Role.operator, sites=[make_site("Elsewhere")])

    listing = client.get(URL, headers=headers).json()
    resent = client.post(f"{URL}/{failed_email_and_sms[0]}/resend", headers=headers)

    assert listing["total"] == 0
    assert resent.status_code == 403


def test_listing_without_credentials_is_refused(client: TestClient) -> None:
    assert client.get(URL).status_code == 401


def test_bad_status_filter_is_a_validation_error_naming_the_field(
    client: TestClient, make_user: MakeUser
) -> None:
    response = client.get(URL, params={"status": "lost"}, headers=make_user(Role.admin))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
