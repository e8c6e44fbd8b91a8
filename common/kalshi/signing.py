"""Request signing (API.md §2) and where the private key comes from (DESIGN.md §8).

The message signed is ``timestamp_ms + METHOD + path`` (path with ``/trade-api/v2``, without the
query). RSA keys sign with RSA-PSS / SHA-256 / MGF1(SHA-256) / salt = digest length; Ed25519 keys
sign plainly. The key text is registered with the log scrubber as soon as it is read, and no
object here shows it in a ``repr`` or an exception message.
"""

from __future__ import annotations

import base64
import os
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from common.errors import ConfigError
from common.log import register_secret
from common.settings import Settings

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


def load_private_key_pem(settings: Settings) -> tuple[str, str]:
    """(PEM text, where it came from) from exactly one configured source: a file, the
    ``DORA_KALSHI_PRIVATE_KEY`` variable, AWS Secrets Manager or SSM Parameter Store."""
    settings.require_kalshi_credentials()
    if settings.kalshi_private_key_path:
        path = os.path.expanduser(settings.kalshi_private_key_path)
        try:
            with open(path, encoding="utf-8") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"DORA_KALSHI_PRIVATE_KEY_PATH {path!r} cannot be read: {exc.strerror}"
            ) from None
        source = f"key file {path!r}"
    elif settings.kalshi_private_key:
        pem = settings.kalshi_private_key.replace("\\n", "\n")
        source = "DORA_KALSHI_PRIVATE_KEY"
    elif settings.kalshi_private_key_secret_id:
        pem = _from_secrets_manager(settings.kalshi_private_key_secret_id, settings.aws_region)
        source = f"secret {settings.kalshi_private_key_secret_id!r}"
    else:
        pem = _from_ssm(settings.kalshi_private_key_ssm_param, settings.aws_region)
        source = f"SSM parameter {settings.kalshi_private_key_ssm_param!r}"
    register_secret(pem)
    return pem, source


def load_signer(settings: Settings) -> Signer:
    pem, source = load_private_key_pem(settings)
    return signer_from_pem(settings.kalshi_key_id, pem, source=source)


def _from_secrets_manager(secret_id: str, region: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("secretsmanager", region_name=region)
        answer = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigError(
            f"secret {secret_id!r} cannot be read from Secrets Manager: {code}"
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(
            f"Secrets Manager is unreachable for {secret_id!r}: {type(exc).__name__}"
        ) from None
    value = answer.get("SecretString")
    if value is None and answer.get("SecretBinary") is not None:
        value = bytes(answer["SecretBinary"]).decode(errors="replace")
    if not value:
        raise ConfigError(f"secret {secret_id!r} holds no key")
    return _unwrap_json(str(value))


def _from_ssm(name: str, region: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("ssm", region_name=region)
        answer = client.get_parameter(Name=name, WithDecryption=True)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigError(f"SSM parameter {name!r} cannot be read: {code}") from None
    except BotoCoreError as exc:
        raise ConfigError(f"SSM is unreachable for {name!r}: {type(exc).__name__}") from None
    value = answer.get("Parameter", {}).get("Value")
    if not value:
        raise ConfigError(f"SSM parameter {name!r} holds no key")
    return _unwrap_json(str(value))


def _unwrap_json(value: str) -> str:
    """A secret may hold the PEM itself or JSON like ``{"private_key": "-----BEGIN..."}``."""
    stripped = value.strip()
    if stripped.startswith("{"):
        import orjson

        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return value
        if isinstance(data, dict):
            for name in ("private_key", "kalshi_private_key", "key", "pem"):
                if isinstance(data.get(name), str):
                    register_secret(value)
                    return str(data[name]).replace("\\n", "\n")
    return value
