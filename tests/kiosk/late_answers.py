"""The kiosk app answering in the orders a loaded cabinet computer can answer in.

Two requests of the page in flight at once can be answered in either order. These ASGI
wrappers around the real app make one such order happen every time, so a browser test
shows what the page does with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: how long a request or an answer is held back (seconds): far longer than the page needs
#: to send the next keys and fetch the next screens, well inside the tests' waits
HOLD_S = 1.0


class LateFirstKey:
    """The first key press is held back before the kiosk sees it: keys sent meanwhile
    reach it first."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._held = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _is(scope, "/key") and not self._held:
            self._held = True
            await asyncio.sleep(HOLD_S)
        await self._app(scope, receive, send)


class OvertakenScreen:
    """The first new screen after a key press is overtaken by newer ones: it is read
    while only that key is in (the keys typed after it wait until its headers went out),
    and its body goes out only once the page asks past a newer version (or after
    ``HOLD_S``).

    ``wrap`` it around the app. ``asked_after``: the highest version the page asked past
    since that body went out.
    """

    def __init__(self) -> None:
        self._app: ASGIApp | None = None
        self._keys = 0
        self._held: int | None = None  # the version of the screen held back
        self._held_started = asyncio.Event()
        self._overtaken = asyncio.Event()
        self._released = False
        self.asked_after = -1

    def wrap(self, app: ASGIApp) -> ASGIApp:
        self._app = app
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._app is not None, "wrap the app first"
        if _is(scope, "/key"):
            self._keys += 1
            if self._keys > 1:
                await _wait_at_most(self._held_started, HOLD_S)
        elif _is(scope, "/screen") and self._keys > 0:
            self._asked(_after(scope))
            send = self._screen_sender(send)
        await self._app(scope, receive, send)

    def _asked(self, after: int) -> None:
        if self._held is not None and after > self._held:
            self._overtaken.set()
        if self._released:
            self.asked_after = max(self.asked_after, after)

    def _screen_sender(self, send: Send) -> Send:
        holding = False

        async def send_screen(message: Message) -> None:
            nonlocal holding
            if message["type"] == "http.response.start":
                version = _screen_version(message)
                holding = version is not None and self._held is None
                if holding:
                    self._held = version
            elif holding:
                await _wait_at_most(self._overtaken, HOLD_S)
            await send(message)
            if holding:
                self._held_started.set()
                if message["type"] == "http.response.body":
                    self._released = True

        return send_screen


def _is(scope: Scope, path: str) -> bool:
    return bool(scope["type"] == "http" and scope["path"] == path)


def _after(scope: Scope) -> int:
    """The version a screen request asks past (``?after=N``)."""
    query = parse_qs(scope["query_string"].decode())
    return int(query.get("after", ["-1"])[0])


def _screen_version(start: Message) -> int | None:
    """The version a screen answer carries; None for a 204 (no new screen)."""
    headers = dict(start["headers"])
    version = headers.get(b"x-screen-version")
    return None if version is None else int(version)


async def _wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set, or ``seconds`` have passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
