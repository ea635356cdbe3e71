"""The simulator's Code 128 labels are real Code 128: two independent readers agree."""

from __future__ import annotations

import string

import pytest

from locker_agent.scan.decoders import Decoded, Symbology, ZbarDecoder, ZxingDecoder
from simulators.code128 import code128b_values
from tests.scan.scenes import frame_of


def test_check_symbol_is_the_weighted_sum_modulo_103() -> None:
    # start B (104) + 1*'A'(33) + 2*'B'(34) = 205; 205 mod 103 = 102
    assert code128b_values("AB") == [104, 33, 34, 102]


@pytest.mark.parametrize(
    "text", ["JJD0001234567890", "1Z999AA10123456784", string.punctuation[:20], "a b~c"]
)
def test_labels_read_back_with_both_libraries(text: str) -> None:
    frame = frame_of("label", text, size=(1280, 720))
    expected = [Decoded(text, Symbology.CODE128)]
    assert ZxingDecoder().decode(frame) == expected
    assert ZbarDecoder().decode(frame) == expected


@pytest.mark.parametrize("bad", ["", "é", "tab\there"])
def test_code_set_b_refuses_what_it_cannot_encode(bad: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        code128b_values(bad)
