"""What stops the executor quoting and what lets it quote again.

- ``trading_enabled=false`` in the global config (the original plan's switch, DESIGN.md §4):
  dora's quotes are pulled (its own orders cancelled, as a disabled market's are) and nothing is
  placed or amended until it is true again; before, adds were only denied, so the last quotes
  stayed on the book at prices nobody maintained any more.
- A halt found at start (DESIGN.md §3: it survives the restart of any process).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from common.config import GlobalConfig
from common.keys import Keys
from common.messages import ControlCommand
from common.redis_codec import encode_global_config
from common.settings import Settings
from tests.services.test_executor import FakeExchange, publish, seed, started, steps


async def set_trading(
    service: object, r: aioredis.Redis, k: Keys, on: bool, version: int, reload: bool = True
) -> None:
    """The global switch written to Redis, and (``reload``) the reload message told."""
    config = GlobalConfig(trading_enabled=on)
    await r.hset(k.cfg_global, mapping=encode_global_config(config, version))
    if reload:
        await service.safety.on_control(ControlCommand("reload"))  # type: ignore[attr-defined]


async def test_trading_disabled_pulls_the_quotes_and_enabled_again_quotes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
        await set_trading(service, aredis, k, False, 7)
        await publish(aredis, k, "KX", 4200, 4400)  # the market moves on
        await steps(service, ctx)
        assert exchange.orders == {}  # pulled, not left at 4100/4500
        assert exchange.cancel_alls == 0  # dora's own orders, no kill switch
        await set_trading(service, aredis, k, True, 8)
        await publish(aredis, k, "KX", 4200, 4400)
        await steps(service, ctx)
        assert sorted(o.price for o in exchange.orders.values()) == [4200, 4400]
    finally:
        await service.stop(ctx)


async def test_an_executor_started_while_halted_stays_halted_until_resume(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """DESIGN.md §3: the halt survives the restart of any process. A new executor finds the halt
    in dora:risk, cancels everything and places nothing; a resume recorded later lifts it."""
    from common.halt import lift_halt, set_halt

    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    await set_halt(aredis, k, "before the restart", 1, "cli")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert exchange.orders == {} and exchange.cancel_alls >= 1
        await lift_halt(aredis, k, "checked", ctx.clock.now_ms(), "cli")
        await service.safety.on_control(ControlCommand("resume"))
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
    finally:
        await service.stop(ctx)


async def test_trading_disabled_without_a_reload_message_pulls_at_the_next_config_refresh(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The switch written to Redis directly (no ``reload`` published): the executor's own config
    refresh sees it within CONFIG_REFRESH_MS and decides every market again, with no new
    targets from the strategy."""
    from services.executor.safety import CONFIG_REFRESH_MS

    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
        await set_trading(service, aredis, k, False, 9, reload=False)
        ctx.clock.advance(CONFIG_REFRESH_MS)  # type: ignore[attr-defined]
        await steps(service, ctx, 8)
        assert exchange.orders == {}
    finally:
        await service.stop(ctx)
