"""The kiosk page over real HTTP, served by the agent of a simulated cabinet."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from locker_agent.errors import KioskError
from locker_agent.kiosk.web import KioskWebServer
from tests.agent_link.rig import entry
from tests.kiosk.conftest import KioskCabinet, KioskCabinetFactory

CODE = "36925814"
FETCH = {"X-Kiosk-Fetch": "1"}


def base_url(rig: KioskCabinet) -> str:
    web = rig.cabinet.runtime.kiosk_web
    assert web is not None
    return web.url


def test_the_page_is_served_on_loopback_in_chinese_with_a_keypad(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()

    page = httpx.get(base_url(rig))

    assert base_url(rig).startswith("http://127.0.0.1:")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "请输入 8 位取件码" in page.text
    assert all(f'data-key="{digit}"' in page.text for digit in "0123456789")
    assert not re.search(r"(src|href)=\"https?://", page.text)  # nothing from outside


def test_typed_digits_are_shown_masked_and_never_in_the_page(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()
    rig.supply(entry(51, 2, CODE))
    version = rig.kiosk.screen()[0]

    for digit in CODE[:5]:
        assert (
            httpx.post(base_url(rig) + "key", data={"key": digit}, headers=FETCH).status_code == 204
        )
    rig.wait_screen(lambda s: s.digits_entered == 5)
    fragment = httpx.get(base_url(rig) + "screen", params={"after": version})

    assert fragment.status_code == 200
    assert int(fragment.headers["X-Screen-Version"]) > version
    assert fragment.text.count('class="slot filled"') == 5
    assert CODE[:5] not in fragment.text
    unchanged = httpx.get(
        base_url(rig) + "screen", params={"after": fragment.headers["X-Screen-Version"]}
    )
    assert unchanged.status_code == 204


def test_a_plain_form_post_comes_back_to_the_page_and_nonsense_is_refused(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()

    plain = httpx.post(base_url(rig) + "language", data={"language": "en"})
    nonsense = httpx.post(base_url(rig) + "key", data={"key": "x"}, headers=FETCH)

    assert (plain.status_code, plain.headers["location"]) == (303, "/")
    assert nonsense.status_code == 400
    rig.wait_screen(lambda s: s.language == "en")
    assert "Collect a parcel" in httpx.get(base_url(rig)).text


def test_a_taken_kiosk_port_stops_the_agent_with_a_clear_error(
    make_kiosk_cabinet: KioskCabinetFactory,
) -> None:
    rig = make_kiosk_cabinet()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = KioskWebServer(rig.kiosk, "127.0.0.1", taken.getsockname()[1])

        with pytest.raises(KioskError, match="cannot serve the kiosk page"):
            server.start()
