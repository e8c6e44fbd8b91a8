"""Request signing (API.md §2): a signer from a private key in PEM.

The message signed is ``timestamp_ms + METHOD + path`` (path with ``/trade-api/v2``, without the
query). RSA keys sign with RSA-PSS / SHA-256 / MGF1(SHA-256) / salt = digest length; Ed25519 keys
sign plainly. The key text is registered with the log scrubber as soon as it is read, and no
object here shows it in a ``repr`` or an exception message.
"""

from __future__ import annotations

import base64
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from common.errors import ConfigError
from common.log import register_secret

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


class Signer(Protocol):
    key_id: str

    def sign(self, message: bytes) -> str:
        """The base64 signature of ``message``."""
        ...


def signing_message(timestamp_ms: int, method: str, path: str) -> bytes:
    """What Kalshi signs: ``'1715...GET/trade-api/v2/portfolio/orders'`` (no query string)."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def auth_headers(signer: Signer, timestamp_ms: int, method: str, path: str) -> dict[str, str]:
    return {
        "KALSHI-ACCESS-KEY": signer.key_id,
        "KALSHI-ACCESS-TIMESTAMP": str(timestamp_ms),
        "KALSHI-ACCESS-SIGNATURE": signer.sign(signing_message(timestamp_ms, method, path)),
    }


class RsaPssSigner:
    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, key: rsa.RSAPrivateKey) -> None:
        self.key_id = key_id
        self._key = key

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message, _PSS, hashes.SHA256())).decode()

    def __repr__(self) -> str:
        return f"RsaPssSigner(key_id={self.key_id!r}, key=<{self._key.key_size}-bit RSA, hidden>)"

    __str__ = __repr__


class Ed25519Signer:
    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, key: ed25519.Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._key = key

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode()

    def __repr__(self) -> str:
        return f"Ed25519Signer(key_id={self.key_id!r}, key=<Ed25519, hidden>)"

    __str__ = __repr__


def signer_from_pem(key_id: str, pem: str | bytes, *, source: str = "the key") -> Signer:
    """A signer for an RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8) private key in PEM."""
    text = pem.decode(errors="replace") if isinstance(pem, bytes) else pem
    register_secret(text)
    data = text.strip().encode()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # never chain the original: its message may quote key bytes
        raise ConfigError(
            f"{source} is not an unencrypted PEM private key (RSA or Ed25519)"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaPssSigner(key_id, key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key_id, key)
    raise ConfigError(f"{source} must be an RSA or Ed25519 private key, was {type(key).__name__}")
