"""Reading the mirrored trading config from Redis (``dora:cfg:*``), kept in memory.

The persister mirrors DynamoDB into Redis; every other process reads it through this cache and
refreshes it on a ``reload`` control message and every few seconds. A mirrored item that does not
validate, or a key of the wrong type (a person's ``SET`` where the mirror keeps a hash), is
reported once and that market keeps its last valid config (or stays disabled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

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
    unread: dict[str, str] = field(default_factory=dict)  # item -> why its key did not read

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
        before, self.unread = self.unread, {}  # what did not read last time: reported then
        try:
            tickers = sorted(await redis.smembers(self.keys.cfg_markets))
        except ResponseError as exc:  # not a set: the markets known stay, their configs read
            self._unreadable("(markets)", self.keys.cfg_markets, exc, before)
            tickers = sorted(self.markets)
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.cfg_global)
        pipe.hgetall(self.keys.cfg_events)
        for ticker in tickers:
            pipe.hgetall(self.keys.cfg_market(ticker))
        # one key of the wrong type answers WRONGTYPE in its place: that item's alone
        results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ResponseError):
                raise result
        global_fields, event_fields, *market_fields = results
        if isinstance(event_fields, ResponseError):
            self._unreadable("(events)", self.keys.cfg_events, event_fields, before)
            event_fields = {"version": self.versions.get("(events)", "")}  # keep them
        changed = self._refresh_events(event_fields)
        if isinstance(global_fields, ResponseError):
            self._unreadable("", self.keys.cfg_global, global_fields, before)
            global_fields = {}  # keep it
        if global_fields and global_fields.get("version") != self.versions.get(""):
            try:
                self.global_config = decode_global_config(global_fields)
                changed = True
            except (ConfigError, SchemaError) as exc:
                self.log.error("invalid_global_config", reason=str(exc))
            self.versions[""] = str(global_fields.get("version"))
        seen = set()
        for ticker, fields in zip(tickers, market_fields, strict=True):
            if isinstance(fields, ResponseError):
                seen.add(ticker)  # keeps its last valid config, if any
                self._unreadable(ticker, self.keys.cfg_market(ticker), fields, before)
                continue
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

    def _unreadable(
        self, item: str, key: str, error: ResponseError, before: dict[str, str]
    ) -> None:
        """Report a key of the wrong type once (until it reads again)."""
        self.unread[item] = str(error)
        if before.get(item) != str(error):
            self.log.error(
                "invalid_config_key", market=item or "(global)", key=key, reason=str(error)
            )

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
