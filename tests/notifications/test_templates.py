"""Every message exists in English and Simplified Chinese, chosen per recipient."""

from __future__ import annotations

import pytest

from locker_server.notifications.errors import TemplateRenderError
from locker_server.notifications.templates import (
    TemplateRenderer,
    format_when,
    resolve_language,
    supported_languages,
)

PARAMS = {
    "recipient_name": "Alice",
    "site_name": "North campus",
    "cabinet_name": "Library lobby",
    "door_label": "B07",
    "site_timezone": "Asia/Shanghai",
    "expires_at": "2026-11-29T10:00:00+00:00",
    "expired_at": "2026-11-29T10:00:00+00:00",
    "code": "48213377",
}
EVENTS = ("pickup_ready", "reminder", "expired")


def test_english_and_simplified_chinese_are_available() -> None:
    assert set(supported_languages()) >= {"en", "zh-CN"}


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("zh-CN", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh", "zh-CN"),
        ("en", "en"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("fr", "en"),
        ("zh-TW", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_recipient_language_maps_to_ours_and_falls_back_to_english(
    tag: str | None, language: str
) -> None:
    assert resolve_language(tag) == language


@pytest.mark.parametrize("language", ["en", "zh-CN"])
@pytest.mark.parametrize("event", EVENTS)
def test_every_message_names_the_place_and_the_deadline_in_site_time(
    event: str, language: str
) -> None:
    renderer = TemplateRenderer()
    email = renderer.email(event, language, PARAMS)
    sms = renderer.sms(event, language, PARAMS)

    deadline = "18:00"  # 10:00 UTC in Shanghai
    for text in (email.text, email.html, sms):
        assert "Library lobby" in text
        assert deadline in text
    assert "\n" not in email.subject
    assert f'lang="{language}"' in email.html


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_only_the_pickup_message_carries_the_code(language: str) -> None:
    renderer = TemplateRenderer()

    assert PARAMS["code"] in renderer.email("pickup_ready", language, PARAMS).text
    assert PARAMS["code"] in renderer.sms("pickup_ready", language, PARAMS)
    for event in ("reminder", "expired"):
        assert PARAMS["code"] not in renderer.email(event, language, PARAMS).text
        assert PARAMS["code"] not in renderer.sms(event, language, PARAMS)


def test_names_are_escaped_in_html_but_kept_verbatim_in_plain_text() -> None:
    hostile = PARAMS | {"recipient_name": "<script>alert(1)</script>", "site_name": "R&D"}

    email = TemplateRenderer().email("pickup_ready", "en", hostile)

    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert "R&amp;D" in email.html
    assert "Hello <script>alert(1)</script>," in email.text


def test_deadline_reads_naturally_in_each_language() -> None:
    when = "2026-11-29T10:00:00+00:00"

    assert format_when(when, "Europe/Paris", "en") == (
        "Sunday 29 November 2026, 11:00 (Europe/Paris)"
    )
    assert (
        format_when(when, "Asia/Shanghai", "zh-CN") == "2026年11月29日（星期日）18:00（北京时间）"
    )
    assert format_when(when, "Not/AZone", "en") == "Sunday 29 November 2026, 10:00 (UTC)"


def test_a_missing_parameter_is_an_error_not_a_blank_in_the_message() -> None:
    incomplete = {k: v for k, v in PARAMS.items() if k != "code"}

    with pytest.raises(TemplateRenderError):
        TemplateRenderer().sms("pickup_ready", "en", incomplete)


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_pickup_message_links_to_the_recipients_page_when_it_has_a_link(
    language: str,
) -> None:
    renderer = TemplateRenderer()
    link = "https://lockers.example/p/AbC-123_xyz"
    with_link = PARAMS | {"recipient_link": link}

    email = renderer.email("pickup_ready", language, with_link)
    assert link in email.text
    assert f'href="{link}"' in email.html
    assert link in renderer.sms("pickup_ready", language, with_link)
    assert "/p/" not in renderer.email("pickup_ready", language, PARAMS).text
