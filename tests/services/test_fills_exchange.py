"""The fills process and Kalshi 3.34 (issue 20): a ``user_order`` whose status is ``unknown``
(or any status dora does not know) is looked up over REST before the executor hears of it, a
fuzzed ``user_order`` stream never stops the process, and every fill books what the balance lost
(the trade fee plus the rounding fee of a non-direct member, less the order's rebates)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.clock import ManualClock
from common.domain import Fill, Order, OrderStatus, Side
from common.fees import CENT
from common.kalshi.signing import signer_from_pem
from common.kalshi.ws import KalshiWebSocket
from common.keys import Keys
from common.log import get_logger
from common.messages import decode_event
from common.redis_codec import decode_position
from common.runtime import Context
from common.settings import Settings
from services.fills.service import FillsService
from tests.fuzz.strategies import UNKNOWN_ENUM, mutated
from tests.kalshi.test_signing import ed_pem
from tests.kalshi.test_wire import USER_ORDER
from tests.support.state import mark_restored

NOW = 1_800_000_000_000
SIGNER = signer_from_pem("kid", ed_pem()[1])


@pytest.fixture(autouse=True)
async def restored(aredis: aioredis.Redis) -> None:
    await mark_restored(aredis, Keys())  # the fills process applies nothing before


class LookupRest:
    """The exchange's REST as the fills process uses it: fills, settlements, one order."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get_order(self, order_id: str) -> Order:
        self.asked.append(order_id)
        return Order("KX", Side.BID, 4000, 500, "c-1", order_id, OrderStatus.RESTING, 0, 500)

    async def get_fills(self, since_ms: int | None = None, **_: Any) -> list[Fill]:
        return []

    async def get_settlements(self, since_ms: int | None = None, **_: Any) -> list[Any]:
        return []

    async def get_positions(self, **_: Any) -> list[Any]:
        return []

    def exchange_now_ms(self) -> int | None:
        return NOW

    async def aclose(self) -> None:
        pass


async def user_orders(redis: aioredis.Redis, k: Keys) -> list[dict[str, Any]]:
    entries = await redis.xrange(k.stream("fills"))
    return [p for kind, p in (decode_event(f) for _, f in entries) if kind == "user_order"]


async def test_a_user_order_with_status_unknown_is_looked_up(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, rest = Keys(), LookupRest()
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    ws = KalshiWebSocket("ws://127.0.0.1:9/x", SIGNER, on_event=service.queue.put_nowait)
    ws._on_message(
        json.dumps({"type": "user_order", "sid": 3, "msg": {**USER_ORDER, "status": "unknown"}})
    )
    await service.step(ctx)
    assert rest.asked == [USER_ORDER["order_id"]]
    (update,) = await user_orders(aredis, k)
    assert update["status"] == "resting"  # what the lookup said, not "dropped as bad"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    frames=st.lists(
        st.one_of(
            mutated(st.just(USER_ORDER)),
            UNKNOWN_ENUM.map(lambda status: {**USER_ORDER, "status": status}),
        ),
        min_size=1,
        max_size=5,
    )
)
async def test_fuzzed_user_orders_never_stop_the_fills_process(
    settings: Settings, aredis: aioredis.Redis, frames: list[Any]
) -> None:
    k, rest = Keys(), LookupRest()
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    ws = KalshiWebSocket("ws://127.0.0.1:9/x", SIGNER, on_event=service.queue.put_nowait)
    for frame in frames:
        ws._on_message(json.dumps({"type": "user_order", "sid": 3, "msg": frame}))
    await service.step(ctx)  # raises nothing
    assert service.queue.empty() and not service.retry


async def test_fills_book_what_a_non_direct_members_balance_loses(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """One maker contract at $0.50 on a maker-fee series: the exchange reports a $0.0044 trade
    fee and takes $0.01; dora books $0.01 (it booked $0.0044 before)."""
    k = Keys()
    service = FillsService(settings, client=LookupRest())  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    await service._apply(ctx, [Fill("t1", "o1", "KX", Side.BID, 5000, 100, 4_400, False, NOW)])
    position = decode_position("KX", await aredis.hgetall(k.pos("KX")))
    assert position.fees == CENT
    await asyncio.sleep(0)
