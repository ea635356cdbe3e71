"""Secret keys kept outside the database.

Each key lives in its own file in the secrets directory (mode 0600), created with
fresh randomness on first use so a development install works out of the box. In
production the directory is provisioned by the operator (or mounted from a secret
store); a key file that is too short or holds a placeholder is refused.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_server.errors import ConfigurationError

_MIN_SYMMETRIC_BYTES = 32
_PICKUP_HMAC = "pickup-hmac.key"
_TOKEN_SIGNING = "token-signing.key"  # noqa: S105  (a file name, not a secret)
_WEBHOOK_SIGNING = "webhook-signing.key"
_OUTBOX_SEALING = "outbox-sealing.key"
_AUDIT_SIGNING = "audit-signing-ed25519.pem"
_COMMAND_SIGNING = "command-signing-ed25519.pem"


@dataclass(frozen=True, slots=True)
class ServerKeys:
    """All server secrets, loaded once and passed to the services that need them."""

    pickup_hmac_key: bytes
    token_signing_key: bytes
    webhook_signing_key: bytes
    #: AES-256-GCM key sealing a pickup code in the notification outbox until it is sent.
    outbox_sealing_key: bytes
    audit_signing_key: Ed25519PrivateKey
    #: Signs door commands to cabinets; cabinets hold only its public key.
    command_signing_key: Ed25519PrivateKey


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _symmetric_key(path: Path) -> bytes:
    if not path.exists():
        _write_private(path, secrets.token_hex(_MIN_SYMMETRIC_BYTES).encode())
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigurationError(f"{path.name} must hold hex-encoded random bytes") from exc
    if len(key) < _MIN_SYMMETRIC_BYTES or len(set(key)) < 8:
        raise ConfigurationError(f"{path.name} must hold at least 32 random bytes")
    return key


def _ed25519_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path.name} must hold an Ed25519 private key")
    return key


def load_keys(secrets_dir: Path) -> ServerKeys:
    """Load (creating on first use) every server key from ``secrets_dir``."""
    return ServerKeys(
        pickup_hmac_key=_symmetric_key(secrets_dir / _PICKUP_HMAC),
        token_signing_key=_symmetric_key(secrets_dir / _TOKEN_SIGNING),
        webhook_signing_key=_symmetric_key(secrets_dir / _WEBHOOK_SIGNING),
        outbox_sealing_key=_symmetric_key(secrets_dir / _OUTBOX_SEALING),
        audit_signing_key=_ed25519_key(secrets_dir / _AUDIT_SIGNING),
        command_signing_key=_ed25519_key(secrets_dir / _COMMAND_SIGNING),
    )
