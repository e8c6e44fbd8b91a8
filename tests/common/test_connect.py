"""The runtime side of the exchange adapter: the four key sources (moto for AWS), the Redis
names of the rate buckets, and a client built from settings."""

from __future__ import annotations

from pathlib import Path

import boto3
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

from common.connect import load_private_key_pem, load_signer, rate_bucket_keys
from common.errors import ConfigError
from common.kalshi.ratelimit import READ, WRITE
from common.kalshi.signing import Ed25519Signer, RsaPssSigner
from common.settings import load_settings
from tests.kalshi.test_signing import ed_pem, rsa_pem


@pytest.fixture(scope="module")
def rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    return rsa_pem()


def _settings(**env: str):  # type: ignore[no-untyped-def]
    return load_settings({"DORA_KALSHI_KEY_ID": "kid", **env}, read_file=False)


def test_key_from_file(tmp_path: Path, rsa_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    path = tmp_path / "k.pem"
    path.write_text(rsa_key[1])
    signer = load_signer(_settings(DORA_KALSHI_PRIVATE_KEY_PATH=str(path)))
    assert signer.key_id == "kid"


def test_key_file_missing_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_signer(_settings(DORA_KALSHI_PRIVATE_KEY_PATH=str(tmp_path / "nope.pem")))


def test_key_from_environment_with_escaped_newlines(rsa_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    escaped = rsa_key[1].replace("\n", "\\n")
    settings = _settings(DORA_KALSHI_PRIVATE_KEY=escaped)
    assert isinstance(load_signer(settings), RsaPssSigner)
    assert escaped not in repr(settings)


def test_key_from_secrets_manager_plain_and_json() -> None:
    _, pem = ed_pem()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="dora/plain", SecretString=pem)
        client.create_secret(
            Name="dora/json", SecretString=orjson.dumps({"private_key": pem}).decode()
        )
        plain = load_signer(_settings(DORA_KALSHI_PRIVATE_KEY_SECRET_ID="dora/plain"))
        assert isinstance(plain, Ed25519Signer)
        text, source = load_private_key_pem(
            _settings(DORA_KALSHI_PRIVATE_KEY_SECRET_ID="dora/json")
        )
        assert text.strip() == pem.strip() and "dora/json" in source
        with pytest.raises(ConfigError, match="ResourceNotFoundException"):
            load_signer(_settings(DORA_KALSHI_PRIVATE_KEY_SECRET_ID="dora/missing"))


def test_key_from_ssm_parameter(rsa_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name="/dora/key", Value=rsa_key[1], Type="SecureString")
        assert isinstance(
            load_signer(_settings(DORA_KALSHI_PRIVATE_KEY_SSM_PARAM="/dora/key")), RsaPssSigner
        )
        with pytest.raises(ConfigError, match="ParameterNotFound"):
            load_signer(_settings(DORA_KALSHI_PRIVATE_KEY_SSM_PARAM="/dora/none"))


def test_no_or_two_sources_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Kalshi private key source"):
        load_signer(_settings())
    with pytest.raises(ConfigError, match="more than one"):
        load_signer(
            _settings(DORA_KALSHI_PRIVATE_KEY_PATH="/x", DORA_KALSHI_PRIVATE_KEY_SSM_PARAM="/y")
        )


def test_rate_buckets_are_named_per_account_under_the_prefix() -> None:
    keys = rate_bucket_keys(_settings(DORA_KEY_PREFIX="x:"))
    assert keys == {READ: "x:ratelimit:kid:read", WRITE: "x:ratelimit:kid:write"}
