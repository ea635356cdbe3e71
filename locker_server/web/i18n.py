"""The console's words in English and Simplified Chinese, and how a page picks its language.

One catalog for both languages, so a missing translation is a test failure rather than
an English word on a Chinese page. The language comes from ``?lang=`` (which also sets
a cookie, so the choice sticks), else the cookie, else the browser's ``Accept-Language``.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "zh-CN")
DEFAULT_LANGUAGE: Final = "en"
LANGUAGE_COOKIE: Final = "locker_lang"
LANGUAGE_NAMES: Final = {"en": "English", "zh-CN": "中文"}

CATALOG: Final[dict[str, dict[str, str]]] = {
    "en": {
        "app.title": "Parcel lockers",
        "nav.audit": "Audit log",
        "nav.cabinets": "Cabinets",
        "nav.sign_out": "Sign out",
        "nav.signed_in_as": "Signed in as {name} ({role})",
        "sign_in.title": "Sign in",
        "sign_in.username": "User name",
        "sign_in.password": "Password",
        "sign_in.submit": "Sign in",
        "sign_in.failed": "Wrong user name or password.",
        "sign_in.throttled": "Too many failed sign-ins. Try again in {seconds} seconds.",
        "sign_in.expired_form": "The form had expired. Please sign in again.",
        "denied.title": "Not for your role",
        "denied.body": "Your account ({role}) cannot open this page.",
        "audit.title": "Audit log",
        "audit.filters": "Filters",
        "audit.from": "From",
        "audit.to": "Before",
        "audit.site": "Site",
        "audit.cabinet": "Cabinet",
        "audit.door": "Door",
        "audit.parcel": "Parcel",
        "audit.actor": "Actor",
        "audit.action": "Action starts with",
        "audit.outcome": "Outcome",
        "audit.text": "Text",
        "audit.apply": "Apply",
        "audit.reset": "Clear filters",
        "audit.any": "any",
        "audit.col.seq": "#",
        "audit.col.time": "Time (UTC)",
        "audit.col.actor": "Who",
        "audit.col.action": "Action",
        "audit.col.outcome": "Outcome",
        "audit.col.where": "Where",
        "audit.col.parcel": "Parcel",
        "audit.col.reason": "Reason",
        "audit.col.channel": "Channel",
        "audit.none": "No entry matches these filters.",
        "audit.older": "Older entries",
        "audit.newest": "Newest entries",
        "audit.count": "{total} matching entries",
        "audit.bad_filter": "Filter not applied: {problem}",
        "cabinets.title": "Cabinets",
        "cabinets.online": "online",
        "cabinets.offline": "offline",
        "cabinets.never_seen": "never connected",
        "cabinets.last_seen": "last seen {when}",
        "cabinets.maintenance": "maintenance",
        "cabinets.out_of_service": "out of service",
        "cabinets.none": "No cabinet in your sites yet.",
        "cabinets.live": "Updates by itself every few seconds.",
        "door.open": "open",
        "door.closed": "closed",
        "door.unknown": "state unknown",
        "door.occupied": "occupied",
        "door.reserved": "reserved",
        "door.empty": "empty",
        "door.label": "Door {number}",
        "lang.switch": "Language",
    },
    "zh-CN": {
        "app.title": "智能快递柜",
        "nav.audit": "审计日志",
        "nav.cabinets": "柜机",
        "nav.sign_out": "退出登录",
        "nav.signed_in_as": "当前用户 {name}（{role}）",
        "sign_in.title": "登录",
        "sign_in.username": "用户名",
        "sign_in.password": "密码",
        "sign_in.submit": "登录",
        "sign_in.failed": "用户名或密码错误。",
        "sign_in.throttled": "登录失败次数过多，请 {seconds} 秒后再试。",
        "sign_in.expired_form": "表单已过期，请重新登录。",
        "denied.title": "无权访问",
        "denied.body": "您的账户（{role}）不能打开此页面。",
        "audit.title": "审计日志",
        "audit.filters": "筛选",
        "audit.from": "开始时间",
        "audit.to": "截止时间",
        "audit.site": "站点",
        "audit.cabinet": "柜机",
        "audit.door": "柜门",
        "audit.parcel": "包裹",
        "audit.actor": "操作者",
        "audit.action": "操作前缀",
        "audit.outcome": "结果",
        "audit.text": "文本",
        "audit.apply": "应用",
        "audit.reset": "清除筛选",
        "audit.any": "全部",
        "audit.col.seq": "序号",
        "audit.col.time": "时间（UTC）",
        "audit.col.actor": "操作者",
        "audit.col.action": "操作",
        "audit.col.outcome": "结果",
        "audit.col.where": "位置",
        "audit.col.parcel": "包裹",
        "audit.col.reason": "原因",
        "audit.col.channel": "渠道",
        "audit.none": "没有符合筛选条件的记录。",
        "audit.older": "更早的记录",
        "audit.newest": "最新的记录",
        "audit.count": "共 {total} 条匹配记录",
        "audit.bad_filter": "筛选未生效：{problem}",
        "cabinets.title": "柜机",
        "cabinets.online": "在线",
        "cabinets.offline": "离线",
        "cabinets.never_seen": "从未连接",
        "cabinets.last_seen": "最后在线 {when}",
        "cabinets.maintenance": "维护中",
        "cabinets.out_of_service": "停用",
        "cabinets.none": "您的站点还没有柜机。",
        "cabinets.live": "每隔几秒自动更新。",
        "door.open": "开",
        "door.closed": "关",
        "door.unknown": "状态未知",
        "door.occupied": "有件",
        "door.reserved": "已预留",
        "door.empty": "空",
        "door.label": "{number} 号柜门",
        "lang.switch": "语言",
    },
}


class Translator:
    """``t("key", name=...)``: the text of ``key`` in this language, formatted."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._texts = CATALOG[self.language]

    def __call__(self, key: str, **values: object) -> str:
        text = self._texts.get(key) or CATALOG[DEFAULT_LANGUAGE][key]
        return text.format(**values) if values else text


def pick_language(asked: str | None, remembered: str | None, accept_language: str | None) -> str:
    """The page's language: asked for in the query, else remembered, else the browser's."""
    for candidate in (asked, remembered):
        if candidate in LANGUAGES:
            return candidate
    return _from_accept_language(accept_language or "")


def _from_accept_language(header: str) -> str:
    # Order of preference is enough here: two languages, no quality arithmetic needed.
    for part in header.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE
