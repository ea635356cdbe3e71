"""Message texts per language, rendered with Jinja2 from ``templates/<language>/``.

Each event has ``<event>.subject.j2``, ``<event>.txt.j2``, ``<event>.html.j2`` (escaped)
and ``<event>.sms.j2``. The language is chosen per recipient; anything we have no
templates for falls back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from locker_server.notifications.errors import TemplateRenderError

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_LANGUAGE = "en"
_TIMESTAMP_PARAMS = ("expires_at", "expired_at", "raised_at")
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ZH_WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


def supported_languages() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()))


def resolve_language(tag: str | None) -> str:
    """Map a recipient's language tag (``zh_CN``, ``zh-Hans``, ``en-GB`` ...) to ours."""
    normalised = (tag or "").strip().replace("_", "-").lower()
    if normalised.startswith("zh") and not normalised.startswith(("zh-tw", "zh-hk", "zh-hant")):
        return "zh-CN"
    by_lower = {language.lower(): language for language in supported_languages()}
    for candidate in (normalised, normalised.split("-", 1)[0]):
        if candidate in by_lower:
            return by_lower[candidate]
    return DEFAULT_LANGUAGE


def format_when(iso_timestamp: str, timezone: str, language: str) -> str:
    """A deadline the way a person reads it, in the site's time zone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, timezone = ZoneInfo("UTC"), "UTC"
    when = datetime.fromisoformat(iso_timestamp).astimezone(zone)
    if language == "zh-CN":
        zone_name = "北京时间" if timezone in ("Asia/Shanghai", "PRC") else f"{timezone} 时间"
        weekday = _ZH_WEEKDAYS[when.weekday()]
        return f"{when.year}年{when.month}月{when.day}日（{weekday}）{when:%H:%M}（{zone_name}）"
    weekday = _EN_WEEKDAYS[when.weekday()]
    return f"{weekday} {when.day} {when:%B %Y}, {when:%H:%M} ({timezone})"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class TemplateRenderer:
    """Renders the texts of one event for one language."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._directory = directory
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def email(self, event: str, language: str, params: Mapping[str, Any]) -> RenderedEmail:
        language, context = self._context(event, language, params)
        subject = " ".join(self._render(language, event, "subject", context).split())
        context["subject"] = subject
        return RenderedEmail(
            subject=subject,
            text=self._render(language, event, "txt", context),
            html=self._render(language, event, "html", context),
        )

    def sms(self, event: str, language: str, params: Mapping[str, Any]) -> str:
        language, context = self._context(event, language, params)
        return " ".join(self._render(language, event, "sms", context).split())

    def _context(
        self, event: str, language: str, params: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        language = resolve_language(language)
        if not (self._directory / language / f"{event}.txt.j2").exists():
            language = DEFAULT_LANGUAGE
        defaults = {"qr_cid": None, "door_label": None, "recipient_link": None}
        context = {**defaults, **params, "html_lang": language}
        timezone = str(params.get("site_timezone") or "UTC")
        for name in _TIMESTAMP_PARAMS:
            if isinstance(params.get(name), str):
                context[name] = format_when(params[name], timezone, language)
        return language, context

    def _render(self, language: str, event: str, part: str, context: dict[str, Any]) -> str:
        try:
            return self._env.get_template(f"{language}/{event}.{part}.j2").render(context)
        except jinja2.TemplateError as exc:
            raise TemplateRenderError(f"cannot render {language}/{event}.{part}: {exc}") from exc
