"""The executor's decision log (``dora:stream:decisions``, then DynamoDB's decision log): what a
pass decided for a market and why, for debugging. Every order is in the trade log regardless."""

from __future__ import annotations

from typing import Any

from common.batching import Batcher
from common.domain import Position, Side, Targets
from common.events import decision_event
from common.order_diff import Action
from common.runtime import Context
from common.streams import queue_append


class DecisionLog:
    def __init__(self, ctx: Context, batch: Batcher) -> None:
        self.ctx = ctx
        self.batch = batch
        self.last_decision_ms: dict[str, int] = {}  # when each market's decision was last logged

    async def log(
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


def _quote(targets: Targets, side: Side) -> dict[str, Any] | None:
    quote = targets.bid if side is Side.BID else targets.ask
    return (
        None
        if quote is None
        else {"price": quote.price, "size": quote.size, "reason": quote.reason}
    )
