"""The limits checked at the exchange itself: what the exchange says rests and is held.

Each round of the exchange watch reads the subaccount's positions and resting orders from the
exchange (never from Redis) and computes the account's worst case (``common.risk.worst_case_of``:
positions plus every resting order filling). Above ``max_total_exposure`` it halts with the reason
``exposure_breach``: the executor's ledger should make that impossible, so a breach means
something placed past it (another program in the subaccount, a bug) or the cap was lowered below
what is already held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from common.config_cache import ConfigCache
from common.domain import Order
from common.event_loss import MarketLoss, cost_from_exposure, event_worst_loss, market_loss
from common.halt import set_halt
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.wire.listing import Skipped
from common.numbers import money_to_dollars_display
from common.risk import worst_case_of
from common.runtime import Context


@dataclass(slots=True)
class AtExchange:
    """The last round's figures, for the heartbeat and the tests."""

    worst_case: int = 0
    checked_ms: int = 0
    events: dict[str, dict[str, int]] = field(default_factory=dict)


class ExchangeLimits:
    def __init__(self, client: KalshiClient, configs: ConfigCache) -> None:
        self.client = client
        self.configs = configs
        self.seen = AtExchange()

    async def check(self, ctx: Context, halted: bool) -> str:
        """One look at the exchange; halts on a breach. A problem to report, or ""."""
        skipped: list[Skipped] = []
        try:
            positions = await self.client.get_positions(skipped=skipped)
            orders = await self.client.get_open_orders(skipped=skipped)
        except ExchangeError as exc:
            ctx.log.warning("exchange_limits_unread", error=str(exc))
            return ""  # the positions reconcile reports an exchange that stays away
        held = {p.ticker: (p.position, p.exposure) for p in positions}
        worst = worst_case_of(held, orders)
        events = await self._events(ctx, held, orders)
        self.seen = AtExchange(worst, ctx.clock.now_ms(), events)
        ctx.status["exchange_worst_case"] = worst
        await ctx.redis.hset(ctx.keys.risk, "events", orjson.dumps(events).decode())
        cap = self.configs.global_config.max_total_exposure
        reason = ""
        if worst > cap:
            reason = (
                f"exposure_breach: worst case at the exchange {money_to_dollars_display(worst)}"
                f" > max_total_exposure {money_to_dollars_display(cap)}"
            )
        for event, entry in sorted(events.items()):
            limit = self.configs.event_limit(event)
            if not reason and entry["worst_loss"] > limit:
                reason = (
                    f"event_loss_breach: {event} worst loss at the exchange "
                    f"{money_to_dollars_display(entry['worst_loss'])} > max_event_loss "
                    f"{money_to_dollars_display(limit)}"
                )
        if reason and not halted:
            ctx.log.error("halting", reason=reason)
            await set_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms(), "risk")
        if skipped:
            return f"{len(skipped)} exchange items unreadable: the worst case may be more"
        return ""

    async def _events(
        self, ctx: Context, held: dict[str, tuple[int, int]], orders: list[Order]
    ) -> dict[str, dict[str, int]]:
        """Each event's worst loss over its outcomes (``common.event_loss``), from the
        exchange's positions and orders and each market's event as marketdata recorded it:
        event -> ``worst_loss`` (and ``limit`` when the event has its own)."""
        by_market: dict[str, list[Order]] = {}
        for order in orders:
            by_market.setdefault(order.ticker, []).append(order)
        tickers = sorted(set(held) | set(by_market))
        if not tickers:
            return {}
        pipe = ctx.redis.pipeline(transaction=False)
        for ticker in tickers:
            pipe.hmget(ctx.keys.market(ticker), "event_ticker", "mutually_exclusive")
        members: dict[str, list[MarketLoss]] = {}
        exclusive: dict[str, bool] = {}
        for ticker, (event, flag) in zip(tickers, await pipe.execute(), strict=True):
            if not event:
                continue
            position, exposure = held.get(ticker, (0, 0))
            cost = cost_from_exposure(position, exposure)
            members.setdefault(event, []).append(
                market_loss(position, cost, by_market.get(ticker, []))
            )
            exclusive[event] = exclusive.get(event, True) and flag == "1"
        out: dict[str, dict[str, int]] = {}
        for event, losses in members.items():
            entry = {"worst_loss": event_worst_loss(losses, exclusive[event])}
            if event in self.configs.events:
                entry["limit"] = self.configs.events[event]
            out[event] = entry
        return out
