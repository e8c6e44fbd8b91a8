"""How a process reaches Kalshi from its settings: the private key, the rate budget, the client.

``common.kalshi`` takes plain values (a base URL, a signer, Redis key names, a tier); this module
is the one place that reads them out of ``Settings`` and the Redis key schema. The private key
comes from exactly one configured source (a file, ``DORA_KALSHI_PRIVATE_KEY``, AWS Secrets
Manager or SSM Parameter Store) and is registered with the log scrubber as soon as it is read.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis.asyncio as aioredis

from common.clock import Clock
from common.errors import ConfigError
from common.kalshi.client import KalshiClient
from common.kalshi.ratelimit import READ, WRITE, LocalRateBudget, RateBudget, RedisRateBudget
from common.kalshi.signing import Signer, signer_from_pem
from common.keys import Keys
from common.log import register_secret
from common.settings import Settings


async def kalshi_client(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    clock: Clock | None = None,
    budget: RateBudget | None = None,
    signer: Signer | None = None,
    **transport_options: Any,
) -> KalshiClient:
    """A client for ``settings``' environment, key and subaccount. With ``redis`` the rate
    budget is the account-wide one in Redis; without, a process-local one."""
    if signer is None:
        signer = await asyncio.to_thread(load_signer, settings)
    if budget is None:
        budget = rate_budget(settings, redis, clock)
    return KalshiClient.create(
        settings.rest_base_url,
        signer,
        budget=budget,
        clock=clock,
        subaccount=settings.kalshi_subaccount,
        **transport_options,
    )


def rate_budget(
    settings: Settings, redis: aioredis.Redis | None = None, clock: Clock | None = None
) -> RateBudget:
    """The account's shared budget in Redis, or a process-local one without Redis."""
    if redis is None:
        return LocalRateBudget(settings.rate_tier, clock)
    return RedisRateBudget(redis, rate_bucket_keys(settings), settings.rate_tier, clock=clock)


def rate_bucket_keys(settings: Settings) -> dict[str, str]:
    """The Redis key of each token bucket: one pair per account (API key id)."""
    keys = Keys(settings.key_prefix)
    account = settings.kalshi_key_id
    return {
        bucket: keys.ratelimit(f"{account}:{bucket}" if account else bucket)
        for bucket in (READ, WRITE)
    }


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
