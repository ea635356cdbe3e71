"""Every text the kiosk shows, in each of its languages (one catalog, checked complete).

:func:`wording` turns a :class:`~locker_agent.kiosk.machine.Screen` into the sentences
to show; templates only place them. Keep both languages' keys identical (a test checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from locker_agent.kiosk.machine import (
    DoorProgress,
    DoorStatus,
    Language,
    Phase,
    Refusal,
    Screen,
)

CATALOG: Final[Mapping[Language, Mapping[str, str]]] = {
    "en": {
        "language.name": "English",
        "home.title": "Collect a parcel",
        "home.prompt": "Type your {length}-digit pickup code, or hold the QR code from your"
        " message up to the camera.",
        "typing.title": "Enter your pickup code",
        "typing.count": "{entered} of {length} digits",
        "hint.code_too_short": "A pickup code has {length} digits.",
        "checking.title": "Checking your code…",
        "checking.prompt": "One moment, please.",
        "doors.title.one": "Go to door {doors}",
        "doors.title.many": "Go to doors {doors}",
        "doors.and": " and ",
        "door.waiting": "Door {door} opens after the one before it.",
        "door.opening": "Door {door} is opening…",
        "door.open": "Door {door} is open: take your parcel and close the door.",
        "door.closed": "Door {door} is closed.",
        "door.not_opened": "Door {door} did not open. Your parcel is safe inside.",
        "door.unknown": "We could not tell whether door {door} opened.",
        "door.withdrawn": "The parcel behind door {door} can no longer be collected here.",
        "refused.wrong_code.title": "Wrong code",
        "refused.wrong_code.prompt": "Check the code in your message and type it again.",
        "refused.attempts_left": "{attempts} more wrong codes and this cabinet stops taking"
        " codes for a while.",
        "refused.last_attempt": "One more wrong code and this cabinet stops taking codes for a"
        " while.",
        "refused.now_locked": "Too many wrong codes: try again in {minutes} min.",
        "refused.expired.title": "This code has expired",
        "refused.expired.prompt": "The parcel is no longer held for you here. Contact the"
        " sender about a new delivery.",
        "refused.locked_out.title": "Too many wrong codes",
        "refused.locked_out.prompt": "This cabinet takes codes again in {minutes} min.",
        "refused.locked_out.later": "This cabinet takes codes again later.",
        "refused.not_ready.title": "This cabinet cannot check codes yet",
        "refused.not_ready.prompt": "Please try again in a few minutes.",
        "thanks.title": "Thank you!",
        "thanks.prompt": "Every door is closed. Have a nice day.",
        "help.contact": "Need help? Call {contact}.",
        "help.label": "Need help? Call the service number on the cabinet's label.",
        "notice.offline": "Offline: pickups still work.",
        "notice.camera_lost": "The camera is not working: please type your code.",
        "notice.scanner_lost": "The scanner is not working: please type your code.",
        "key.backspace": "Delete",
        "key.clear": "Clear",
        "key.enter": "OK",
        "key.cancel": "Cancel",
        "key.done": "Done",
        "switch.to": "中文",
    },
    "zh-CN": {
        "language.name": "中文",
        "home.title": "取件",
        "home.prompt": "请输入 {length} 位取件码，或将短信/邮件中的二维码对准摄像头。",
        "typing.title": "请输入取件码",
        "typing.count": "已输入 {entered} / {length} 位",
        "hint.code_too_short": "取件码为 {length} 位数字。",
        "checking.title": "正在验证取件码…",
        "checking.prompt": "请稍候。",
        "doors.title.one": "请到 {doors} 号柜门取件",
        "doors.title.many": "请到 {doors} 号柜门取件",
        "doors.and": "、",
        "door.waiting": "{door} 号柜门将在前一个柜门之后打开。",
        "door.opening": "{door} 号柜门正在打开…",
        "door.open": "{door} 号柜门已打开：请取出包裹并关好柜门。",
        "door.closed": "{door} 号柜门已关闭。",
        "door.not_opened": "{door} 号柜门未能打开，您的包裹仍安全存放在柜内。",
        "door.unknown": "无法确认 {door} 号柜门是否已打开。",
        "door.withdrawn": "{door} 号柜门内的包裹已不能在此领取。",
        "refused.wrong_code.title": "取件码错误",
        "refused.wrong_code.prompt": "请核对通知中的取件码后重新输入。",
        "refused.attempts_left": "再输错 {attempts} 次，本柜将暂停接受取件码。",
        "refused.last_attempt": "再输错 1 次，本柜将暂停接受取件码。",
        "refused.now_locked": "错误次数过多：请 {minutes} 分钟后再试。",
        "refused.expired.title": "取件码已过期",
        "refused.expired.prompt": "包裹已不在此为您保留，请联系寄件方重新安排投递。",
        "refused.locked_out.title": "错误次数过多",
        "refused.locked_out.prompt": "本柜将在 {minutes} 分钟后重新接受取件码。",
        "refused.locked_out.later": "本柜稍后将重新接受取件码。",
        "refused.not_ready.title": "本柜暂时无法验证取件码",
        "refused.not_ready.prompt": "请几分钟后再试。",
        "thanks.title": "谢谢！",
        "thanks.prompt": "所有柜门均已关闭，祝您愉快。",
        "help.contact": "需要帮助？请拨打 {contact}。",
        "help.label": "需要帮助？请拨打柜体标签上的服务电话。",
        "notice.offline": "网络离线：仍可正常取件。",
        "notice.camera_lost": "摄像头暂不可用：请输入取件码。",
        "notice.scanner_lost": "扫码器暂不可用：请输入取件码。",
        "key.backspace": "删除",
        "key.clear": "清空",
        "key.enter": "确定",
        "key.cancel": "取消",
        "key.done": "完成",
        "switch.to": "English",
    },
}

#: the language the one-touch switch goes to from each language
OTHER_LANGUAGE: Final[Mapping[Language, Language]] = {"zh-CN": "en", "en": "zh-CN"}
_NEEDS_HELP: Final = frozenset({DoorStatus.NOT_OPENED, DoorStatus.UNKNOWN, DoorStatus.WITHDRAWN})


@dataclass(frozen=True, slots=True)
class Wording:
    """The sentences of one screen, in its language."""

    title: str
    lines: tuple[str, ...] = ()
    #: whom to call, on screens where something went wrong
    help: str | None = None
    #: the cabinet's own state: offline, a reader down
    notices: tuple[str, ...] = ()


def text(language: Language, key: str, **values: object) -> str:
    return CATALOG[language][key].format(**values)


def wording(screen: Screen) -> Wording:
    title, lines, needs_help = _body(screen)
    language = screen.language
    help_line = None
    if needs_help:
        contact = screen.help_contact
        help_line = (
            text(language, "help.contact", contact=contact)
            if contact
            else text(language, "help.label")
        )
    return Wording(title, lines, help_line, _notices(screen))


def _body(screen: Screen) -> tuple[str, tuple[str, ...], bool]:
    """(title, lines, whether to say whom to call)."""
    language, length = screen.language, screen.code_length
    if screen.phase is Phase.TYPING:
        count = text(language, "typing.count", entered=screen.digits_entered, length=length)
        hint = (
            () if screen.hint is None else (text(language, f"hint.{screen.hint}", length=length),)
        )
        return text(language, "typing.title"), (count, *hint), False
    if screen.phase is Phase.CHECKING:
        return text(language, "checking.title"), (text(language, "checking.prompt"),), False
    if screen.phase is Phase.DOORS:
        return _doors(screen)
    if screen.phase is Phase.REFUSED and screen.refusal is not None:
        return _refusal(screen, screen.refusal)
    if screen.phase is Phase.THANKS:
        return text(language, "thanks.title"), (text(language, "thanks.prompt"),), False
    return text(language, "home.title"), (text(language, "home.prompt", length=length),), False


def _doors(screen: Screen) -> tuple[str, tuple[str, ...], bool]:
    language = screen.language
    numbers = text(language, "doors.and").join(str(p.door) for p in screen.doors)
    many = "many" if len(screen.doors) > 1 else "one"
    title = text(language, f"doors.title.{many}", doors=numbers)
    lines = tuple(_door_line(language, progress) for progress in screen.doors)
    return title, lines, any(p.status in _NEEDS_HELP for p in screen.doors)


def _door_line(language: Language, progress: DoorProgress) -> str:
    return text(language, f"door.{progress.status}", door=progress.door)


def _refusal(screen: Screen, refusal: Refusal) -> tuple[str, tuple[str, ...], bool]:
    language, minutes = screen.language, screen.locked_minutes
    title = text(language, f"refused.{refusal}.title")
    if refusal is Refusal.WRONG_CODE:
        return title, (text(language, "refused.wrong_code.prompt"), *_attempts(screen)), True
    if refusal is Refusal.LOCKED_OUT:
        if minutes is None:
            return title, (text(language, "refused.locked_out.later"),), True
        return title, (text(language, "refused.locked_out.prompt", minutes=minutes),), True
    return title, (text(language, f"refused.{refusal}.prompt"),), True


def _attempts(screen: Screen) -> tuple[str, ...]:
    language, attempts = screen.language, screen.attempts_left
    if screen.locked_minutes is not None:
        return (text(language, "refused.now_locked", minutes=screen.locked_minutes),)
    if attempts is None:
        return ()
    if attempts == 1:
        return (text(language, "refused.last_attempt"),)
    return (text(language, "refused.attempts_left", attempts=attempts),)


def _notices(screen: Screen) -> tuple[str, ...]:
    notices = [] if screen.link_up else [text(screen.language, "notice.offline")]
    notices += [text(screen.language, f"notice.{r}_lost") for r in sorted(screen.readers_down)]
    return tuple(notices)
