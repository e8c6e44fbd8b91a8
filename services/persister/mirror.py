"""DynamoDB config -> ``dora:cfg:*`` in Redis, about once a second.

Each pass reads the whole market config table and the global item (strongly consistent), works
out what changed against the current mirror (``plan_mirror``, pure) and applies it in one MULTI:
changed items are rewritten, deleted ones removed, and ``reload`` is published on the control
channel so processes refresh at once. The mirrored ``version`` never goes back: an item edited
without a version bump (in the AWS console, say) first gets one, by a conditional update.

An item that does not validate is logged with its reason and listed in ``dora:cfg:invalid``; its
market keeps its last valid mirror, or is mirrored disabled (with the defaults) when it had none.
A read that fails changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from common.config import GlobalConfig, MarketConfig
from common.dynamo.config_store import (
    GLOBAL_LABEL,
    TICKER,
    ConfigStore,
    parse_version,
    validate_event_item,
    validate_global_item,
    validate_market_item,
)
from common.errors import ConfigError
from common.keys import Keys
from common.log import EventLogger
from common.messages import encode_control
from common.redis_codec import encode_global_config, encode_market_config

Fields = dict[str, str]
EVENTS_LABEL = "(events)"  # the event overrides' item, where invalid items are listed


@dataclass(frozen=True, slots=True)
class Bump:
    """An item whose content changed without a higher version: raise it, then mirror."""

    ticker: str | None  # None: the global item
    stored_version: object
    fields: Fields  # the mirror to write once the bump succeeded (with the new version)

    @property
    def new_version(self) -> int:
        return int(self.fields["version"])


@dataclass
class MirrorPlan:
    writes: dict[str, Fields] = field(default_factory=dict)
    removes: set[str] = field(default_factory=set)
    global_write: Fields | None = None
    invalid: dict[str, str] = field(default_factory=dict)  # the complete new dora:cfg:invalid
    bumps: list[Bump] = field(default_factory=list)

    @property
    def changes_config(self) -> bool:
        return bool(self.writes or self.removes or self.global_write is not None)


def _version_of(fields: Mapping[str, str] | None) -> int:
    try:
        return int((fields or {}).get("version", "0"))
    except ValueError:
        return 0


def _content(fields: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k != "version"}


def _safe_version(raw: Mapping[str, Any]) -> int:
    try:
        return parse_version(raw.get("version"))
    except ConfigError:
        return 0


def _decide(
    name: str | None,
    fields: Fields,
    version: int,
    stored_version: object,
    current: Fields | None,
    plan: MirrorPlan,
) -> None:
    """Write, bump first, or leave alone one valid item."""
    if current == fields:
        return
    if current is None or version > _version_of(current):
        if name is None:
            plan.global_write = fields
        else:
            plan.writes[name] = fields
    elif _content(current) != _content(fields):
        bumped = {**fields, "version": str(max(version, _version_of(current)) + 1)}
        plan.bumps.append(Bump(name, stored_version, bumped))


def plan_mirror(
    raw_markets: Iterable[Mapping[str, Any]],
    raw_global: Mapping[str, Any] | None,
    current_markets: Mapping[str, Fields],
    current_global: Fields | None,
) -> MirrorPlan:
    """What to change in Redis so it mirrors the table (pure)."""
    plan = MirrorPlan()
    seen: set[str] = set()
    for raw in raw_markets:
        ticker = raw.get("market_id")
        try:
            config, version = validate_market_item(raw)
        except ConfigError as exc:
            if not isinstance(ticker, str) or not TICKER.match(ticker):
                plan.invalid[repr(ticker)[:100]] = str(exc)
                continue
            seen.add(ticker)
            plan.invalid[ticker] = str(exc)
            if ticker not in current_markets:  # no valid config yet: mirror it disabled
                plan.writes[ticker] = encode_market_config(
                    MarketConfig(ticker, enabled=False), _safe_version(raw)
                )
            continue
        seen.add(config.market_id)
        fields = encode_market_config(config, version)
        _decide(
            config.market_id,
            fields,
            version,
            raw.get("version"),
            current_markets.get(config.market_id),
            plan,
        )
    plan.removes = set(current_markets) - seen
    if raw_global is None:
        defaults = encode_global_config(GlobalConfig(), 0)
        if current_global != defaults:
            plan.global_write = defaults
    else:
        try:
            global_config, version = validate_global_item(raw_global)
        except ConfigError as exc:
            plan.invalid[GLOBAL_LABEL] = str(exc)
            if current_global is None:  # never had a valid one: no trading until it is fixed
                plan.global_write = encode_global_config(
                    GlobalConfig(trading_enabled=False), _safe_version(raw_global)
                )
        else:
            _decide(
                None,
                encode_global_config(global_config, version),
                version,
                raw_global.get("version"),
                current_global,
                plan,
            )
    return plan


@dataclass(frozen=True, slots=True)
class MirrorReport:
    written: tuple[str, ...]
    removed: tuple[str, ...]
    global_written: bool
    invalid: dict[str, str]


class ConfigMirror:
    def __init__(self, store: ConfigStore, keys: Keys, log: EventLogger) -> None:
        self.store = store
        self.keys = keys
        self.log = log
        self.markets: dict[str, Fields] = {}
        self.global_fields: Fields | None = None
        self.invalid: dict[str, str] = {}
        self.events_version = 0  # of the event overrides mirrored (0: none yet)
        self.loaded = False

    async def load(self, redis: aioredis.Redis) -> None:
        """Start from what Redis already mirrors (after a persister restart)."""
        tickers = sorted(await redis.smembers(self.keys.cfg_markets))
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.cfg_global)
        pipe.hgetall(self.keys.cfg_invalid)
        for ticker in tickers:
            pipe.hgetall(self.keys.cfg_market(ticker))
        results = await pipe.execute()
        self.global_fields = results[0] or None
        self.invalid = dict(results[1])
        mirrored = await redis.hget(self.keys.cfg_events, "version")
        self.events_version = int(mirrored) if mirrored and mirrored.isdigit() else 0
        self.markets = {t: f for t, f in zip(tickers, results[2:], strict=True) if f}
        self.loaded = True

    async def run_once(self, redis: aioredis.Redis) -> MirrorReport:
        if not self.loaded:
            await self.load(redis)
        raw_markets = await asyncio.to_thread(self.store.scan_markets)
        raw_global = await asyncio.to_thread(self.store.get_global)
        plan = plan_mirror(raw_markets, raw_global, self.markets, self.global_fields)
        for bump in plan.bumps:
            if bump.ticker is None:
                done = await asyncio.to_thread(
                    self.store.bump_global_version, bump.stored_version, bump.new_version
                )
            else:
                done = await asyncio.to_thread(
                    self.store.bump_market_version,
                    bump.ticker,
                    bump.stored_version,
                    bump.new_version,
                )
            if not done:
                continue  # changed again meanwhile: the next pass sees it
            self.log.info(
                "config_version_bumped",
                market=bump.ticker or GLOBAL_LABEL,
                version=bump.new_version,
            )
            if bump.ticker is None:
                plan.global_write = bump.fields
            else:
                plan.writes[bump.ticker] = bump.fields
        if EVENTS_LABEL in self.invalid:  # judged by _mirror_events, not by the plan
            plan.invalid[EVENTS_LABEL] = self.invalid[EVENTS_LABEL]
        await self._apply(redis, plan)
        await self._mirror_events(redis)
        return MirrorReport(
            tuple(sorted(plan.writes)),
            tuple(sorted(plan.removes)),
            plan.global_write is not None,
            dict(plan.invalid),
        )

    async def _mirror_events(self, redis: aioredis.Redis) -> None:
        """The per-event overrides (one item) -> ``dora:cfg:events``, when its version rose. An
        item that does not validate is listed in ``dora:cfg:invalid`` and changes nothing."""
        raw = await asyncio.to_thread(self.store.get_events)
        if raw is None:
            return
        try:
            limits, version = validate_event_item(raw)
        except ConfigError as exc:
            if self.invalid.get(EVENTS_LABEL) != str(exc):
                self.log.error("invalid_config", market=EVENTS_LABEL, reason=str(exc))
                await redis.hset(self.keys.cfg_invalid, EVENTS_LABEL, str(exc))
                self.invalid[EVENTS_LABEL] = str(exc)
            return
        if version <= self.events_version:
            return
        fields = {k.split("#", 1)[1]: v for k, v in limits.to_item().items() if "#" in k}
        pipe = redis.pipeline(transaction=True)
        pipe.delete(self.keys.cfg_events)
        pipe.hset(
            self.keys.cfg_events,
            mapping={**fields, "version": str(version), "updated_at": limits.updated_at},
        )
        if self.invalid.pop(EVENTS_LABEL, None) is not None:
            pipe.hdel(self.keys.cfg_invalid, EVENTS_LABEL)
        pipe.publish(self.keys.control, encode_control("reload", "event config", "persister"))
        await pipe.execute()
        self.events_version = version
        self.log.info("event_config_mirrored", events=sorted(fields), version=version)

    async def _apply(self, redis: aioredis.Redis, plan: MirrorPlan) -> None:
        for name, reason in plan.invalid.items():
            if self.invalid.get(name) != reason:
                self.log.error("invalid_config", market=name, reason=reason)
        for name in set(self.invalid) - set(plan.invalid):
            self.log.info("config_valid_again", market=name)
        invalid_changed = plan.invalid != self.invalid
        if not plan.changes_config and not invalid_changed:
            return
        pipe = redis.pipeline(transaction=True)
        for ticker, fields in plan.writes.items():
            pipe.delete(self.keys.cfg_market(ticker))
            pipe.hset(self.keys.cfg_market(ticker), mapping=fields)  # type: ignore[arg-type]
            pipe.sadd(self.keys.cfg_markets, ticker)
        for ticker in plan.removes:
            pipe.delete(self.keys.cfg_market(ticker))
            pipe.srem(self.keys.cfg_markets, ticker)
        if plan.global_write is not None:
            pipe.delete(self.keys.cfg_global)
            pipe.hset(self.keys.cfg_global, mapping=plan.global_write)  # type: ignore[arg-type]
        if invalid_changed:
            pipe.delete(self.keys.cfg_invalid)
            if plan.invalid:
                pipe.hset(self.keys.cfg_invalid, mapping=plan.invalid)  # type: ignore[arg-type]
        reload = encode_control("reload", "config changed", "persister")
        if plan.changes_config and not self.keys.cluster:
            pipe.publish(self.keys.control, reload)
        await pipe.execute()
        if plan.changes_config and self.keys.cluster:  # a cluster MULTI holds one slot's keys only
            await redis.publish(self.keys.control, reload)
        self.markets.update(plan.writes)
        for ticker in plan.removes:
            self.markets.pop(ticker, None)
        if plan.global_write is not None:
            self.global_fields = plan.global_write
        self.invalid = dict(plan.invalid)
        if plan.changes_config:
            self.log.info(
                "config_mirrored",
                written=sorted(plan.writes),
                removed=sorted(plan.removes),
                global_written=plan.global_write is not None,
            )
