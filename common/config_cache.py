"""Reading the mirrored trading config from Redis (``dora:cfg:*``), kept in memory.

The persister mirrors DynamoDB into Redis; every other process reads it through this cache and
refreshes it on a ``reload`` control message and every few seconds. A mirrored item that does not
validate is reported once and that market keeps its last valid config (or stays disabled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from common.config import GlobalConfig, MarketConfig
from common.errors import ConfigError, SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.redis_codec import decode_global_config, decode_market_config


@dataclass
class ConfigCache:
    keys: Keys
    log: EventLogger
    global_config: GlobalConfig = field(default_factory=GlobalConfig)
    markets: dict[str, MarketConfig] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    loaded_ms: int = 0

    def enabled(self) -> list[str]:
        return sorted(t for t, c in self.markets.items() if c.enabled)

    def market(self, ticker: str) -> MarketConfig:
        """The config of ``ticker``, or a disabled default when there is none."""
        return self.markets.get(ticker) or MarketConfig(ticker, enabled=False)

    async def refresh(self, redis: aioredis.Redis, now_ms: int) -> bool:
        """Reload from Redis; returns True when anything changed."""
        tickers = sorted(await redis.smembers(self.keys.cfg_markets))
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.cfg_global)
        for ticker in tickers:
            pipe.hgetall(self.keys.cfg_market(ticker))
        results = await pipe.execute()
        changed = False
        global_fields = results[0]
        if global_fields and global_fields.get("version") != self.versions.get(""):
            try:
                self.global_config = decode_global_config(global_fields)
                changed = True
            except (ConfigError, SchemaError) as exc:
                self.log.error("invalid_global_config", reason=str(exc))
            self.versions[""] = str(global_fields.get("version"))
        seen = set()
        for ticker, fields in zip(tickers, results[1:], strict=True):
            if not fields:
                continue
            seen.add(ticker)
            version = f"{fields.get('version')}|{fields.get('updated_at')}|{fields.get('enabled')}"
            if self.versions.get(ticker) == version:
                continue
            self.versions[ticker] = version
            try:
                self.markets[ticker] = decode_market_config(ticker, fields)
                changed = True
            except (ConfigError, SchemaError) as exc:
                self.log.error("invalid_market_config", market=ticker, reason=str(exc))
        for gone in set(self.markets) - seen:
            del self.markets[gone]
            self.versions.pop(gone, None)
            changed = True
        self.loaded_ms = now_ms
        return changed
