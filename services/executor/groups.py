"""Kalshi order groups: the exchange-side net under each market's orders.

Each market's orders join one order group with a contracts limit per rolling 15 s, created once
and kept in ``dora:groups``. When the exchange fires a group (too many contracts filled), it
cancels the group's orders and refuses new ones; the market then cools down for
``GROUP_COOLDOWN_MS`` before the group is reset and quoting resumes. A place held back by the
cooldown is not sent (nor recorded); the market is looked at again when the cooldown ends.
"""

from __future__ import annotations

import asyncio

from common.runtime import Context
from services.executor.gateway import Gateway

GROUP_COOLDOWN_MS = 30_000
COOLING_DOWN = ""  # ``group_for``'s answer while the market's fired group cools down


class OrderGroups:
    def __init__(self, ctx: Context, gateway: Gateway, contracts_limit: int) -> None:
        self.ctx = ctx
        self.gateway = gateway
        self.limit = contracts_limit  # centi-contracts per rolling 15 s; 0: groups are off
        self.ids: dict[str, str] = {}  # ticker -> order group id (also in dora:groups)
        self.cooldown_until_ms: dict[str, int] = {}  # ticker -> when its fired group resets
        self.cooling: set[str] = set()  # markets to look at again when their cooldown ends
        self.locks: dict[str, asyncio.Lock] = {}

    async def group_for(self, ticker: str) -> str | None:
        """The market's order group id; None when groups are off; ``COOLING_DOWN`` while a
        fired group cools down (send nothing that adds)."""
        if not self.limit:
            return None
        lock = self.locks.setdefault(ticker, asyncio.Lock())
        async with lock:  # the bid and the ask of one market must not each create a group
            return await self._group_locked(ticker)

    async def _group_locked(self, ticker: str) -> str:
        ctx = self.ctx
        until = self.cooldown_until_ms.get(ticker)
        group_id = self.ids.get(ticker) or await ctx.redis.hget(ctx.keys.order_groups, ticker)
        if until is not None:
            if ctx.clock.now_ms() < until:
                return COOLING_DOWN
            del self.cooldown_until_ms[ticker]
            if group_id:
                await self.gateway.reset_group(group_id)
                ctx.log.info("order_group_reset", market=ticker, group=group_id)
        if not group_id:
            group_id = await self.gateway.create_group(self.limit)
            await ctx.redis.hset(ctx.keys.order_groups, ticker, group_id)
        self.ids[ticker] = group_id
        return group_id

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
