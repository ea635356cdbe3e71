"""Codes from a serial barcode scanner module arrive one per line, whatever line ending it uses."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from locker_agent.errors import ScannerError
from locker_agent.scan.decoders import Symbology
from locker_agent.scan.events import CodeRead
from locker_agent.scan.scanner import (
    LineSplitter,
    ScannerSettings,
    SerialScanner,
    scanner_events,
)
from locker_contract.pickup_qr import QrVerdict
from simulators.scanner import VirtualScanner
from tests.scan.scenes import LABEL, PICKUP_QR, TOKEN


@pytest.fixture
def scanner() -> Iterator[VirtualScanner]:
    with VirtualScanner() as virtual:
        yield virtual


def test_cr_crlf_and_lf_each_end_exactly_one_code() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"ONE\rTWO\r\nTHREE\n") == ["ONE", "TWO", "THREE"]


def test_a_code_split_across_reads_comes_out_whole() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"LKR1:ab") == []
    assert splitter.feed(b"cd:12") == []
    assert splitter.feed(b"34\r") == ["LKR1:abcd:1234"]


def test_blank_lines_and_surrounding_spaces_are_dropped() -> None:
    assert LineSplitter().feed(b"\r\n\r\n  CODE \r\r") == ["CODE"]


def test_line_noise_longer_than_any_code_is_dropped_and_the_next_code_still_reads() -> None:
    splitter = LineSplitter(max_line=8)
    assert splitter.feed(b"0123456789ABCDEF\rGOOD\r") == ["GOOD"]


def test_bytes_that_are_not_utf8_never_raise() -> None:
    assert LineSplitter().feed(b"\xffAB\r") == ["\ufffdAB"]


def test_recipient_scans_the_qr_under_the_scanner_module(scanner: VirtualScanner) -> None:
    with SerialScanner(ScannerSettings(port=scanner.port)) as module:
        scanner.scan(PICKUP_QR)
        scanner.scan(LABEL, ending="\r\n")
        events = list(itertools.islice(scanner_events(module), 2))

    assert events == [
        CodeRead(PICKUP_QR, Symbology.UNKNOWN, "scanner", QrVerdict.PICKUP, TOKEN),
        CodeRead(LABEL, Symbology.UNKNOWN, "scanner", QrVerdict.FOREIGN, None),
    ]


def test_stopped_scanner_ends_its_lines(scanner: VirtualScanner) -> None:
    with SerialScanner(ScannerSettings(port=scanner.port, read_timeout=0.05)) as module:
        lines = module.lines()
        scanner.scan("FIRST")
        assert next(lines) == "FIRST"
        module.stop()
        assert list(lines) == []


def test_a_scanner_port_that_does_not_exist_is_a_scanner_error() -> None:
    with (
        pytest.raises(ScannerError, match="cannot open scanner"),
        SerialScanner(ScannerSettings(port="/dev/does-not-exist-scanner")),
    ):
        pass
