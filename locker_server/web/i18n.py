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
        "nav.parcels": "Parcels",
        "not_found.title": "Not found",
        "not_found.body": "There is nothing here, or it is not in your sites.",
        "timeline.none": "Nothing recorded yet.",
        "timeline.truncated": "Only the latest 500 entries are shown; the audit log has them all.",
        "parcels.title": "Parcels",
        "parcels.search": "Tracking number or recipient",
        "parcels.state": "Status",
        "parcels.tracking": "Tracking number",
        "parcels.place": "Door",
        "parcels.deadline": "Pickup by",
        "parcels.none": "No parcel matches.",
        "parcel.title": "Parcel {tracking}",
        "parcel.done": "Done.",
        "parcel.actions": "Actions",
        "parcel.hours": "Hours",
        "parcel.extend": "Extend the pickup time",
        "parcel.reissue": "Send a new code",
        "parcel.collect": "Mark collected for return",
        "parcel.reason": "Reason",
        "parcel.cancel": "Cancel the parcel",
        "parcel.custody": "Chain of custody",
        "door.title": "{cabinet}, door {number}",
        "door.command_sent": "Open command sent. The door shows open here once its sensor sees it.",
        "door.open_reason": "Reason (required)",
        "door.open_action": "Open this door",
        "door.history": "Door timeline",
        "integrity.title": "Integrity",
        "integrity.last": "Last verified {when}: {verdict}",
        "integrity.never": "Not verified yet.",
        "integrity.ok": "intact",
        "integrity.bad": "TAMPERING FOUND",
        "integrity.verify": "Verify now",
        "integrity.result_ok": (
            "The audit log is intact: {entries} entries, {checkpoints} signed checkpoints checked."
        ),
        "integrity.result_bad": "The audit log is NOT intact: {kind} at entry {seq}. {message}",
        "integrity.export": "Export these entries",
        "integrity.bundle": "A verification bundle that an auditor checks offline: {command}",
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
        "nav.parcels": "包裹",
        "not_found.title": "未找到",
        "not_found.body": "这里没有内容，或不属于您的站点。",
        "timeline.none": "尚无记录。",
        "timeline.truncated": "仅显示最近 500 条记录；完整记录见审计日志。",
        "parcels.title": "包裹",
        "parcels.search": "运单号或收件人",
        "parcels.state": "状态",
        "parcels.tracking": "运单号",
        "parcels.place": "柜门",
        "parcels.deadline": "取件期限",
        "parcels.none": "没有匹配的包裹。",
        "parcel.title": "包裹 {tracking}",
        "parcel.done": "已完成。",
        "parcel.actions": "操作",
        "parcel.hours": "小时",
        "parcel.extend": "延长取件时间",
        "parcel.reissue": "重新发送取件码",
        "parcel.collect": "标记为退回取出",
        "parcel.reason": "原因",
        "parcel.cancel": "取消包裹",
        "parcel.custody": "保管链",
        "door.title": "{cabinet}，{number} 号柜门",
        "door.command_sent": "开门指令已发送。柜门传感器确认打开后，此处会显示为开。",
        "door.open_reason": "原因（必填）",
        "door.open_action": "打开此柜门",
        "door.history": "柜门记录",
        "integrity.title": "完整性",
        "integrity.last": "最近一次校验 {when}：{verdict}",
        "integrity.never": "尚未校验。",
        "integrity.ok": "完好",
        "integrity.bad": "发现篡改",
        "integrity.verify": "立即校验",
        "integrity.result_ok": (
            "审计日志完好：已校验 {entries} 条记录、{checkpoints} 个签名检查点。"
        ),
        "integrity.result_bad": "审计日志已被篡改：第 {seq} 条，{kind}。{message}",
        "integrity.export": "导出这些记录",
        "integrity.bundle": "供审计人员离线校验的校验包：{command}",
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
