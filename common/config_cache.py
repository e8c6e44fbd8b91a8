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
from common.numbers import NumberError, parse_money
from common.redis_codec import decode_global_config, decode_market_config


@dataclass
class ConfigCache:
    keys: Keys
    log: EventLogger
    global_config: GlobalConfig = field(default_factory=GlobalConfig)
    markets: dict[str, MarketConfig] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)  # event -> its max_event_loss override
    loaded_ms: int = 0

    def event_limit(self, event: str) -> int:
        """The ``max_event_loss`` of ``event`` (money): its override, else the global default."""
        return self.events.get(event, self.global_config.max_event_loss)

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
        pipe.hgetall(self.keys.cfg_events)
        for ticker in tickers:
            pipe.hgetall(self.keys.cfg_market(ticker))
        global_fields, event_fields, *market_fields = await pipe.execute()
        results = [global_fields, *market_fields]
        changed = self._refresh_events(event_fields)
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

    def _refresh_events(self, fields: dict[str, str]) -> bool:
        """The per-event overrides: one bad value is reported and that event keeps the default."""
        version = str(fields.get("version", ""))
        if version == self.versions.get("(events)"):
            return False
        self.versions["(events)"] = version
        events: dict[str, int] = {}
        for event, value in fields.items():
            if event in ("version", "updated_at"):
                continue
            try:
                events[event] = parse_money(value, what=f"{event} max_event_loss")
            except NumberError as exc:
                self.log.error("invalid_event_config", market=event, reason=str(exc))
        changed = events != self.events
        self.events = events
        return changed
