"""Kalshi request signing, server side (API.md §2), and key pairs for ``dora sim keygen``.

A request carries ``KALSHI-ACCESS-KEY``, ``KALSHI-ACCESS-TIMESTAMP`` (Unix ms) and
``KALSHI-ACCESS-SIGNATURE`` (base64 of the signature over ``timestamp + METHOD + path``, the
path including ``/trade-api/v2`` and excluding the query). RSA keys sign with PSS over SHA-256
(MGF1 SHA-256; any salt length is accepted when verifying, as Go's ``VerifyPSS`` does);
Ed25519 keys sign the same text plainly. Public keys are parsed once, at registration.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from common.errors import ConfigError

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

MAX_CLOCK_SKEW_MS = 30_000
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)


class AuthError(Exception):
    """A request that fails authentication; ``details`` goes into Kalshi's 401 body."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


@dataclass(frozen=True, slots=True)
class Credentials:
    key_id: str
    timestamp: str
    signature: str


class KeyRegistry:
    def __init__(self) -> None:
        self._keys: dict[str, PublicKey] = {}

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def add_pem(self, key_id: str, pem: bytes) -> None:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise ConfigError(f"public key for {key_id!r} is not a PEM public key: {exc}") from None
        if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
            raise ConfigError(f"public key for {key_id!r} must be RSA or Ed25519")
        self._keys[key_id] = key

    def load_dir(self, directory: Path) -> list[str]:
        """Register every ``ID.pub.pem`` in ``directory`` as key id ``ID``."""
        if not directory.is_dir():
            raise ConfigError(f"--api-keys must be a directory, was {str(directory)!r}")
        added = []
        for path in sorted(directory.glob("*.pub.pem")):
            key_id = path.name[: -len(".pub.pem")]
            self.add_pem(key_id, path.read_bytes())
            added.append(key_id)
        return added

    def verify(self, creds: Credentials | None, method: str, path: str, now_ms: int) -> str:
        """The key id of a correctly signed request, else ``AuthError``."""
        if creds is None or not (creds.key_id and creds.timestamp and creds.signature):
            raise AuthError("MISSING_API_KEY_HEADERS")
        key = self._keys.get(creds.key_id)
        if key is None:
            raise AuthError("INCORRECT_API_KEY")
        if not creds.timestamp.isdigit():
            raise AuthError("INVALID_TIMESTAMP")
        if abs(int(creds.timestamp) - now_ms) > MAX_CLOCK_SKEW_MS:
            raise AuthError("STALE_TIMESTAMP")
        try:
            signature = base64.b64decode(creds.signature, validate=True)
        except (binascii.Error, ValueError):
            raise AuthError("INCORRECT_API_KEY_SIGNATURE") from None
        message = f"{creds.timestamp}{method}{path}".encode()
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, message, _PSS, hashes.SHA256())
            else:
                key.verify(signature, message)
        except InvalidSignature:
            raise AuthError("INCORRECT_API_KEY_SIGNATURE") from None
        return creds.key_id


def credentials_from(headers: object) -> Credentials | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    key_id = get("KALSHI-ACCESS-KEY")
    if key_id is None:
        return None
    return Credentials(
        key_id, get("KALSHI-ACCESS-TIMESTAMP", ""), get("KALSHI-ACCESS-SIGNATURE", "")
    )


# ----- client side (tests, benchmark, keygen) -----------------------------------------------


def sign(private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, text: str) -> str:
    data = text.encode()
    if isinstance(private_key, rsa.RSAPrivateKey):
        raw = private_key.sign(
            data,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
    else:
        raw = private_key.sign(data)
    return base64.b64encode(raw).decode()


def auth_headers(
    key_id: str,
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    method: str,
    path: str,
    now_ms: int,
) -> dict[str, str]:
    timestamp = str(now_ms)
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": timestamp,
        "KALSHI-ACCESS-SIGNATURE": sign(private_key, f"{timestamp}{method}{path.split('?')[0]}"),
    }


def load_private_key(path: Path) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path}: private key must be RSA or Ed25519")
    return key


def generate_key_pair(key_type: str = "rsa") -> tuple[bytes, bytes]:
    """(private PEM, public PEM). RSA 2048 private keys are PKCS#1 like Kalshi's downloads;
    Ed25519 private keys are PKCS#8."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if key_type == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    elif key_type == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        fmt = serialization.PrivateFormat.PKCS8
    else:
        raise ConfigError(f"key type must be rsa or ed25519, was {key_type!r}")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def write_key_pair(directory: Path, name: str, key_type: str = "rsa") -> tuple[Path, Path]:
    """Write ``DIR/NAME.pem`` (mode 0600) and ``DIR/NAME.pub.pem``; refuses to overwrite."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"--name must be a plain file name, was {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / f"{name}.pem"
    public_path = directory / f"{name}.pub.pem"
    if private_path.exists() or public_path.exists():
        raise ConfigError(f"{private_path} or {public_path} already exists; not overwriting")
    private_pem, public_pem = generate_key_pair(key_type)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path
