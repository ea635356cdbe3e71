"""The pickup QR code as a PNG that a locker's camera reads reliably."""

from __future__ import annotations

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M

from locker_contract.pickup_qr import encode_pickup_qr

# 10-pixel modules and the standard 4-module quiet zone: large enough for a kiosk camera
# at arm's length and for a phone screen held up to the scanner.
_BOX_SIZE = 10
_BORDER = 4


def qr_png(qr_token: str) -> bytes:
    """The pickup QR of ``qr_token`` (never the short code) as a PNG image.

    The symbol carries the contract's ``LKR1:<token>:<check>`` text, so a cabinet can tell
    our codes from any other; the stored hash stays over the bare token.
    """
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=_BOX_SIZE, border=_BORDER)
    code.add_data(encode_pickup_qr(qr_token))
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()
