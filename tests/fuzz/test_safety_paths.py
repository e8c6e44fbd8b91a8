"""Parse errors never escape a safety path (issue 19.3), asserted at the callers: with malformed
fills, settlements, positions and orders mixed into what the exchange answers, the fills backfill
applies every good item, risk's check runs to its end (the executor dead-man included) and the
executor's reconcile finishes. ``cli/cancel_all`` is in tests/cli/test_cancel_all.py.

The callers use a real ``KalshiClient`` against ``tests/support/fake_kalshi`` (a server that
answers with whatever JSON a test gives it), so the whole way from bytes to decision is covered.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.clock import ManualClock
from common.domain import Position, Side, make_client_order_id
from common.kalshi import KalshiClient
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_position
from common.runtime import Context
from common.settings import Settings, load_settings
from services.fills.ledger import apply_fill
from services.fills.service import FillsService
from tests.fuzz.strategies import JUNK, mutate
from tests.kalshi.test_wire import FILL, ORDER
from tests.support.fake_kalshi import FakeKalshi, fake_kalshi
from tests.support.state import mark_restored

K = Keys()
NOW = 1_767_225_700_000
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def a_fill(n: int) -> dict[str, Any]:
    fill = copy.deepcopy(FILL)
    fill.update(fill_id=f"f-{n}", trade_id=f"f-{n}", order_id=f"o-{n}")
    return fill


def settlement(result: str, ticker: str = "KX-VOID") -> dict[str, Any]:
    return {
        "ticker": ticker,
        "market_result": result,
        "revenue": 0,
        "value": None,
        "settled_time": "2026-01-01T00:00:30Z",
        "fee_cost": "0.0000",
    }


def context(settings_: Settings, redis: aioredis.Redis, name: str) -> Context:
    return Context(name, settings_, redis, K, ManualClock(NOW), get_logger(name))


async def a_void_market_held(redis: aioredis.Redis) -> Position:
    from common.domain import Fill

    bought = Fill("f-void", "o-void", "KX-VOID", Side.BID, 3000, 1000, 0, False, NOW - 90_000)
    applied = await apply_fill(redis, K, bought)  # 10 YES at $0.30
    assert applied is not None
    return applied.position


async def test_a_void_settlement_closes_the_position_at_its_cost(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """``market_result: "void"`` is in the spec: it failed the whole backfill every cycle (and so
    kept fills from starting). Now the position closes at its cost: nothing realized."""
    await mark_restored(aredis, K)
    held = await a_void_market_held(aredis)
    fake = FakeKalshi(fills=[a_fill(1)], settlements=[settlement("void")])
    async with fake_kalshi(fake):
        client = KalshiClient.create(fake.url, None)
        service = FillsService(settings, client=client)
        await service._backfill(context(settings, aredis, "fills"), raise_errors=True)
        await client.aclose()
    assert not await aredis.exists(K.pos("KX-VOID"))  # settled: out of the live set
    closed = decode_position("_closed", await aredis.hgetall(K.pos("_closed")))
    assert closed.realized_pnl == held.realized_pnl == 0  # the cost came back: no PnL
    assert decode_position("KX-1", await aredis.hgetall(K.pos("KX-1"))).position == 300


@EXAMPLES
@given(data=st.data(), good=st.integers(0, 3))
def test_the_backfill_applies_every_good_fill_whatever_else_comes(
    redis_url: str, data: st.DataObject, good: int
) -> None:
    fills: list[Any] = [a_fill(n) for n in range(good)]
    fills += [mutate(data, a_fill(100 + n)) for n in range(data.draw(st.integers(0, 3)))]
    fills += data.draw(st.lists(JUNK, max_size=2))
    settlements = [settlement("void"), mutate(data, settlement("yes", "KX-2")), settlement("x")]
    good_ids = {f"f-{n}" for n in range(good)}

    async def go() -> None:
        redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await redis.flushall()
        await mark_restored(redis, K)
        settings_ = load_settings({"DORA_REDIS_URL": redis_url}, read_file=False)
        fake = FakeKalshi(fills=data.draw(st.permutations(fills)), settlements=settlements)
        async with fake_kalshi(fake):
            client = KalshiClient.create(fake.url, None)
            service = FillsService(settings_, client=client)
            await service._backfill(context(settings_, redis, "fills"))  # never raises
            await client.aclose()
        applied = await redis.smembers(K.fill_ids)
        assert good_ids <= applied, "a good fill was not applied"
        assert service.counts["skipped_items"] >= 1  # the unknown result "x" at least
        await redis.aclose()

    asyncio.run(go())


@EXAMPLES
@given(data=st.data())
def test_risk_checks_to_the_end_and_the_dead_man_still_cancels(
    redis_url: str, data: st.DataObject
) -> None:
    """A parse error in risk's position reconcile skipped the executor dead-man check."""
    from services.risk.service import RiskService

    position = {"ticker": "KX-1", "position_fp": "3.00", "market_exposure_dollars": "1.23"}
    positions = [position, mutate(data, position), *data.draw(st.lists(JUNK, max_size=2))]
    orders = [mutate(data, ORDER), *data.draw(st.lists(JUNK, max_size=2))]

    async def go() -> None:
        redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await redis.flushall()
        await mark_restored(redis, K)
        settings_ = load_settings(
            {"DORA_REDIS_URL": redis_url, "DORA_EXECUTOR_SILENCE_MS": "500"}, read_file=False
        )
        fake = FakeKalshi(positions=positions, orders=orders)
        async with fake_kalshi(fake):
            client = KalshiClient.create(fake.url, None)
            risk = RiskService(settings_, client=client)
            ctx = context(settings_, redis, "risk")
            await risk.start(ctx)
            ctx.clock.advance(1_000)  # type: ignore[attr-defined]
            await risk.check(ctx)  # the executor is silent: the dead-man must fire
            assert risk.watching is not None
            await risk.watching  # the exchange watch runs beside the check
            await risk.stop(ctx)
        # the dead-man fired and asked the exchange which of dora's orders rest (it cancels
        # dora's own: a silent executor is no kill switch)
        assert risk.watch.emergency_cancels, "the dead-man check did not run"
        asked = [r for r in fake.requests if r[0] == "GET" and "orders" in r[1]]
        assert asked, "the dead-man did not look for dora's orders"
        await redis.aclose()

    asyncio.run(go())


