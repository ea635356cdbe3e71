"""The pickup QR code as a PNG that a locker's camera reads reliably."""

from __future__ import annotations

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# 10-pixel modules and the standard 4-module quiet zone: large enough for a kiosk camera
# at arm's length and for a phone screen held up to the scanner.
_BOX_SIZE = 10
_BORDER = 4


def qr_png(payload: str) -> bytes:
    """Encode ``payload`` (the QR token, never the short code) as a PNG image."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=_BOX_SIZE, border=_BORDER)
    code.add_data(payload)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()
