"""The package surface: protocol lookup, the BoardProtocol contract, and no I/O imports."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

import firmware_protocol
from firmware_protocol import PROTOCOLS, get_protocol, kerong, xor8a80
from firmware_protocol.base import NEED_DATA, BoardProtocol, Reply, Request
from firmware_protocol.errors import EncodeError, ProtocolError, UnknownProtocolError

FORBIDDEN_IMPORTS = {"serial", "asyncio", "socket", "threading", "paho", "sqlalchemy", "sqlmodel"}
FORBIDDEN_IMPORTS |= {"psycopg", "selectors", "multiprocessing", "aiomqtt", "httpx"}


def test_protocols_are_found_by_their_configuration_names() -> None:
    assert get_protocol("8a80") is xor8a80.PROTOCOL
    assert get_protocol("kerong") is kerong.PROTOCOL
    assert set(PROTOCOLS) == {"8a80", "kerong"}


def test_unknown_protocol_name_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownProtocolError, match="8a80, kerong") as caught:
        get_protocol("modbus")
    assert isinstance(caught.value, ProtocolError)


@pytest.mark.parametrize(
    ("name", "baud", "boards", "locks"),
    [("8a80", 9600, range(1, 32), 32), ("kerong", 19200, range(0, 15), 16)],
)
def test_protocol_reports_its_serial_defaults_and_address_space(
    name: str, baud: int, boards: range, locks: int
) -> None:
    protocol = get_protocol(name)
    assert (protocol.name, protocol.default_baud) == (name, baud)
    assert (protocol.board_range, protocol.max_locks) == (boards, locks)


def _requests(protocol: BoardProtocol) -> list[Request]:
    board = protocol.board_range[-1]
    return [
        protocol.unlock(board, protocol.max_locks),
        protocol.unlock_all(board),
        protocol.query_lock(board, 1),
        protocol.query_all(board),
    ]


@pytest.mark.parametrize("protocol", list(PROTOCOLS.values()), ids=list(PROTOCOLS))
def test_requests_built_by_the_protocol_reach_the_simulated_board_intact(
    protocol: BoardProtocol,
) -> None:
    board_side = protocol.request_decoder()
    for request in _requests(protocol):
        assert isinstance(request, Request)
        board_side.feed(request.to_bytes())
        assert board_side.next_frame() == request
    assert board_side.next_frame() is NEED_DATA


@pytest.mark.parametrize("protocol", list(PROTOCOLS.values()), ids=list(PROTOCOLS))
def test_protocol_refuses_to_address_a_board_or_lock_it_does_not_have(
    protocol: BoardProtocol,
) -> None:
    beyond_board = protocol.board_range.stop
    with pytest.raises(EncodeError):
        protocol.unlock(beyond_board, 1)
    with pytest.raises(EncodeError):
        protocol.unlock(protocol.board_range.start, protocol.max_locks + 1)
    with pytest.raises(EncodeError):
        protocol.query_all(protocol.board_range.start - 1)


def test_replies_satisfy_the_reply_contract() -> None:
    replies = [xor8a80.UnlockReply(1, 1, xor8a80.SIGNAL), xor8a80.AllLocksReply(1, b"\x00")]
    replies += [xor8a80.AddressReply(1), kerong.StatusReply(0, 0, 0)]
    for reply in replies:
        assert isinstance(reply, Reply)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_package_does_no_io_it_imports_no_serial_network_thread_or_database_module() -> None:
    package_dir = Path(firmware_protocol.__file__).parent
    modules = [package_dir / "__init__.py"]
    modules += [
        package_dir / f"{info.name}.py" for info in pkgutil.iter_modules([str(package_dir)])
    ]
    assert {path.stem for path in modules} >= {"__init__", "base", "errors", "xor8a80", "kerong"}
    for path in modules:
        assert _imported_modules(path).isdisjoint(FORBIDDEN_IMPORTS), path.name