@EXAMPLES
@given(data=st.data())
def test_the_executor_reconcile_finishes_and_adopts_only_its_own(
    redis_url: str, data: st.DataObject
) -> None:
    from services.executor.kalshi_gateway import KalshiGateway
    from services.executor.service import build

    own = copy.deepcopy(ORDER)
    own.update(order_id="o-own", client_order_id=make_client_order_id("x", "KX-1", "ask", 1))
    manual = copy.deepcopy(ORDER)
    manual.update(order_id="o-manual", client_order_id="my-manual-order")
    orders = [own, manual, mutate(data, ORDER), *data.draw(st.lists(JUNK, max_size=2))]

    async def go() -> None:
        redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await redis.flushall()
        await mark_restored(redis, K)
        settings_ = load_settings({"DORA_REDIS_URL": redis_url}, read_file=False)
        fake = FakeKalshi(orders=data.draw(st.permutations(orders)))
        async with fake_kalshi(fake):
            gateway = KalshiGateway(KalshiClient.create(fake.url, None))
            ctx = context(settings_, redis, "executor")
            service = await build(ctx, gateway=gateway)
            await service.reconciler.reconcile()  # never raises
            await gateway.aclose()
        adopted = await redis.hgetall(K.orders("KX-1"))
        ids = {orjson.loads(v)["order_id"] for v in adopted.values()}
        assert "o-own" in ids and "o-manual" not in ids
        assert fake.cancelled == []  # nothing cancelled in normal quoting
        await redis.aclose()

    asyncio.run(go())
