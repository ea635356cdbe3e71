"""Every text the kiosk shows, in each of its languages (one catalog, checked complete).

:func:`wording` turns a :class:`~locker_agent.kiosk.machine.Screen` into the sentences
to show; templates only place them. Keep both languages' keys identical (a test checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from locker_agent.kiosk.courier import CourierState, Purpose, Stage
from locker_agent.kiosk.courier import DoorStatus as CourierDoorStatus
from locker_agent.kiosk.machine import (
    DoorProgress,
    DoorStatus,
    Language,
    Phase,
    Refusal,
    Screen,
)

COURIER_EN: Final[Mapping[str, str]] = {
    "courier.key.courier": "Courier",
    "courier.key.register": "Unannounced parcel",
    "courier.key.expired": "Collect expired parcels",
    "courier.key.finish": "Finish",
    "courier.key.open": "Open door {door}",
    "courier.key.larger": "Larger door",
    "courier.key.broken": "Door is broken",
    "courier.key.not_opened": "Door did not open",
    "courier.key.reopen": "Reopen door {door}",
    "courier.key.skip": "Skip door {door}",
    "courier.key.back": "Back",
    "courier.key.submit": "OK",
    "courier.field.sign_in": "Courier code",
    "courier.field.scan": "Tracking number",
    "courier.field.recipient": "E-mail or phone",
    "courier.signed_in": "{name}, {carrier}",
    "courier.sign_in.title": "Courier sign-in",
    "courier.sign_in.prompt": "Type your courier code, or hold your badge up to the scanner.",
    "courier.scan.title": "Scan a parcel",
    "courier.scan.register_title": "Register an unannounced parcel",
    "courier.scan.prompt": "Scan the parcel's label (barcode or QR), or type its tracking number.",
    "courier.scan.deposited": "Door {door}: the parcel is recorded.",
    "courier.scan.count": "Parcels deposited in this session: {count}",
    "courier.recipient.title": "Who is parcel {tracking} for?",
    "courier.recipient.prompt": "Type the recipient's e-mail address or phone number, as on the"
    " label.",
    "courier.size.title": "Choose the door size",
    "courier.size.prompt": "Which size does parcel {tracking} need?",
    "courier.size.larger": "Door {door} is size {size}. Which larger size?",
    "courier.size.name": "Size {size}",
    "courier.waiting.title": "One moment, please…",
    "courier.waiting.courier_sign_in": "Checking your courier code with the server.",
    "courier.waiting.deposit_lookup": "Finding the door for parcel {tracking}.",
    "courier.waiting.register_parcel": "Registering parcel {tracking} with the server.",
    "courier.waiting.larger_door": "Finding another door for parcel {tracking}.",
    "courier.waiting.door_broken": "Reporting the door out of service.",
    "courier.waiting.expired_parcels": "Fetching the expired parcels to take back.",
    "courier.waiting.collected_for_return": "Recording the parcels taken back.",
    "courier.confirm.title": "Door {door} is ready for parcel {tracking}",
    "courier.confirm.prompt": "Size {size}. Press “Open door {door}” when you stand at the"
    " cabinet with the parcel.",
    "courier.confirm.offline": "The server cannot be reached: this door comes from the"
    " cabinet's own list of reservations.",
    "courier.door.opening": "Door {door} is opening…",
    "courier.door.open": "Put the parcel in door {door} and close the door",
    "courier.door.open.prompt": "The parcel counts once the door is closed. If it does not fit,"
    " press “Larger door” and take it out again.",
    "courier.door.unknown": "Did door {door} open?",
    "courier.door.unknown.prompt": "We could not tell whether door {door} opened. If it is open,"
    " put the parcel in and close it; if not, press “Door did not open”.",
    "courier.door.reopen": "Door {door} is open again",
    "courier.door.reopen.prompt": "Close the door when you are done. The parcel stays recorded.",
    "courier.door.collect": "Take the parcels out of door {door}",
    "courier.door.collect.prompt": "Take out {parcels} and close the door.",
    "courier.door.empty": "Door {door} is open",
    "courier.door.empty.prompt": "No parcel is counted in this door. Please close it.",
    "courier.reason.title": "What is wrong with door {door}?",
    "courier.reason.prompt": "The door is reported out of service and you get another one.",
    "courier.reason.did_not_open": "It did not open",
    "courier.reason.does_not_close": "It does not close",
    "courier.reason.damaged": "It is damaged",
    "courier.reason.not_empty": "Something is already inside",
    "courier.reason.dirty": "It is dirty or wet",
    "courier.expired.title": "Expired parcels to take back",
    "courier.expired.none": "There are no expired parcels for you at this cabinet.",
    "courier.expired.done": "Every door of the list is done.",
    "courier.expired.door": "Door {door}: {parcels} — {status}",
    "courier.expired.waiting": "to collect",
    "courier.expired.collected": "collected",
    "courier.expired.not_opened": "did not open",
    "courier.expired.not_collected": "still occupied",
    "courier.expired.skipped": "skipped",
    "courier.problem.refused": "Not possible",
    "courier.problem.unreachable": "The server cannot be reached",
    "courier.problem.door_not_opened": "The door did not open",
    "courier.problem.door_empty": "The door closed empty",
    "courier.problem.door_not_empty": "Something is still inside",
    "courier.problem.no_larger_size": "No larger door",
    "courier.problem.bad_answer": "Something went wrong",
    "courier.unreachable.courier_sign_in": "Signing in needs the server. Please try again in a"
    " few minutes.",
    "courier.unreachable.deposit_lookup": "This parcel has no reservation on the cabinet's own"
    " list, so it needs the server. Please try again in a few minutes.",
    "courier.unreachable.register_parcel": "Registering an unannounced parcel needs the server."
    " Please try again when it can be reached.",
    "courier.unreachable.other": "Please try again in a few minutes.",
    "courier.explain.door_not_opened": "Nothing was counted. Try again in a moment.",
    "courier.explain.door_empty": "The compartment reads empty, so nothing was recorded. Open"
    " the door again and put the parcel in.",
    "courier.explain.door_not_empty": "The compartment still reads occupied, so the parcels were"
    " not recorded as taken back.",
    "courier.explain.no_larger_size": "This cabinet has no door larger than this one.",
    "courier.explain.refused": "The server did not allow it.",
    "courier.explain.bad_answer": "The server's answer did not fit the question. Please try again.",
    "courier.refusal.bad_credential": "This courier code or badge is not known here.",
    "courier.refusal.session_invalid": "Your session has ended. Please sign in again.",
    "courier.refusal.request_expired": "The server answered too late. Please try again.",
    "courier.refusal.not_announced": "This parcel was not announced for this cabinet. You can"
    " register it here if its recipient agreed to locker delivery.",
    "courier.refusal.already_registered": "This parcel is already registered.",
    "courier.refusal.wrong_cabinet": "This parcel is meant for another cabinet.",
    "courier.refusal.wrong_state": "This parcel cannot be handled now (already deposited,"
    " collected or returned).",
    "courier.refusal.recipient_unknown": "No locker user has this e-mail address or phone number.",
    "courier.refusal.no_consent": "The recipient has not agreed to locker delivery. Please"
    " deliver this parcel another way.",
    "courier.refusal.no_free_door": "No free door of this size right now.",
    "courier.refusal.unknown_size": "This cabinet has no door of that size.",
    "courier.refusal.unknown_door": "This cabinet has no such door.",
    "courier.refusal.unknown_parcel": "This parcel is not known.",
    "courier.refusal.too_many_attempts": "Too many wrong courier codes at this cabinet."
    " Please try again in a few minutes, or call the operator.",
    "courier.hint.not_a_tracking_number": "That is not a tracking number: letters, digits and"
    " - _ . only.",
    "courier.hint.not_a_contact": "Type an e-mail address or a phone number.",
    "courier.hint.empty_sign_in": "Type your courier code first.",
}

COURIER_ZH: Final[Mapping[str, str]] = {
    "courier.key.courier": "快递员",
    "courier.key.register": "未预报包裹",
    "courier.key.expired": "取回逾期包裹",
    "courier.key.finish": "结束",
    "courier.key.open": "打开 {door} 号柜门",
    "courier.key.larger": "换大格口",
    "courier.key.broken": "柜门故障",
    "courier.key.not_opened": "柜门没有打开",
    "courier.key.reopen": "重新打开 {door} 号柜门",
    "courier.key.skip": "跳过 {door} 号柜门",
    "courier.key.back": "返回",
    "courier.key.submit": "确定",
    "courier.field.sign_in": "快递员代码",
    "courier.field.scan": "快递单号",
    "courier.field.recipient": "邮箱或手机号",
    "courier.signed_in": "{name}，{carrier}",
    "courier.sign_in.title": "快递员登录",
    "courier.sign_in.prompt": "请输入快递员代码，或将工牌二维码对准扫码器。",
    "courier.scan.title": "扫描包裹",
    "courier.scan.register_title": "登记未预报包裹",
    "courier.scan.prompt": "请扫描包裹面单（条码或二维码），或输入快递单号。",
    "courier.scan.deposited": "{door} 号柜门：包裹已记录。",
    "courier.scan.count": "本次已投递包裹：{count} 件",
    "courier.recipient.title": "包裹 {tracking} 的收件人是谁？",
    "courier.recipient.prompt": "请按面单输入收件人的邮箱或手机号。",
    "courier.size.title": "选择格口尺寸",
    "courier.size.prompt": "包裹 {tracking} 需要多大的格口？",
    "courier.size.larger": "{door} 号格口为 {size} 号，请选择更大的尺寸。",
    "courier.size.name": "{size} 号",
    "courier.waiting.title": "请稍候…",
    "courier.waiting.courier_sign_in": "正在向服务器核验快递员代码。",
    "courier.waiting.deposit_lookup": "正在为包裹 {tracking} 查找格口。",
    "courier.waiting.register_parcel": "正在向服务器登记包裹 {tracking}。",
    "courier.waiting.larger_door": "正在为包裹 {tracking} 另找格口。",
    "courier.waiting.door_broken": "正在报告柜门故障。",
    "courier.waiting.expired_parcels": "正在获取需取回的逾期包裹。",
    "courier.waiting.collected_for_return": "正在记录已取回的包裹。",
    "courier.confirm.title": "{door} 号柜门已为包裹 {tracking} 预留",
    "courier.confirm.prompt": "{size} 号格口。请带着包裹站到柜前，再按“打开 {door} 号柜门”。",
    "courier.confirm.offline": "无法连接服务器：此格口来自本柜保存的预留清单。",
    "courier.door.opening": "{door} 号柜门正在打开…",
    "courier.door.open": "请将包裹放入 {door} 号柜门并关好柜门",
    "courier.door.open.prompt": "关门后包裹才算投递。若放不下，请按“换大格口”并取出包裹。",
    "courier.door.unknown": "{door} 号柜门打开了吗？",
    "courier.door.unknown.prompt": "无法确认 {door} 号柜门是否已打开。若已打开，请放入包裹并关门；"
    "若未打开，请按“柜门没有打开”。",
    "courier.door.reopen": "{door} 号柜门已重新打开",
    "courier.door.reopen.prompt": "完成后请关好柜门，包裹记录保持不变。",
    "courier.door.collect": "请从 {door} 号柜门取出包裹",
    "courier.door.collect.prompt": "请取出 {parcels} 并关好柜门。",
    "courier.door.empty": "{door} 号柜门开着",
    "courier.door.empty.prompt": "此柜门不计入任何包裹，请关好柜门。",
    "courier.reason.title": "{door} 号柜门有什么问题？",
    "courier.reason.prompt": "该柜门将报停用，并为您另分配一个格口。",
    "courier.reason.did_not_open": "打不开",
    "courier.reason.does_not_close": "关不上",
    "courier.reason.damaged": "已损坏",
    "courier.reason.not_empty": "里面已有物品",
    "courier.reason.dirty": "脏污或潮湿",
    "courier.expired.title": "需取回的逾期包裹",
    "courier.expired.none": "本柜没有需要您取回的逾期包裹。",
    "courier.expired.done": "清单中的柜门均已处理。",
    "courier.expired.door": "{door} 号柜门：{parcels} — {status}",
    "courier.expired.waiting": "待取回",
    "courier.expired.collected": "已取回",
    "courier.expired.not_opened": "未能打开",
    "courier.expired.not_collected": "仍有物品",
    "courier.expired.skipped": "已跳过",
    "courier.problem.refused": "无法办理",
    "courier.problem.unreachable": "无法连接服务器",
    "courier.problem.door_not_opened": "柜门未能打开",
    "courier.problem.door_empty": "柜门关闭时为空",
    "courier.problem.door_not_empty": "柜内仍有物品",
    "courier.problem.no_larger_size": "没有更大的格口",
    "courier.problem.bad_answer": "出现错误",
    "courier.unreachable.courier_sign_in": "登录需要连接服务器，请几分钟后再试。",
    "courier.unreachable.deposit_lookup": "本柜的预留清单中没有此包裹，需要连接服务器，"
    "请几分钟后再试。",
    "courier.unreachable.register_parcel": "登记未预报包裹需要连接服务器，请在恢复连接后再试。",
    "courier.unreachable.other": "请几分钟后再试。",
    "courier.explain.door_not_opened": "未记录任何包裹，请稍后再试。",
    "courier.explain.door_empty": "格口检测为空，未记录包裹。请重新打开柜门放入包裹。",
    "courier.explain.door_not_empty": "格口仍检测到物品，包裹未记为已取回。",
    "courier.explain.no_larger_size": "本柜没有比此更大的格口。",
    "courier.explain.refused": "服务器未允许此操作。",
    "courier.explain.bad_answer": "服务器的回复与请求不符，请重试。",
    "courier.refusal.bad_credential": "此快递员代码或工牌在本柜无效。",
    "courier.refusal.session_invalid": "登录已失效，请重新登录。",
    "courier.refusal.request_expired": "服务器回复超时，请重试。",
    "courier.refusal.not_announced": "此包裹未预报投递到本柜。若收件人已同意柜机投递，可在此登记。",
    "courier.refusal.already_registered": "此包裹已登记。",
    "courier.refusal.wrong_cabinet": "此包裹应投递到其他柜机。",
    "courier.refusal.wrong_state": "此包裹当前无法办理（已投递、已取件或已退回）。",
    "courier.refusal.recipient_unknown": "没有使用此邮箱或手机号的柜机用户。",
    "courier.refusal.no_consent": "收件人未同意柜机投递，请改用其他方式投递此包裹。",
    "courier.refusal.no_free_door": "目前没有此尺寸的空闲格口。",
    "courier.refusal.unknown_size": "本柜没有该尺寸的格口。",
    "courier.refusal.unknown_door": "本柜没有此柜门。",
    "courier.refusal.unknown_parcel": "找不到此包裹。",
    "courier.refusal.too_many_attempts": "本柜快递员代码错误次数过多，"
    "请几分钟后再试，或联系管理员。",
    "courier.hint.not_a_tracking_number": "这不是有效的快递单号：只能包含字母、数字和 - _ .。",
    "courier.hint.not_a_contact": "请输入邮箱或手机号。",
    "courier.hint.empty_sign_in": "请先输入快递员代码。",
}

CATALOG: Final[Mapping[Language, Mapping[str, str]]] = {
    "en": {
        **COURIER_EN,
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
        **COURIER_ZH,
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
    #: the door a courier screen is about (its buttons name it)
    door: int | None = None


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
    door = None if screen.courier is None else courier_door(screen.courier)
    return Wording(title, lines, help_line, _notices(screen), door)


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
    if screen.phase is Phase.COURIER:
        return _courier(screen)
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


# -- the courier's screens ----------------------------------------------------------------

Body = tuple[str, tuple[str, ...], bool]


def courier_door(courier: CourierState) -> int | None:
    """The door the session's screen is about: in use, reserved, just used, next to collect."""
    if courier.door is not None:
        return courier.door.door
    if courier.reservation is not None:
        return courier.reservation.door
    if courier.stage is Stage.EXPIRED:
        return next((d.door for d in courier.expired if d.status == "waiting"), None)
    return None if courier.last_deposit is None else courier.last_deposit.door


