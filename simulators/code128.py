"""A tiny Code 128 (code set B) encoder, so the virtual camera can print parcel labels.

No barcode-writing package is installed beside the readers, and making test labels with
the decoder library we are testing would hide its own mistakes, so the symbol table is
written here. Code set B covers printable ASCII (32..126), which is what carriers print
on labels in human-readable form; a real label may switch to set C for digit pairs,
which only changes its width, not what a reader has to do.

Source of the table: ISO/IEC 15417:2007, table 1 (bar/space widths in modules of the
106 symbol values plus the 7-element stop pattern), the same table every encoder carries.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

# Widths of bar, space, bar, space, bar, space for symbol values 0..105.
_TABLE: Final = (
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 "
    "221312 231212 112232 122132 122231 113222 123122 123221 223211 221132 "
    "221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 "
    "212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 "
    "231113 231311 112133 112331 132131 113123 113321 133121 313121 211331 "
    "231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 "
    "314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 "
    "112412 122114 122411 142112 142211 241211 221114 413111 241112 134111 "
    "111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 "
    "214121 412121 111143 111341 131141 114113 114311 411113 411311 113141 "
    "114131 311141 411131 211412 211214 211232"
)
_WIDTHS: Final = tuple(_TABLE.split())
_STOP: Final = "2331112"
_START_B: Final = 104
_QUIET_MODULES: Final = 10


def code128b_values(text: str) -> list[int]:
    """Symbol values of ``text``: start B, one value per character, the check symbol."""
    if not text or any(not 32 <= ord(char) <= 126 for char in text):
        raise ValueError("code set B encodes 1 or more printable ASCII characters")
    values = [_START_B, *(ord(char) - 32 for char in text)]
    check = sum(value * max(position, 1) for position, value in enumerate(values)) % 103
    return [*values, check]


def code128b_modules(text: str) -> npt.NDArray[np.bool_]:
    """One row of modules (True = bar) including the 10-module quiet zone on each side."""
    widths = "".join(_WIDTHS[value] for value in code128b_values(text)) + _STOP
    row: list[bool] = [False] * _QUIET_MODULES
    for index, width in enumerate(widths):
        row.extend([index % 2 == 0] * int(width))
    row.extend([False] * _QUIET_MODULES)
    return np.array(row, dtype=np.bool_)
