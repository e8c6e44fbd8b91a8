import asyncio

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.domain import Fill, Position, Side
from common.keys import Keys
from common.messages import decode_event
from common.redis_codec import decode_position
from services.fills.ledger import apply_fill


@pytest.fixture(autouse=True)
async def restored(aredis: aioredis.Redis) -> None:
    await aredis.set(Keys().restored, "{}")


def fill(
    n: int, side: Side = Side.BID, price: int = 4000, count: int = 100, fee: int = 700
) -> Fill:
    return Fill(f"trade-{n}", "ord-1", "KX", side, price, count, fee, False, 1_000 + n, "c1")


async def test_each_fill_applies_once_and_emits_one_event(aredis: aioredis.Redis) -> None:
    k = Keys()
    first = await apply_fill(aredis, k, fill(1))
    assert first is not None and first.position.position == 100
    assert await apply_fill(aredis, k, fill(1)) is None  # replay: nothing changes
    await apply_fill(aredis, k, fill(2, Side.ASK, 4500))
    pos = decode_position("KX", await aredis.hgetall(k.pos("KX")))
    assert pos.position == 0 and pos.realized_pnl == 50_000 and pos.fees == 1_400
    events = [decode_event(f) for _, f in await aredis.xrange(k.stream("fills"))]
    assert [p["fill_id"] for _, p in events] == ["trade-1", "trade-2"]
    assert await aredis.hget(k.fills_meta, "last_fill_ms") == "1002"


async def test_concurrent_duplicates_still_apply_once(aredis: aioredis.Redis) -> None:
    k = Keys()
    fills = [fill(n % 10) for n in range(60)]
    await asyncio.gather(*(apply_fill(aredis, k, f) for f in fills))
    pos = decode_position("KX", await aredis.hgetall(k.pos("KX")))
    assert pos.position == 10 * 100 and await aredis.xlen(k.stream("fills")) == 10


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from(Side), st.integers(1, 99), st.integers(1, 500)), max_size=15)
)
def test_redis_position_equals_the_pure_sum_of_fills(redis_url: str, trades) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await r.flushdb()
        k = Keys()
        await r.set(k.restored, "{}")
        expected = Position("KX")
        for n, (side, price, count) in enumerate(trades):
            f = fill(n, side, price * 100, count, 0)
            expected = expected.apply_fill(f)
            await apply_fill(r, k, f)
            await apply_fill(r, k, f)  # every fill delivered twice
        assert decode_position("KX", await r.hgetall(k.pos("KX"))) == expected
        await r.aclose()

    asyncio.run(go())


async def test_a_settlement_closes_the_position_at_the_result_once(aredis: aioredis.Redis) -> None:
    from common.domain import Settlement
    from services.fills.ledger import apply_settlement

    k = Keys()
    await apply_fill(aredis, k, fill(1, Side.BID, 4000, 1000, fee=0))  # 10 YES at 0.40
    won = Settlement("KX", "yes", 5_000, 0)
    closed = await apply_settlement(aredis, k, won)
    assert closed is not None and closed.position == 0 and closed.realized_pnl == 6_000_000  # +$6
    assert await apply_settlement(aredis, k, won) is None  # once
    # the settled market left the live set; its realized PnL is in the _closed record
    assert not await aredis.exists(k.pos("KX"))
    pooled = decode_position("_closed", await aredis.hgetall(k.pos("_closed")))
    assert pooled.realized_pnl == 6_000_000 and pooled.position == 0
    await apply_fill(aredis, k, fill(2, Side.ASK, 3000, 500, fee=0))  # 5 NO (short YES) at 0.30
    lost = await apply_settlement(aredis, k, Settlement("KX", "yes", 9_000, 0))
    assert lost is not None and lost.position == 0 and lost.realized_pnl == -3_500_000
    pooled = decode_position("_closed", await aredis.hgetall(k.pos("_closed")))
    assert pooled.realized_pnl == 6_000_000 - 3_500_000
    kinds = [decode_event(f)[0] for _, f in await aredis.xrange(k.stream("fills"))]
    assert kinds == ["fill", "settlement", "fill", "settlement"]
