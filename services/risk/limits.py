"""The limits checked at the exchange itself: what the exchange says rests and is held.

Each round of the exchange watch reads the subaccount's positions and resting orders from the
exchange (never from Redis) and computes the account's worst case (``common.risk.worst_case_of``:
positions plus every resting order filling). Above ``max_total_exposure`` it halts with the reason
``exposure_breach``: the executor's ledger should make that impossible, so a breach means
something placed past it (another program in the subaccount, a bug) or the cap was lowered below
what is already held.

Positions and orders are two requests (each of pages), so one read is not one moment: a position
closed while the orders are read, its room already re-used by a new order, is counted twice (the
old position and the new order), and so is an order read before it fills whose position is read
after. A breach in the first read is therefore confirmed: the positions are read again, and when
they moved the orders too, until two position reads around one orders read agree (nothing filled
in between: the figures stand). In a market that never keeps still, after ``CONFIRM_READS`` the
smaller of the last two reads' figures is taken (positions before the orders, and after), which
counts a fill in the window once whichever way it fell. A breach that is real is in every read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from redis.exceptions import ResponseError

from common.config_cache import ConfigCache
from common.domain import Order
from common.event_loss import MarketLoss, cost_from_exposure, event_worst_loss, market_loss
from common.halt import set_halt
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.wire.listing import Skipped
from common.kalshi.wire.portfolio import ExchangePosition
from common.numbers import money_to_dollars_display
from common.risk import worst_case_of
from common.runtime import Context

CONFIRM_READS = 3  # positions re-read to confirm a breach before the smaller figures are taken
Figures = dict[str, dict[str, int]]  # event -> "worst_loss" (and "limit")


def _held(positions: list[ExchangePosition]) -> dict[str, tuple[int, int]]:
    return {p.ticker: (p.position, p.exposure) for p in positions}


def _same(a: list[ExchangePosition], b: list[ExchangePosition]) -> bool:
    """No market's position or cost moved between two reads (a flat one listed or not)."""
    return {t: h for t, h in _held(a).items() if any(h)} == {
        t: h for t, h in _held(b).items() if any(h)
    }


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
        self.unreadable: list[str] = []  # this round's dora:market keys that did not read

    async def check(self, ctx: Context, halted: bool) -> str:
        """One look at the exchange; halts on a breach. A problem to report, or ""."""
        skipped: list[Skipped] = []
        self.unreadable = []
        try:
            positions = await self.client.get_positions(skipped=skipped)
            orders = await self.client.get_open_orders(skipped=skipped)
            worst, events = await self._figures(ctx, positions, orders)
            reason = self._breach(worst, events)
            if reason:
                worst, events = await self._confirmed(ctx, positions, orders, skipped)
                if not self._breach(worst, events):
                    ctx.log.info("exchange_limits_breach_not_confirmed", first_read=reason)
                reason = self._breach(worst, events)
        except ExchangeError as exc:
            ctx.log.warning("exchange_limits_unread", error=str(exc))
            return ""  # the positions reconcile reports an exchange that stays away
        self.seen = AtExchange(worst, ctx.clock.now_ms(), events)
        ctx.status["exchange_worst_case"] = worst
        await ctx.redis.hset(ctx.keys.risk, "events", orjson.dumps(events).decode())
        if reason and not halted:
            ctx.log.error("halting", reason=reason)
            await set_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms(), "risk")
        problems = []
        if skipped:
            problems.append(f"{len(skipped)} exchange items unreadable: the worst case may be more")
        if self.unreadable:  # their markets' losses are in no event: the events' may be more
            problems.append(
                f"event of {len(self.unreadable)} markets unreadable: {self.unreadable[0]}"
            )
        return "; ".join(problems)

    async def _confirmed(
        self,
        ctx: Context,
        positions: list[ExchangePosition],
        orders: list[Order],
        skipped: list[Skipped],
    ) -> tuple[int, Figures]:
        """The figures of a read the positions confirm: positions read again after the orders;
        unchanged, nothing filled while the orders were read and the figures stand; moved, the
        orders are read again between those positions and the next. A market that never keeps
        still gives the smaller of the last two reads' figures (a fill in the window counted
        once, whichever side of the orders' read it fell)."""
        figures = await self._figures(ctx, positions, orders)
        for _ in range(CONFIRM_READS):
            after = await self.client.get_positions(skipped=skipped)
            if _same(after, positions):
                return figures
            ctx.log.info("exchange_limits_read_moved", worst_case=figures[0])
            moved = await self._figures(ctx, after, orders)
            positions, orders = after, await self.client.get_open_orders(skipped=skipped)
            figures = await self._figures(ctx, positions, orders)
            if not self._breach(*figures):
                return figures
        worst, events = figures
        for event, entry in events.items():
            entry["worst_loss"] = min(
                entry["worst_loss"], moved[1].get(event, {"worst_loss": 0})["worst_loss"]
            )
        return min(worst, moved[0]), events

    async def _figures(
        self, ctx: Context, positions: list[ExchangePosition], orders: list[Order]
    ) -> tuple[int, Figures]:
        """The account's worst case and each event's worst loss, from one read."""
        held = _held(positions)
        return worst_case_of(held, orders), await self._events(ctx, held, orders)

    def _breach(self, worst: int, events: Figures) -> str:
        """The halt's reason for the first limit these figures pass, or ""."""
        cap = self.configs.global_config.max_total_exposure
        if worst > cap:
            return (
                f"exposure_breach: worst case at the exchange {money_to_dollars_display(worst)}"
                f" > max_total_exposure {money_to_dollars_display(cap)}"
            )
        for event, entry in sorted(events.items()):
            limit = self.configs.event_limit(event)
            if entry["worst_loss"] > limit:
                return (
                    f"event_loss_breach: {event} worst loss at the exchange "
                    f"{money_to_dollars_display(entry['worst_loss'])} > max_event_loss "
                    f"{money_to_dollars_display(limit)}"
                )
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
        # a key of the wrong type answers WRONGTYPE in its place: that market's alone
        for ticker, answer in zip(tickers, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(answer, ResponseError):
                if f"{ctx.keys.market(ticker)}: {answer}" not in self.unreadable:
                    self.unreadable.append(f"{ctx.keys.market(ticker)}: {answer}")
                continue
            if isinstance(answer, Exception):
                raise answer
            event, flag = answer
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
