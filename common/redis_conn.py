"""Redis connections from settings: plain, password/ACL user in the URL, or TLS (``rediss://``);
one Redis or a Redis Cluster (``DORA_REDIS_CLUSTER=true``, ElastiCache cluster mode)."""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from common.keys import Keys
from common.settings import Settings


def keys_for(settings: Settings) -> Keys:
    """The key names for these settings: hash-tagged per shard in cluster mode."""
    return Keys(
        settings.key_prefix,
        cluster=settings.redis_cluster,
        shard_count=settings.shard_count,
        shard_index=settings.shard_index,
    )


def connect_redis(settings: Settings, **overrides: Any) -> aioredis.Redis:
    """An asyncio Redis client with str responses. ACL user and password come from the URL
    (``redis://user:pass@host:6379/0``); ``rediss://`` turns on TLS, verified against
    ``DORA_REDIS_CA_CERT`` when set. In cluster mode the URL is any node's (the client discovers
    the rest, follows MOVED/ASK and re-reads the slots after a failover); the cluster client
    offers the same commands, pipelines (MULTI within one slot) and pub/sub, so callers keep the
    ``Redis`` type."""
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
    if settings.redis_cluster:
        for option in ("health_check_interval", "retry_on_timeout", "db"):
            options.pop(option, None)  # not cluster-client options
        return cast(aioredis.Redis, RedisCluster.from_url(settings.redis_url, **options))
    client: aioredis.Redis = aioredis.Redis.from_url(settings.redis_url, **options)
    return client
