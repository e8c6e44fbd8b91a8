"""An event's worst loss counts open contracts at their cost: an ask that closes a long realizes
its gain, and once it fills the loss if YES is higher by that gain than its part said. The ask's
reservation counts that gain against the position held when it was reserved; a bid that fills
later makes a long the ask closes, and the ledger must count the gain from then on. Written with
the bid's fill alone (the position's parts lowered, the ask's part as it was), the ledger's bound
fell below what the exchange reaches when the ask fills, and the room it freed went to other
markets: at 500 markets an event's limit was passed at the exchange by $2.87."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import pytest
import redis.asyncio as aioredis

from common.domain import Order, Position, Side
from common.event_loss import market_loss
from common.keys import Keys
from common.redis_codec import encode_position
from common.settings import Settings
from services.executor.reservations import COST_ROUNDING
from tests.services.test_executor import FakeExchange, publish, started, steps
from tests.services.test_executor_ledger import seed_event

T, EVENT = "KXG-0", "KXG"


def losses(position: int, cost: int, orders: list[Order]) -> tuple[int, int]:
    m = market_loss(position, cost, orders)
    return m.if_yes, m.if_no


async def ledger_parts(r: aioredis.Redis, k: Keys) -> tuple[int, int]:
    raw = await r.hget(k.ledger, f"em:{EVENT}|{T}")
    parts = {kind: v[0] for kind, v in orjson.loads(raw or "{}").items()}
    return parts.get("py", 0) + parts.get("a", 0), parts.get("pn", 0) + parts.get("b", 0)


def states_after(held: Position, ask: Order) -> list[tuple[int, int]]:
    """(loss if YES, loss if NO) at the exchange as the ask fills 0..5 contracts."""
    out = []
    for filled in range(0, 501, 100):
        position = held.position - filled
        cost = held.cost - held.cost * filled // held.position
        left = [replace(ask, filled=filled, remaining=500 - filled)] if filled < 500 else []
        out.append(losses(position, cost, left))
    return out


async def filled_bid(
    settings: Settings, aredis: aioredis.Redis, ask_in_flight: bool
) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Quote 5 at $0.60 / $0.61; the bid fills (long 5 at $0.60: the ask now closes it at a
    $0.05 gain); the bid side's pass alone runs (the ask's not yet, or still in flight). The
    ledger's (loss if YES, loss if NO) and the exchange's in every state it can reach."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed_event(aredis, k, [T], EVENT, True)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, T, 6000, 6100)
        await steps(service, ctx)
        bid = next(o for o in exchange.orders.values() if o.side is Side.BID)
        ask = next(o for o in exchange.orders.values() if o.side is Side.ASK)
        del exchange.orders[bid.order_id or ""]
        held = Position(T, 500, 3_000_000)
        await aredis.hset(k.pos(T), mapping=encode_position(held))
        service.inbox.on_event(
            "fill",
            {
                "ticker": T,
                "order_id": bid.order_id,
                "client_order_id": bid.client_order_id,
                "count": 500,
                "position_after": 500,
                "record": {"position": 500, "cost": 3_000_000, "last_fill_ms": 1, "version": 1},
            },
        )
        await publish(aredis, k, T, None, 6100)  # no new bid: the fill's effect alone
        service.markets.targets[T] = replace(service.markets.targets[T], bid=None)
        if ask_in_flight:  # the ask's pass between its reservation and its answers
            service.schedule.inflight[(T, Side.ASK)] = asyncio.get_running_loop().create_future()
        await service.market_pass.run(T, Side.BID)
        service.schedule.inflight.pop((T, Side.ASK), None)
        return await ledger_parts(aredis, k), states_after(held, ask)
    finally:
        await service.stop(ctx)


@pytest.mark.parametrize("ask_in_flight", [False, True])
async def test_a_bid_filled_under_a_resting_ask_never_lowers_the_bound(
    settings: Settings, aredis: aioredis.Redis, ask_in_flight: bool
) -> None:
    (yes, no), states = await filled_bid(settings, aredis, ask_in_flight)
    for at_exchange_yes, at_exchange_no in states:
        assert at_exchange_yes <= yes and at_exchange_no <= no, (states, yes, no)
    if not ask_in_flight:
        # exact but for the exchange's rounding: the ask's part counts the $0.05 gain
        assert (yes, no) == (COST_ROUNDING, 3_000_000 + COST_ROUNDING)