def _courier(screen: Screen) -> Body:
    language, courier = screen.language, screen.courier
    if courier is None:
        return text(language, "courier.sign_in.title"), (), False
    title, lines, needs_help = _courier_stage(screen, courier)
    hint = () if courier.hint is None else (text(language, f"courier.hint.{courier.hint}"),)
    return title, (*lines, *hint), needs_help


def _courier_stage(screen: Screen, courier: CourierState) -> Body:
    language = screen.language
    reservation = courier.reservation
    values = {
        "door": courier_door(courier),
        "tracking": courier.tracking or "",
        "size": "" if reservation is None else reservation.size,
    }

    def say(key: str) -> str:
        return text(language, key, **values)

    match courier.stage:
        case Stage.SIGN_IN | Stage.RECIPIENT | Stage.REASON:
            return (
                say(f"courier.{courier.stage}.title"),
                (say(f"courier.{courier.stage}.prompt"),),
                False,
            )
        case Stage.SCAN:
            return _scan(language, courier)
        case Stage.SIZE:
            larger = courier.size_for == "larger" and reservation is not None
            return (
                say("courier.size.title"),
                (say("courier.size.larger" if larger else "courier.size.prompt"),),
                False,
            )
        case Stage.WAITING:
            return (
                say("courier.waiting.title"),
                (say(f"courier.waiting.{screen.courier_asking}"),),
                False,
            )
        case Stage.CONFIRM:
            offline = (say("courier.confirm.offline"),) if courier.offline else ()
            return say("courier.confirm.title"), (say("courier.confirm.prompt"), *offline), False
        case Stage.DOOR:
            return _door(language, courier)
        case Stage.EXPIRED:
            return say("courier.expired.title"), _expired(language, courier), False
        case Stage.PROBLEM:
            return _courier_problem(language, courier)


