"""The fills process's REST backfill: what the WebSocket missed is found, even behind newer fills."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.clock import ManualClock
from common.domain import Fill, Order, OrderStatus, Settlement, Side
from common.kalshi.ws_events import FillEvent, UserOrderEvent
from common.keys import Keys
from common.log import get_logger
from common.messages import decode_event
from common.redis_codec import decode_position
from common.restore import current_restore
from common.runtime import Context
from common.settings import Settings
from services.fills.backfill import BACKFILL_OVERLAP_MS
from services.fills.ledger import apply_fill
from services.fills.service import FillsService

NOW = 1_800_000_000_000


@pytest.fixture(autouse=True)
async def restored(aredis: aioredis.Redis) -> None:
    await aredis.set(Keys().restored, "{}")


class FakeRest:
    """The exchange's REST as the backfill sees it; its clock (``Date``) says ``exchange_ms``."""

    def __init__(
        self, fills: list[Fill], settlements: list[Settlement], exchange_ms: int | None = NOW
    ) -> None:
        self.fills = fills
        self.settlements = settlements
        self.exchange_ms = exchange_ms
        self.asked_since: list[int | None] = []

    def exchange_now_ms(self) -> int | None:
        return self.exchange_ms

    async def get_fills(self, since_ms: int | None = None, **_: Any) -> list[Fill]:
        self.asked_since.append(since_ms)
        return [f for f in self.fills if since_ms is None or f.ts_ms >= since_ms // 1000 * 1000]

    async def get_settlements(self, since_ms: int | None = None, **_: Any) -> list[Settlement]:
        return [s for s in self.settlements if since_ms is None or s.settled_ms >= since_ms]

    async def aclose(self) -> None:
        pass


def fill(n: int, ts_ms: int) -> Fill:
    return Fill(f"t{n}", f"o{n}", "KX", Side.BID, 4000, 100, 0, False, ts_ms)


async def test_a_fill_missed_behind_newer_fills_is_still_backfilled(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The chaos soak's case: a fill lost while Redis was away, then newer fills applied from the
    WebSocket. Backfilling from the newest fill would never see the lost one."""
    k = Keys()
    missed, later = fill(1, NOW - 60_000), fill(2, NOW - 1_000)
    await apply_fill(aredis, k, later)  # only the newer one reached Redis
    await aredis.hset(
        k.fills_meta, "backfilled_to_ms", str(NOW - 120_000)
    )  # REST covered up to here
    rest = FakeRest([missed, later], [])
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    await service._backfill(ctx)
    assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 200
    assert int(await aredis.hget(k.fills_meta, "backfilled_to_ms") or 0) == NOW - 3_000
    await service._backfill(ctx)  # again: nothing twice
    assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 200


async def test_settlements_are_applied_from_rest(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await apply_fill(aredis, k, fill(1, NOW - 5_000))
    rest = FakeRest([], [Settlement("KX", "no", NOW - 2_000, 0)])
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    await service._backfill(ctx)
    assert not await aredis.exists(k.pos("KX"))  # settled and flat: out of the live set
    closed = decode_position("_closed", await aredis.hgetall(k.pos("_closed")))
    assert closed.realized_pnl == -400_000  # 1 YES bought at 0.40, lost


async def test_the_backfill_cursor_is_exchange_time_so_a_fast_clock_loses_no_fill(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Issue 19.7: the cursor was the local clock minus 3 s. A local clock a minute fast claimed
    a minute of fills not yet listed: one the WebSocket missed in that minute was never found."""
    k = Keys()
    rest = FakeRest([], [], exchange_ms=NOW)  # the exchange's Date says NOW
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    fast = ManualClock(NOW + 60_000)  # the local clock runs a minute ahead
    ctx = Context("fills", settings, aredis, k, fast, get_logger("fills"))
    await service._backfill(ctx)
    assert int(await aredis.hget(k.fills_meta, "backfilled_to_ms") or 0) == NOW - 3_000
    missed = fill(7, NOW + 10_000)  # made after, missed by the socket
    rest.fills.append(missed)
    rest.exchange_ms = NOW + 20_000
    await service._backfill(ctx)
    assert await aredis.sismember(k.fill_ids, missed.fill_id)


async def test_without_the_exchange_time_the_cursor_does_not_move(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    service = FillsService(settings, client=FakeRest([], [], exchange_ms=None))  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    await service._backfill(ctx)
    assert await aredis.hget(k.fills_meta, "backfilled_to_ms") is None


async def test_fills_and_order_updates_of_another_subaccount_are_left_out(
    aredis: aioredis.Redis, redis_url: str
) -> None:
    """Issue 19.4: the socket carries every subaccount of the key; only dora's count."""
    from common.domain import Order, OrderStatus
    from common.kalshi.ws import FillEvent, UserOrderEvent
    from common.settings import load_settings

    k = Keys()
    settings = load_settings(
        {"DORA_REDIS_URL": redis_url, "DORA_KALSHI_SUBACCOUNT": "4"}, read_file=False
    )
    service = FillsService(settings, client=FakeRest([], []))  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    theirs = Fill("t-0", "o-0", "KX", Side.BID, 4000, 100, 0, False, NOW, subaccount=0)
    ours = Fill("t-4", "o-4", "KX", Side.BID, 4000, 300, 0, False, NOW, subaccount=4)
    unsaid = Fill("t-x", "o-x", "KX", Side.BID, 4000, 500, 0, False, NOW)  # primary's, then
    for event in (FillEvent(theirs), FillEvent(ours), FillEvent(unsaid)):
        await service._on_event(ctx, event)
    assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 300
    order = Order("KX", Side.BID, 4000, 100, "c", "o", OrderStatus.RESTING, subaccount=0)
    await service._on_event(ctx, UserOrderEvent(order))
    kinds = [f["type"] for _, f in await aredis.xrange(k.stream("fills"))]
    assert kinds == ["fill"] and service.counts["other_subaccount"] == 3


class SlowListing(FakeRest):
    """A busy exchange: the backfill's listing answers only once let go."""

    def __init__(self) -> None:
        super().__init__([], [])
        self.gate = asyncio.Event()

    async def get_fills(self, since_ms: int | None = None, **kwargs: Any) -> list[Fill]:
        await self.gate.wait()
        return await super().get_fills(since_ms, **kwargs)


async def test_the_sockets_fills_are_applied_while_a_backfill_listing_is_outstanding(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """At 500 markets a backfill's listing took seconds, and the fills the socket delivered
    meanwhile waited behind it (the REST backfill then applied them first, seconds after the
    exchange): the positions, and the executor's worst case, a fill behind the exchange. The
    backfill runs beside the socket's events."""
    k = Keys()
    rest = SlowListing()
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    service.restore_seen = await current_restore(aredis, k)  # synced: no recovery to run
    try:
        service.queue.put_nowait(FillEvent(fill(1, NOW)))
        await asyncio.wait_for(service.step(ctx), 2)  # a backfill is due: its listing hangs
        service.queue.put_nowait(FillEvent(fill(2, NOW + 1)))
        await asyncio.wait_for(service.step(ctx), 2)
        assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 200
        assert rest.asked_since == []  # the listing is still on its way
    finally:
        rest.gate.set()
        await service.stop(ctx)
    assert rest.asked_since == [NOW - BACKFILL_OVERLAP_MS]  # it ran: from the newest fill on


async def test_the_sockets_fills_and_order_updates_go_on_the_stream_in_their_order(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A fill and its order's update come one after the other; a run of them is applied in one
    transaction, the updates between the fills where they came (a fill already applied adds
    nothing, its update still goes on)."""
    k = Keys()
    service = FillsService(settings, client=FakeRest([], []))  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    service.restore_seen = await current_restore(aredis, k)
    service.last_backfill_ms = ctx.clock.monotonic_ms()
    service.backfill_due = False

    def update(n: int, filled: int) -> UserOrderEvent:
        order = Order("KX", Side.BID, 4000, 500, f"c{n}", f"o{n}", OrderStatus.RESTING, filled)
        return UserOrderEvent(replace(order, remaining=500 - filled, exchange_ms=NOW + n))

    events = [
        FillEvent(fill(1, NOW)),
        update(1, 100),
        FillEvent(fill(1, NOW)),  # the same fill again
        update(2, 0),
        FillEvent(fill(3, NOW + 1)),
    ]
    for event in events:
        service.queue.put_nowait(event)
    await service.step(ctx)
    stream = [decode_event(f) for _, f in await aredis.xrange(k.stream("fills"))]
    assert [(kind, p.get("fill_id") or p.get("order_id")) for kind, p in stream] == [
        ("fill", "t1"),
        ("user_order", "o1"),
        ("user_order", "o2"),
        ("fill", "t3"),
    ]
    # the exchange's time of each change goes with it (the executor drops an update older
    # than an answer it already has)
    assert [p["exchange_ms"] for kind, p in stream if kind == "user_order"] == [NOW + 1, NOW + 2]
    assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 200
