"""Redis connections from settings: plain, password/ACL user in the URL, or TLS (``rediss://``)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from common.settings import Settings


def connect_redis(settings: Settings, **overrides: Any) -> aioredis.Redis:
    """An asyncio Redis client with str responses. ACL user and password come from the URL
    (``redis://user:pass@host:6379/0``); ``rediss://`` turns on TLS, verified against
    ``DORA_REDIS_CA_CERT`` when set."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry_on_timeout": True,
    }
    if settings.redis_url.startswith("rediss://") and settings.redis_ca_cert:
        options["ssl_ca_certs"] = settings.redis_ca_cert
    options.update(overrides)
    client: aioredis.Redis = aioredis.Redis.from_url(settings.redis_url, **options)
    return client
