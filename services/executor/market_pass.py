"""One pass over one side of one market: diff, guard, approve, send, log the decision.

The working orders are diffed against the latest targets (``common.order_diff``); anything that
could rest a quote first re-reads the book and the market (never quote a stale book or a market
that is not open); the actions go through ``common.risk.approve_actions`` (the backtester's
approval too); the approved ones are sent, risk-reducing ones first.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

from common.batching import Batcher
from common.config_cache import ConfigCache
from common.domain import MarketMeta, Order, Position, Side, Targets
from common.errors import SchemaError
from common.events import decision_event
from common.order_diff import Action, ActionKind, diff_orders
from common.redis_codec import decode_book, decode_market
from common.risk import Denial, approve_actions
from common.runtime import Context
from common.sharding import shard_share
from common.streams import queue_append
from services.executor.orders import OrderEntry
from services.executor.safety import Safety
from services.executor.state import Markets
from services.executor.working import WorkingOrders


class MarketPass:
    def __init__(
        self,
        ctx: Context,
        batch: Batcher,
        configs: ConfigCache,
        working: WorkingOrders,
        markets: Markets,
        safety: Safety,
        entry: OrderEntry,
        counts: dict[str, int],
    ) -> None:
        self.ctx = ctx
        self.batch = batch
        self.configs = configs
        self.working = working
        self.markets = markets
        self.safety = safety
        self.entry = entry
        self.counts = counts
        self.last_decision_ms: dict[str, int] = {}  # when each market's decision was last logged
        self.last_denials: dict[tuple[str, Side], str] = {}  # the rule last logged per side

    async def run(self, ticker: str, side: Side) -> bool:
        """One pass over one side of one market; True when it sent anything."""
        targets = self.markets.targets.get(ticker)
        if targets is None:
            return False
        working = self.working.live(ticker)
        meta = self.markets.meta.get(ticker)
        actions = [] if meta is None else side_actions(working, targets, meta, side)
        if meta is None or any(a.adds_risk for a in actions):
            # Anything that could rest a quote first re-checks the book and the market itself
            # (one round trip); passes that only cancel or shrink need no such check.
            targets = await self.guard(ticker, targets)
            meta = self.markets.meta.get(ticker)
            if meta is None:
                return False
            actions = side_actions(working, targets, meta, side)
        if not actions:
            return False
        position = self.markets.positions.get(ticker) or Position(ticker)
        limits, shards = self.configs.global_config, self.ctx.settings.shard_count
        if shards > 1:  # this shard sees its own orders only: it checks its share of the cap
            share = shard_share(limits.max_total_exposure, shards)
            limits = replace(limits, max_total_exposure=share)
        approval = approve_actions(
            actions,
            position,
            self.working.counted(ticker, working),  # with executions not yet in the position
            self.configs.market(ticker),
            limits,
            self.safety.account_risk(),
        )
        denials = [self._note_denial(ticker, a, d) for a, d in approval.denied]
        approved = approval.approved
        cancels = [a for a in approved if a.kind in (ActionKind.CANCEL, ActionKind.DECREASE)]
        adds = [a for a in approved if a not in cancels]
        # Risk-reducing actions first, then the rest, each group concurrently.
        for group in (cancels, adds):
            if group:
                await asyncio.gather(*(self._send(a) for a in group))
        await self._log_decision(
            ticker, targets, position, approved, [d for d in denials if d is not None]
        )
        return bool(approved)

    async def _send(self, action: Action) -> None:
        if await self.entry.execute(action):
            self.last_denials.pop((action.ticker, action.side), None)

    async def guard(self, ticker: str, targets: Targets) -> Targets:
        """Never rest a quote on a stale book or a market that is not open, whatever the targets
        say (the strategy checks too; this is the second lock)."""
        ctx = self.ctx
        book_fields, market_fields = await self.batch.execute(
            lambda pipe: (
                pipe.hgetall(ctx.keys.book(ticker)),
                pipe.hgetall(ctx.keys.market(ticker)),
            )
        )
        if market_fields:
            with contextlib.suppress(SchemaError):
                self.markets.meta[ticker] = decode_market(ticker, market_fields)
        meta = self.markets.meta.get(ticker)
        reason = ""
        if meta is None or not meta.is_open:
            reason = "market_not_open"
        elif not book_fields:
            reason = "no_book"
        else:
            try:
                if decode_book(ticker, book_fields).stale:
                    reason = "book_stale"
            except SchemaError:
                reason = "bad_book"
        if reason and (targets.bid or targets.ask):
            return Targets(ticker, None, None, reason, targets.computed_ms, targets.book_ms)
        return targets

    def _note_denial(self, ticker: str, action: Action, denial: Denial) -> dict[str, Any] | None:
        """Count every denial; log it (and return it for the decision log) unless it is the
        side's last one again: recorded once, not on every book update."""
        self.counts["denied"] += 1
        key = (ticker, action.side)
        if self.last_denials.get(key) == denial.rule:
            return None
        self.last_denials[key] = denial.rule
        self.ctx.log.info(
            "denied", market=ticker, side=action.side.value, rule=denial.rule, detail=denial.detail
        )
        return {
            "side": action.side.value,
            "kind": action.kind.value,
            "price": action.price,
            "size": action.size,
            "rule": denial.rule,
            "detail": denial.detail,
        }

    async def _log_decision(
        self,
        ticker: str,
        targets: Targets,
        position: Position,
        approved: tuple[Action, ...],
        denials: list[dict[str, Any]],
    ) -> None:
        """The decision log is for debugging (every order is in the trade log): at most one per
        market per ``decision_log_every_ms`` (1 s by default), and every new denial."""
        ctx = self.ctx
        now = ctx.clock.now_ms()
        every_ms = ctx.settings.decision_log_every_ms
        if not denials and not (
            approved and every_ms and now - self.last_decision_ms.get(ticker, 0) >= every_ms
        ):
            return
        self.last_decision_ms[ticker] = now
        decision = decision_event(
            ticker,
            ctx.clock.now_ms(),
            {"book_ms": targets.book_ms, "fair_price": targets.fair_price},
            position.position,
            {
                "bid": _quote(targets, Side.BID),
                "ask": _quote(targets, Side.ASK),
                "reason": targets.reason,
            },
            [
                {
                    "kind": a.kind.value,
                    "side": a.side.value,
                    "price": a.price,
                    "size": a.size,
                    "reason": a.reason,
                }
                for a in approved
            ],
            denials,
        )
        await self.batch.execute(
            lambda pipe: queue_append(pipe, ctx.keys, "decisions", "decision", decision)
        )


def side_actions(
    working: list[Order], targets: Targets, meta: MarketMeta, side: Side
) -> list[Action]:
    return [a for a in diff_orders(working, targets, meta.grid) if a.side is side]


def _quote(targets: Targets, side: Side) -> dict[str, Any] | None:
    quote = targets.bid if side is Side.BID else targets.ask
    return (
        None
        if quote is None
        else {"price": quote.price, "size": quote.size, "reason": quote.reason}
    )
