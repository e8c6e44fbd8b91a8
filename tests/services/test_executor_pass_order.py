"""The order of the passes (issue 24): a side with nothing to send lets the passes started with it
send first, and still releases its ledger values after them; a side due again when its pass's
answers come leaves its release to the pass that follows at once."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.domain import Quote, Side, Targets
from common.keys import Keys
from common.ledger import field, parse_value
from common.settings import Settings
from services.executor.service import ExecutorService
from tests.services.test_executor import FakeExchange, publish, seed, settled, started, steps

TICKER = "KX-ORDER"


class NotingExchange(FakeExchange):
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.events: list[str] = []

    async def amend(self, order, price, remaining):  # type: ignore[no-untyped-def]
        self.events.append(f"amend:{order.side.value}")
        return await super().amend(order, price, remaining)

    def watch_releases(self, service: ExecutorService) -> None:
        """Note each release of a side's ledger values (when it is called)."""
        release = service.market_pass.release

        async def noted(ticker: str, side: Side) -> None:
            self.events.append(f"release:{side.value}")
            await release(ticker, side)

        service.market_pass.release = noted  # type: ignore[method-assign]


async def test_a_side_with_nothing_to_send_lets_the_sending_side_go_first(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Both sides rest; new targets move the ask alone. The bid's pass starts first (as it may,
    in whatever order a read starts them) and finds nothing to send: the ask's amend goes before
    the bid's release, and the bid is still released."""
    k = Keys()
    await seed(aredis, k, TICKER)
    exchange = NotingExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, TICKER, 4100, 4500)
        await steps(service, ctx, 2)
        await settled(service)
        assert {o.side for o in exchange.orders.values()} == {Side.BID, Side.ASK}
        exchange.watch_releases(service)
        exchange.events.clear()
        await publish(aredis, k, TICKER, 4100, 4300)  # the ask two ticks toward the market
        start_passes = service.loop.start_passes
        service.loop.start_passes = lambda: 0  # type: ignore[method-assign]
        await service.step(ctx)  # read (the side due), no pass started
        service.loop.start_passes = start_passes  # type: ignore[method-assign]
        service.schedule.dirty.clear()
        service.schedule.due.clear()
        for side in (Side.BID, Side.ASK):  # the bid's pass first
            key = (TICKER, side)
            service.schedule.inflight[key] = asyncio.create_task(service.loop._pass(key))
        await settled(service)
        assert exchange.events.index("amend:ask") < exchange.events.index("release:bid")
        assert exchange.events.count("release:bid") == 1
        ask = next(o for o in exchange.orders.values() if o.side is Side.ASK)
        assert ask.price == 4300
    finally:
        await service.stop(ctx)


async def test_a_side_due_again_when_its_answer_comes_leaves_the_release_to_the_next_pass(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The bid (41 c) moves to 43 c; while that amend is on its way new targets (45 c) are read.
    The pass does not release before the next one starts: the second amend follows the first,
    and that pass's release sets the ledger to what rests and its room ahead."""
    k = Keys()
    await seed(aredis, k, TICKER)
    exchange = NotingExchange(aredis, k)
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, TICKER, 4100, None)
        await steps(service, ctx, 2)
        await settled(service)
        exchange.watch_releases(service)
        amend = exchange.amend

        async def targets_meanwhile(order, price, remaining):  # type: ignore[no-untyped-def]
            if price == 4300:  # read while this amend is on its way
                bid = Quote(Side.BID, 4500, 500)
                now = ctx.clock.now_ms()
                service.markets.targets[TICKER] = Targets(TICKER, bid, None, "test", now)
                service.schedule.due.add((TICKER, Side.BID))
            return await amend(order, price, remaining)

        exchange.amend = targets_meanwhile  # type: ignore[method-assign]
        exchange.events.clear()
        await publish(aredis, k, TICKER, 4300, None)
        await steps(service, ctx, 1)
        await settled(service)
        bid = [e for e in exchange.events if e.endswith(":bid")]  # the ask's pass: no order
        assert bid == ["amend:bid", "amend:bid", "release:bid"]
        (order,) = exchange.orders.values()
        assert order.price == 4500
        ahead = 4500 + 100 * settings.executor_ahead_ticks  # what rests, and its room ahead
        assert parse_value(await aredis.hget(k.ledger, field("bid", TICKER))) == ahead * 500
    finally:
        await service.stop(ctx)
