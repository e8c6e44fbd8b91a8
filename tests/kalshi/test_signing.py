"""Signing with throwaway keys (the key sources are in tests/common/test_connect.py)."""

from __future__ import annotations

import base64
import io
import logging

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from common.errors import ConfigError
from common.kalshi.signing import (
    Ed25519Signer,
    RsaPssSigner,
    auth_headers,
    signer_from_pem,
    signing_message,
)
from common.log import setup_logging


def rsa_pem(pkcs1: bool = True) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if pkcs1
        else serialization.PrivateFormat.PKCS8
    )
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
    return key, pem


def ed_pem() -> tuple[ed25519.Ed25519PrivateKey, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key, pem


@pytest.fixture(scope="module")
def rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    return rsa_pem()


def test_message_is_timestamp_method_path_without_query() -> None:
    assert signing_message(1715, "get", "/trade-api/v2/portfolio/orders?limit=5") == (
        b"1715GET/trade-api/v2/portfolio/orders"
    )


@pytest.mark.parametrize("pkcs1", [True, False])
def test_rsa_pss_signature_verifies(pkcs1: bool) -> None:
    key, pem = rsa_pem(pkcs1)
    signer = signer_from_pem("kid", pem)
    assert isinstance(signer, RsaPssSigner)
    headers = auth_headers(signer, 1715000000000, "POST", "/trade-api/v2/portfolio/events/orders")
    assert headers["KALSHI-ACCESS-KEY"] == "kid"
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1715000000000"
    key.public_key().verify(
        base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]),
        b"1715000000000POST/trade-api/v2/portfolio/events/orders",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_ed25519_signature_verifies() -> None:
    key, pem = ed_pem()
    signer = signer_from_pem("kid", pem)
    assert isinstance(signer, Ed25519Signer)
    signature = base64.b64decode(signer.sign(b"1GET/trade-api/ws/v2"))
    key.public_key().verify(signature, b"1GET/trade-api/ws/v2")


def test_key_never_in_repr_or_errors(rsa_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    _, pem = rsa_key
    signer = signer_from_pem("kid", pem)
    body = pem.splitlines()[1]
    assert body not in repr(signer) and "hidden" in repr(signer) and body not in str(signer)
    broken = pem.replace(body, body[::-1])
    with pytest.raises(ConfigError) as info:
        signer_from_pem("kid", broken, source="test key")
    assert body[::-1] not in str(info.value) and info.value.__cause__ is None


def test_loaded_key_is_scrubbed_from_logs(rsa_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    _, pem = rsa_key
    signer_from_pem("kid", pem)
    stream = io.StringIO()
    log = setup_logging("test", stream=stream)
    line = pem.splitlines()[2]
    log.error("oops", detail=f"key line {line}")
    assert line not in stream.getvalue() and "[REDACTED]" in stream.getvalue()
    logging.getLogger("dora").handlers.clear()
