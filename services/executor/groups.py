"""Kalshi order groups: the exchange-side net under each market's orders (on by default).

Each market's orders join one order group, created on the market's shard (``exchange_index``:
a group lives on one shard and orders of another shard cannot join it) with a contracts limit
per rolling 15 s of ``order_group_quote_multiple`` x the largest quote the strategy sends in the
market (``common.quoting.largest_quote``: ``quote_size``, 3x in a benign market) (or the fixed
``executor_order_group_contracts``). It is created once and kept in ``dora:groups``; a market
that moves shard gets a new group there, a changed limit is set on the group. When the exchange
fires a group (too many contracts filled), it cancels the group's orders and refuses new ones;
the market then cools down for ``GROUP_COOLDOWN_MS`` before the group is reset and quoting
resumes. A place held back by the cooldown is not sent (nor recorded); the market is looked at
again when the cooldown ends. ``DORA_ORDER_GROUPS=false`` turns them off.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import orjson

from common.batching import Batcher
from common.config_cache import ConfigCache
from common.errors import SchemaError
from common.quoting import largest_quote
from common.redis_codec import decode_market
from common.runtime import Context
from services.executor.gateway import Gateway
from services.executor.state import Markets

GROUP_COOLDOWN_MS = 30_000
PREPARE_AT_ONCE = 8  # group creates in flight at once while preparing
COOLING_DOWN = ""  # ``group_for``'s answer while the market's fired group cools down


@dataclass(frozen=True, slots=True)
class Group:
    """A market's order group as ``dora:groups`` holds it."""

    group_id: str
    exchange_index: int
    limit: int  # centi-contracts per rolling 15 s

    def encode(self) -> str:
        data = {"id": self.group_id, "exchange_index": self.exchange_index, "limit": self.limit}
        return orjson.dumps(data).decode()

    @classmethod
    def decode(cls, value: str | None) -> Group | None:
        """The stored group; a bare id (before groups knew their shard) is shard 0."""
        if not value:
            return None
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return cls(value, 0, 0)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return cls(value, 0, 0) if isinstance(data, str | int) else None
        index, limit = data.get("exchange_index"), data.get("limit")
        return cls(
            data["id"],
            index if isinstance(index, int) else 0,
            limit if isinstance(limit, int) else 0,
        )


class OrderGroups:
    def __init__(
        self,
        ctx: Context,
        gateway: Gateway,
        configs: ConfigCache,
        markets: Markets,
        batch: Batcher,
    ) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.gateway = gateway
        self.configs = configs
        self.markets = markets
        self.batch = batch  # a new group's record shares the passes' pipeline
        self.enabled = settings.order_groups
        self.fixed_limit = settings.executor_order_group_contracts * 100  # 0: from quote_size
        self.quote_multiple = settings.order_group_quote_multiple
        self.groups: dict[str, Group] = {}  # ticker -> its group (also in dora:groups)
        self.cooldown_until_ms: dict[str, int] = {}  # ticker -> when its fired group resets
        self.cooling: set[str] = set()  # markets to look at again when their cooldown ends
        self.locks: dict[str, asyncio.Lock] = {}

    async def load(self) -> None:
        """Every market's group from ``dora:groups`` (one read at start, not one per market)."""
        stored = await self.ctx.redis.hgetall(self.ctx.keys.order_groups)
        for ticker, value in stored.items():
            group = Group.decode(value)
            if group is not None:
                self.groups[ticker] = group

    async def prepare(self, tickers: list[str]) -> None:
        """Create (or fix) the groups of these markets ahead of their first quotes, a few at a
        time, so the first wave after a start does not wait on a group create per market."""
        if not self.enabled or not tickers:
            return
        ctx = self.ctx
        pipe = ctx.redis.pipeline(transaction=False)
        for ticker in tickers:
            pipe.hgetall(ctx.keys.market(ticker))
        # a key of the wrong type answers WRONGTYPE in its place: that market's alone
        for ticker, fields in zip(tickers, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(fields, dict) and fields and ticker not in self.markets.meta:
                with contextlib.suppress(SchemaError):
                    self.markets.meta[ticker] = decode_market(ticker, fields)
        limiter = asyncio.Semaphore(PREPARE_AT_ONCE)

        async def one(ticker: str) -> None:
            async with limiter:
                try:
                    await self.group_for(ticker)
                except Exception as exc:  # the first quote of that market tries again
                    ctx.log.warning("order_group_prepare_failed", market=ticker, error=str(exc))

        await asyncio.gather(*(one(t) for t in tickers))

    def limit_for(self, ticker: str) -> int:
        """The market's group limit in centi-contracts per rolling 15 s."""
        if self.fixed_limit:
            return self.fixed_limit
        return self.quote_multiple * largest_quote(self.configs.market(ticker))

    async def group_for(self, ticker: str) -> str | None:
        """The market's order group id; None when groups are off; ``COOLING_DOWN`` while a
        fired group cools down (send nothing that adds)."""
        if not self.enabled:
            return None
        lock = self.locks.setdefault(ticker, asyncio.Lock())
        async with lock:  # the bid and the ask of one market must not each create a group
            return await self._group_locked(ticker)

    async def _group_locked(self, ticker: str) -> str:
        ctx = self.ctx
        until = self.cooldown_until_ms.get(ticker)
        group = self.groups.get(ticker)
        if until is not None:
            if ctx.clock.now_ms() < until:
                return COOLING_DOWN
            del self.cooldown_until_ms[ticker]
            if group is not None:
                await self.gateway.reset_group(group.group_id)
                ctx.log.info("order_group_reset", market=ticker, group=group.group_id)
        meta = self.markets.meta.get(ticker)
        exchange_index = meta.exchange_index if meta is not None else 0
        limit = self.limit_for(ticker)
        if group is None or group.exchange_index != exchange_index:
            group_id = await self.gateway.create_group(limit, exchange_index)
            group = Group(group_id, exchange_index, limit)
            await self._store(ticker, group)
            ctx.log.info(
                "order_group_created",
                market=ticker,
                group=group_id,
                exchange_index=exchange_index,
                limit=limit,
            )
        elif group.limit != limit:
            await self.gateway.set_group_limit(group.group_id, limit)
            group = Group(group.group_id, exchange_index, limit)
            await self._store(ticker, group)
        self.groups[ticker] = group
        return group.group_id

    async def _store(self, ticker: str, group: Group) -> None:
        key, value = self.ctx.keys.order_groups, group.encode()
        await self.batch.execute(lambda pipe: pipe.hset(key, ticker, value))

    def fired(self, ticker: str, group_id: str) -> None:
        """The exchange refused an order because the market's group fired: cool down."""
        self.cooldown_until_ms[ticker] = self.ctx.clock.now_ms() + GROUP_COOLDOWN_MS
        self.cooling.add(ticker)
        self.ctx.log.warning(
            "order_group_triggered", market=ticker, group=group_id, cooldown_ms=GROUP_COOLDOWN_MS
        )

    def cooled_down(self) -> list[str]:
        """Markets whose cooldown has ended since the last call: quote them again (nothing else
        may: the fired group's orders are gone and the targets may not change)."""
        now = self.ctx.clock.now_ms()
        done = [t for t in self.cooling if now >= self.cooldown_until_ms.get(t, 0)]
        self.cooling.difference_update(done)
        return done
