"""One market's ``dora:market`` of the wrong type (a person's ``SET`` where dora keeps a hash)
must not switch off the limits at the exchange: the per-event worst losses are read from those
hashes, and one WRONGTYPE failed the whole part each round, so a real breach elsewhere did not
halt. Now that market's event is unknown (a problem of the check, which then fails: the executor
adds no risk) and every other event is still checked."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.keys import Keys
from common.redis_codec import decode_risk
from common.settings import Settings
from tests.services.test_risk import check
from tests.services.test_risk_exchange_reads import EVENT, _bid, _event_setup


async def test_a_market_hash_of_the_wrong_type_leaves_the_other_events_checked(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await _event_setup(aredis, settings)
    k: Keys = ctx.keys
    await aredis.set(k.market("KXO-Z"), "closed")  # held at the exchange, its hash corrupt
    exchange.hold({"KXR-A": (2000, 10_000_000), "KXO-Z": (100, 50_000)})
    exchange.orders = [_bid("KXR-B", 5000, 2000, "b")]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(k.risk))
    assert state.halted and state.reason.startswith(f"event_loss_breach: {EVENT}"), state.reason
    assert service.watch.limits is not None
    assert service.watch.limits.unreadable == [
        f"{k.market('KXO-Z')}: WRONGTYPE Operation against a key holding the wrong kind of value"
    ]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(k.risk))
    assert state.check_failures and k.market("KXO-Z") in state.check_error, state.check_error
    await service.stop(ctx)