def _scan(language: Language, courier: CourierState) -> Body:
    title = "courier.scan.register_title" if courier.registering else "courier.scan.title"
    lines = [text(language, "courier.scan.prompt")]
    if courier.last_deposit is not None:
        lines.append(text(language, "courier.scan.deposited", door=courier.last_deposit.door))
    if courier.deposits:
        lines.append(text(language, "courier.scan.count", count=courier.deposits))
    return text(language, title), tuple(lines), False


_DOOR_SCREENS: Final[Mapping[Purpose, str]] = {
    Purpose.DEPOSIT: "courier.door.open",
    Purpose.REOPEN: "courier.door.reopen",
    Purpose.COLLECT: "courier.door.collect",
    Purpose.EMPTY: "courier.door.empty",
}


def _door(language: Language, courier: CourierState) -> Body:
    use = courier.door
    if use is None:
        return text(language, "courier.scan.title"), (), False
    if use.status is CourierDoorStatus.OPENING:
        return text(language, "courier.door.opening", door=use.door), (), False
    key = _DOOR_SCREENS[use.purpose]
    if use.purpose is Purpose.DEPOSIT and use.status is CourierDoorStatus.UNKNOWN:
        key = "courier.door.unknown"
    parcels = next((d.parcels for d in courier.expired if d.door == use.door), ())
    numbers = ", ".join(p.tracking_number for p in parcels)
    prompt = text(language, f"{key}.prompt", door=use.door, parcels=numbers)
    return text(language, key, door=use.door), (prompt,), use.status is CourierDoorStatus.UNKNOWN


def _expired(language: Language, courier: CourierState) -> tuple[str, ...]:
    if not courier.expired:
        return (text(language, "courier.expired.none"),)
    lines = tuple(
        text(
            language,
            "courier.expired.door",
            door=door.door,
            parcels=", ".join(p.tracking_number for p in door.parcels),
            status=text(language, f"courier.expired.{door.status}"),
        )
        for door in courier.expired
    )
    done = all(door.status != "waiting" for door in courier.expired)
    return (*lines, text(language, "courier.expired.done")) if done else lines


def _courier_problem(language: Language, courier: CourierState) -> Body:
    problem = courier.problem
    title = text(language, f"courier.problem.{problem}")
    if courier.refusal is not None:
        return title, (text(language, f"courier.refusal.{courier.refusal}"),), True
    if problem == "unreachable":
        known = courier.failed in ("courier_sign_in", "deposit_lookup", "register_parcel")
        return (
            title,
            (text(language, f"courier.unreachable.{courier.failed if known else 'other'}"),),
            True,
        )
    return title, (text(language, f"courier.explain.{problem}"),), True
