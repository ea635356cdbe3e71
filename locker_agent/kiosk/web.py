"""The kiosk screen: a page the agent serves to the cabinet's own browser.

Server-rendered (Jinja2, no build step, no external asset: it works offline). The page
shows the machine's :class:`~locker_agent.kiosk.machine.Screen` in words from
:mod:`~locker_agent.kiosk.texts`; a few lines of inline JavaScript send keys (on-screen
keypad or keyboard: digits, Backspace, Delete, Enter, Escape) one at a time in the order
pressed, and fetch the screen fragment again when its version changes (one request at a
time, so an older screen never replaces a newer one). Without JavaScript the keypad still
works as plain forms.

Routes: ``GET /`` the page; ``GET /screen?after=N`` the fragment when the screen's
version is past N (204 when not); ``POST /key`` (``key``), ``POST /language``
(``language``); for a courier's session ``POST /courier/key`` (``key``),
``/courier/text`` (``text``: the screen's text field), ``/courier/size`` (``size``) and
``/courier/reason`` (``reason``). Nothing here decides anything: every input goes to
:meth:`KioskService.send` (the machine takes only what the screen offers).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Final

import uvicorn
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from locker_agent.errors import KioskError
from locker_agent.kiosk.courier import (
    BrokenReason,
    CourierInput,
    CourierKey,
    CourierPress,
    ReasonChosen,
    SizeChosen,
    TextEntered,
)
from locker_agent.kiosk.machine import (
    CONTROL_KEYS,
    DIGITS,
    LANGUAGES,
    ChooseLanguage,
    KeyPress,
    Language,
    Screen,
)
from locker_agent.kiosk.service import KioskService
from locker_agent.kiosk.texts import OTHER_LANGUAGE, text, wording

logger = logging.getLogger(__name__)

#: the header the page's script sends, so a key press gets 204 instead of a redirect
FETCH_HEADER: Final = "x-kiosk-fetch"
_LANGUAGES: Final[dict[str, Language]] = {language: language for language in LANGUAGES}
KEYPAD_ROWS: Final = (
    ("1", "2", "3"),
    ("4", "5", "6"),
    ("7", "8", "9"),
    ("clear", "0", "backspace"),
)

_templates = Environment(
    loader=PackageLoader("locker_agent.kiosk", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def create_app(service: KioskService) -> Starlette:
    """The kiosk's ASGI app over ``service``."""

    def render(template: str, version: int, screen: Screen) -> str:
        language = screen.language
        other = OTHER_LANGUAGE[language]
        return _templates.get_template(template).render(
            version=version,
            screen=screen,
            said=wording(screen),
            t=lambda key, **values: text(language, key, **values),
            other=other,
            keypad=KEYPAD_ROWS,
            reasons=list(BrokenReason),
            text_stages=TEXT_STAGES,
        )

    async def page(_: Request) -> HTMLResponse:
        html = render("page.html", *service.screen())
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def fragment(request: Request) -> Response:
        after = _int(request.query_params.get("after"), -1)
        # one reading of the screen: the version header names the screen in the body
        version, screen = service.screen()
        if version <= after:
            return Response(status_code=204)
        headers = {"X-Screen-Version": str(version), "Cache-Control": "no-store"}
        return HTMLResponse(render("screen.html", version, screen), headers=headers)

    async def key(request: Request) -> Response:
        form = await request.form()
        pressed = str(form.get("key", ""))
        if pressed not in DIGITS and pressed not in CONTROL_KEYS:
            return Response("not a kiosk key", status_code=400)
        service.send(KeyPress(pressed))
        return _answer(request)

    async def language(request: Request) -> Response:
        form = await request.form()
        chosen = _LANGUAGES.get(str(form.get("language", "")))
        if chosen is None:
            return Response("not a kiosk language", status_code=400)
        service.send(ChooseLanguage(chosen))
        return _answer(request)

    async def courier(request: Request) -> Response:
        form = await request.form()
        field = request.path_params["field"]
        event = _courier_input(field, str(form.get(field, "")))
        if event is None:
            return Response("not a courier input", status_code=400)
        service.send(event)
        return _answer(request)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/screen", fragment),
            Route("/key", key, methods=["POST"]),
            Route("/language", language, methods=["POST"]),
            Route("/courier/{field:str}", courier, methods=["POST"]),
        ]
    )


#: the courier stages whose screen has a text field
TEXT_STAGES: Final = frozenset({"sign_in", "scan", "recipient"})
_MAX_TEXT: Final = 254


def _courier_input(field: str, value: str) -> CourierInput | None:
    """The input a courier form sends, or None for a field or value that is not one."""
    if field == "key" and value in CourierKey.__members__.values():
        return CourierPress(CourierKey(value))
    if field == "reason" and value in BrokenReason.__members__.values():
        return ReasonChosen(BrokenReason(value))
    if field == "size" and 0 < len(value) <= 8:
        return SizeChosen(value)
    if field == "text" and len(value) <= _MAX_TEXT:
        return TextEntered(value)
    return None


def _answer(request: Request) -> Response:
    if request.headers.get(FETCH_HEADER):
        return Response(status_code=204)
    return RedirectResponse("/", status_code=303)  # a plain form post: show the page again


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class KioskWebServer:
    """Serves the kiosk app with uvicorn on its own thread, on a socket bound at start."""

    def __init__(self, service: KioskService, host: str, port: int) -> None:
        self._app = create_app(service)
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise KioskError("the kiosk page is not being served")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}/"

    def start(self) -> KioskWebServer:
        """Bind now (a taken port fails here, not later); requests are served from then on."""
        self._socket = _bound_socket(self._host, self._port)
        config = uvicorn.Config(
            self._app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="kiosk-web"
        )
        self._thread.daemon = True
        self._thread.start()
        logger.info("kiosk page on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise KioskError(f"cannot serve the kiosk page on {host}:{port}: {exc}") from exc
    return sock
