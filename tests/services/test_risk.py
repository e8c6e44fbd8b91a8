from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.clock import ManualClock
from common.config import GlobalConfig
from common.domain import (
    Order,
    OrderStatus,
    Position,
    RiskState,
    Side,
    is_own_client_order_id,
    make_client_order_id,
)
from common.halt import set_halt
from common.kalshi.wire.orders import OrderRef
from common.kalshi.wire.portfolio import ExchangePosition
from common.keys import Keys
from common.log import get_logger
from common.messages import decode_event
from common.redis_codec import (
    decode_mark,
    decode_risk,
    encode_book,
    encode_global_config,
    encode_order,
    encode_position,
    encode_risk,
)
from common.runtime import Context
from common.settings import Settings, load_settings
from services.risk.alerts import FAILED_CHECKS_TO_ALERT
from services.risk.service import WATCH_STUCK_MS, RiskService
from services.risk.watch import RECONCILE_EVERY_MS
from tests.support.state import mark_restored

NOW = 1_800_000_000_000


class FakeExchange:
    """``resting`` orders of dora's (client order ids it made) and ``orders`` of anyone's."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.resting = 0
        self.cancel_alls = 0
        self.cancel_owns = 0
        self.position_reads = 0
        self.exposures: dict[str, int] = {}
        self.orders: list[Order] = []

    async def get_positions(self, **_: object) -> list[ExchangePosition]:
        self.position_reads += 1
        return [
            ExchangePosition(t, p, 0, self.exposures.get(t, 0), 0, 0, 0)
            for t, p in self.positions.items()
        ]

    def _resting(self) -> list[Order]:
        own = (make_client_order_id("t", "KX-R", "bid", i) for i in range(self.resting))
        return [
            Order("KX-R", Side.BID, 100, 100, cid, f"ex-{i}", OrderStatus.RESTING, 0, 100)
            for i, cid in enumerate(own)
        ] + self.orders

    async def get_open_orders(self, **_: object) -> list[Order]:
        return self._resting()

    async def get_open_order_refs(self, *_: object, **__: object) -> list[OrderRef]:
        return [OrderRef(o.order_id or "", o.ticker, o.client_order_id) for o in self._resting()]

    async def cancel_all_orders(self) -> None:
        self.cancel_alls += 1
        self.resting = 0
        self.orders = []

    async def cancel_own_orders(self, refs: object = None) -> int:
        self.cancel_owns += 1
        cancelled, self.resting = self.resting, 0
        self.orders = [o for o in self.orders if not is_own_client_order_id(o.client_order_id)]
        return cancelled

    async def aclose(self) -> None:
        pass


async def setup(
    r: aioredis.Redis,
    settings: Settings,
    max_daily_loss: str = "100",
    clock: ManualClock | None = None,
) -> tuple[RiskService, Context, FakeExchange]:
    k = Keys()
    await mark_restored(r, k)
    await r.hset(
        k.cfg_global,
        mapping=encode_global_config(GlobalConfig.from_item({"max_daily_loss": max_daily_loss}), 1),
    )
    exchange = FakeExchange()
    service = RiskService(settings, client=exchange)  # type: ignore[arg-type]
    ctx = Context("risk", settings, r, k, clock or ManualClock(NOW), get_logger("risk"))
    await service.start(ctx)
    return service, ctx, exchange


async def check(service: RiskService, ctx: Context, advance_ms: int = 0) -> RiskState:
    """One check and the exchange watch's round it started (which runs beside the checks)."""
    ctx.clock.advance(advance_ms)  # type: ignore[attr-defined]
    state = await service.check(ctx)
    if service.watching is not None:
        await service.watching
    return state


async def book(
    r: aioredis.Redis, ticker: str, bid: int | None, ask: int | None, **kw: object
) -> None:
    state = BookState(
        ticker,
        YesBook(((bid, 100),) if bid else (), ((ask, 100),) if ask else ()),
        1,
        0,
        0,
        bool(kw.get("stale", False)),
    )
    await r.hset(Keys().book(ticker), mapping=encode_book(state))


async def test_daily_loss_beyond_the_limit_halts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings, max_daily_loss="10")
    k = ctx.keys
    await aredis.set(k.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    exchange.positions = {"KX": 1000}
    await aredis.hset(
        k.pos("KX"), mapping=encode_position(Position("KX", 1000, 5_000_000))
    )  # 10 @ 0.50
    await book(aredis, "KX", 4900, 5100)
    state = await check(service, ctx)
    assert state.daily_pnl == 0 and not state.halted  # the day starts here
    await book(aredis, "KX", 3900, 4100)
    state = await check(service, ctx)
    assert state.daily_pnl == -1_000_000  # 10 contracts x -$0.10
    assert not state.halted
    await book(aredis, "KX", 3800, 3900)
    await aredis.hset(
        k.cfg_global,
        mapping=encode_global_config(GlobalConfig.from_item({"max_daily_loss": "1"}), 2),
    )
    state = await check(service, ctx)
    assert state.halted and "daily loss limit" in state.reason
    assert decode_risk(await aredis.hgetall(k.risk)).halted
    await service.stop(ctx)


async def test_a_collapsing_market_shows_its_loss_and_halts_within_one_check(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Long 10 YES bought at 0.50; every bid is pulled. The position is worth nothing if it
    has to go now: -$5, past a $4 limit, and that very check halts. (It used to be valued at
    its cost while the book was one-sided: no loss at all.)"""
    service, ctx, _ = await setup(aredis, settings, max_daily_loss="4")
    await aredis.hset(ctx.keys.pos("KX"), mapping=encode_position(Position("KX", 1000, 5_000_000)))
    await book(aredis, "KX", 4900, 5100)
    assert (await check(service, ctx)).daily_pnl == 0
    await book(aredis, "KX", None, 5100)  # the bids collapse
    state = await check(service, ctx)
    assert state.daily_pnl == -5_000_000 and state.halted
    assert decode_mark(await aredis.hget(ctx.keys.marks, "KX")).source == "liquidation"
    await service.stop(ctx)


async def test_a_short_with_no_asks_left_is_marked_at_one_dollar(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    # short 10 YES sold at 0.50 (cost is the credit received, negative)
    await aredis.hset(
        ctx.keys.pos("KX"), mapping=encode_position(Position("KX", -1000, -5_000_000))
    )
    await book(aredis, "KX", None, None)
    state = await check(service, ctx)
    assert state.unrealized_pnl == -5_000_000  # buying back 10 at $1
    await service.stop(ctx)


async def test_marks_leave_our_own_quotes_out(settings: Settings, aredis: aioredis.Redis) -> None:
    """Long 10 at 0.50; the best bid (0.49) is our own order, the others bid 0.40. Our bid
    holds nothing up: the mark is the others' mid (0.40 + 0.51) / 2, not 0.50."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 1000, 5_000_000)))
    state = BookState("KX", YesBook(((4900, 500), (4000, 300)), ((5100, 300),)), 1, 0, 0, False)
    await aredis.hset(k.book("KX"), mapping=encode_book(state))
    mine = Order("KX", Side.BID, 4900, 500, "c-1", "o-1", OrderStatus.RESTING, 0, 500)
    await aredis.hset(k.orders("KX"), "c-1", encode_order(mine))
    state_ = await check(service, ctx)
    assert state_.unrealized_pnl == (4550 - 5000) * 1000
    await service.stop(ctx)


async def test_a_stale_book_is_not_used(settings: Settings, aredis: aioredis.Redis) -> None:
    """A book marked stale (a seq gap, a silent socket) may show anything: the last fresh one
    is held instead."""
    service, ctx, _ = await setup(aredis, settings)
    await aredis.hset(ctx.keys.pos("KX"), mapping=encode_position(Position("KX", 1000, 5_000_000)))
    await book(aredis, "KX", 5900, 6100)
    assert (await check(service, ctx)).unrealized_pnl == 1_000_000
    await book(aredis, "KX", 100, 300, stale=True)
    state = await check(service, ctx, 1_000)
    assert state.unrealized_pnl == 1_000_000
    assert decode_mark(await aredis.hget(ctx.keys.marks, "KX")).source == "held"
    await service.stop(ctx)


async def test_the_held_marks_outlive_a_restart_of_risk(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    await aredis.hset(ctx.keys.pos("KX"), mapping=encode_position(Position("KX", 1000, 5_000_000)))
    await book(aredis, "KX", 5900, 6100)
    await check(service, ctx)
    await service.stop(ctx)
    await book(aredis, "KX", None, None, stale=True)
    again, ctx, _ = await setup(aredis, settings)
    state = await check(again, ctx, 1_000)
    assert state.unrealized_pnl == 1_000_000 and state.check_failures == 0
    await again.stop(ctx)


async def test_a_corrupt_position_hash_fails_the_check_but_not_the_rest_of_it(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """One corrupt dora:pos hash used to raise out of the check before the halt test, silently
    disabling the loss limit while the heartbeat kept beating. Now it is skipped and reported,
    the rest is still checked (another market's loss still halts), and the state says failing."""
    service, ctx, exchange = await setup(aredis, settings, max_daily_loss="4")
    k = ctx.keys
    await aredis.set(k.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    await aredis.hset(k.pos("KBAD"), mapping={"position": "lots", "cost": "?"})
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 1000, 5_000_000)))
    exchange.positions = {"KX": 1000, "KBAD": 700}
    await book(aredis, "KX", 4900, 5100)
    state = await check(service, ctx)
    assert state.check_failures == 1 and "dora:pos:KBAD" in state.check_error
    stored = decode_risk(await aredis.hgetall(k.risk))
    assert stored.check_failures == 1 and stored.last_check_ms == NOW
    await book(aredis, "KX", None, 5100)  # KX collapses: -$5 against a $4 limit
    state = await check(service, ctx, 1_000)
    assert state.halted and state.check_failures == 2
    # the unreadable market is not called a mismatch, however long it stays unreadable
    for _ in range(3):
        state = await check(service, ctx, RECONCILE_EVERY_MS)
    assert "position mismatch" not in decode_risk(await aredis.hgetall(k.risk)).reason
    assert exchange.position_reads == 4 + 5  # 4 comparisons; the limits at each of 5 checks
    await aredis.delete(k.pos("KBAD"))
    state = await check(service, ctx, 1_000)
    assert state.check_failures == 0 and state.check_error == ""
    await service.stop(ctx)


async def test_an_alert_after_a_few_failed_checks(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    await aredis.set(ctx.keys.pos("KBAD"), "not a hash")  # the wrong type altogether
    assert service.alerter is not None
    for n in range(1, FAILED_CHECKS_TO_ALERT + 1):
        assert "risk_check_failing" not in service.alerter.last_sent_ms
        state = await check(service, ctx, 1_000)
        assert state.check_failures == n and "WRONGTYPE" in state.check_error
    assert "risk_check_failing" in service.alerter.last_sent_ms
    await aredis.delete(ctx.keys.pos("KBAD"))
    await check(service, ctx, 1_000)
    assert "risk_check_failing" not in service.alerter.last_sent_ms  # cleared: the next one tells
    await service.stop(ctx)


async def test_a_check_that_cannot_run_at_all_counts_and_alerts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)

    async def broken(ctx: Context) -> RiskState:
        raise ConnectionError("redis went away")

    service.check = broken  # type: ignore[method-assign]
    for _ in range(FAILED_CHECKS_TO_ALERT):
        await service.step(ctx)
        ctx.clock.advance(settings.risk_interval_ms)  # type: ignore[attr-defined]
    assert service.failures == FAILED_CHECKS_TO_ALERT
    assert service.alerter is not None and "risk_check_failing" in service.alerter.last_sent_ms
    await service.stop(ctx)


async def test_an_exchange_watch_that_never_ends_fails_the_check(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The dead-man and the position comparison run beside the checks; one stuck round (a
    request that never returns) must not leave them silently off."""
    service, ctx, _ = await setup(aredis, settings)
    assert service.watch is not None

    async def stuck(*args: object) -> list[str]:
        await asyncio.Event().wait()
        return []

    service.watch.run = stuck  # type: ignore[method-assign]
    assert (await service.check(ctx)).check_failures == 0
    ctx.clock.advance(WATCH_STUCK_MS + 1)  # type: ignore[attr-defined]
    state = await service.check(ctx)
    assert state.check_failures == 1 and "exchange watch stuck" in state.check_error
    await service.stop(ctx)


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


async def test_the_day_rolls_at_new_york_midnight_in_summer(
    redis_url: str, aredis: aioredis.Redis
) -> None:
    """03:30 UTC on 15 July is 23:30 in New York: still the 14th (a UTC day would have rolled
    at 00:00 UTC and reset the daily PnL four hours early)."""
    settings = load_settings({"DORA_REDIS_URL": redis_url}, read_file=False)
    clock = ManualClock(utc_ms("2026-07-14T23:00:00"))
    service, ctx, _ = await setup(aredis, settings, clock=clock)
    k = ctx.keys
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 0, 0, 1_000_000)))
    assert (await check(service, ctx)).day == "2026-07-14"
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 0, 0, -2_000_000)))
    clock.advance(4 * 3_600_000 + 30 * 60_000)  # 03:30 UTC
    state = await check(service, ctx)
    assert state.day == "2026-07-14" and state.daily_pnl == -3_000_000
    clock.advance(31 * 60_000)  # 04:01 UTC: midnight in New York has passed
    state = await check(service, ctx)
    assert state.day == "2026-07-15" and state.daily_pnl == 0
    await service.stop(ctx)


async def test_a_roll_seen_late_keeps_the_losses_and_closes_the_day(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The last check before midnight saw a total of +$1. Risk was down across midnight while
    $6 was lost. The new day starts from +$1 (the last total recorded), so its daily PnL is -$6
    and a $5 limit halts; the day that ended goes out as a day_closed snapshot."""
    clock = ManualClock(utc_ms("2026-07-14T23:50:00"))  # 19:50 in New York
    service, ctx, _ = await setup(aredis, settings, max_daily_loss="5", clock=clock)
    k = ctx.keys
    await aredis.hset(
        k.risk,
        mapping=encode_risk(RiskState(day="2026-07-14", day_start_pnl=3_000_000, daily_pnl=0)),
    )
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 0, 0, 1_000_000)))
    state = await check(service, ctx)
    assert state.day == "2026-07-14" and state.daily_pnl == -2_000_000
    await service.stop(ctx)  # risk goes down
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 0, 0, -5_000_000)))
    clock.advance(5 * 3_600_000 + 10 * 60_000)  # 01:00 in New York: a new day
    again, ctx, _ = await setup(aredis, settings, max_daily_loss="5", clock=clock)
    state = await check(again, ctx)
    assert state.day == "2026-07-15" and state.daily_pnl == -6_000_000
    assert state.halted
    closed = [
        decode_event(fields)[1]
        for _, fields in await aredis.xrange(k.stream("pnl"))
        if decode_event(fields)[0] == "day_closed"
    ]
    assert len(closed) == 1
    assert closed[0]["day"] == "2026-07-14" and closed[0]["daily_pnl"] == -2_000_000
    assert closed[0]["day_end_total"] == 1_000_000 and closed[0]["closed_ms"] == clock.now_ms()
    await again.stop(ctx)


async def test_position_mismatch_halts_only_when_it_persists(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    await aredis.hset(ctx.keys.pos("KX"), mapping=encode_position(Position("KX", 500, 2_500_000)))
    exchange.positions = {"KX": 700}
    assert not (await check(service, ctx)).halted  # one comparison: maybe a fill in flight
    exchange.positions = {"KX": 500}
    assert not (await check(service, ctx, RECONCILE_EVERY_MS)).halted  # agreed again
    exchange.positions = {"KX": 700}
    await check(service, ctx, RECONCILE_EVERY_MS)
    await check(service, ctx, 1_000)  # a check between comparisons compares nothing
    await check(service, ctx, RECONCILE_EVERY_MS)
    assert not decode_risk(await aredis.hgetall(ctx.keys.risk)).halted  # two: not yet
    await check(service, ctx, RECONCILE_EVERY_MS)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and "position mismatch in KX: dora 5.00, exchange 7.00" in state.reason
    await service.stop(ctx)


async def test_fills_in_flight_at_every_check_are_not_a_mismatch(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A busy market under load: each check finds a different fill not yet applied by dora.
    Seen in a throughput bench, where it halted trading although nothing was lost."""
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    for ours, theirs in ((2600, 2900), (2900, 2600), (2600, 3100), (3100, 2800), (2800, 3200)):
        await aredis.hset(
            ctx.keys.pos("KX"), mapping=encode_position(Position("KX", ours, ours * 3_000))
        )
        exchange.positions = {"KX": theirs}
        assert not (await check(service, ctx, RECONCILE_EVERY_MS)).halted
    # a lost fill: the same offset stays while later fills move both positions
    for ours in (3000, 3400, 2900):
        await aredis.hset(
            ctx.keys.pos("KX"), mapping=encode_position(Position("KX", ours, ours * 3_000))
        )
        exchange.positions = {"KX": ours + 500}
        await check(service, ctx, RECONCILE_EVERY_MS)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and "dora 29.00, exchange 34.00" in state.reason
    await service.stop(ctx)


async def test_a_silent_executor_gets_its_orders_cancelled_and_no_one_elses(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A silent executor is no kill switch (DESIGN.md §5): dora's quotes are pulled, an order
    the trader placed by hand in the subaccount stays (a halt clears it: the next test)."""
    service, ctx, exchange = await setup(aredis, settings)
    exchange.resting = 4
    by_hand = Order("KX", Side.ASK, 9000, 100, "my-own", "ex-h", OrderStatus.RESTING, 0, 100)
    exchange.orders = [by_hand]
    await check(service, ctx)  # no executor heartbeat yet: just started together, so it waits
    assert exchange.cancel_owns == 0
    await check(service, ctx, settings.executor_silence_ms)  # still none a silence period later
    assert exchange.cancel_owns == 1 and exchange.resting == 0
    await check(service, ctx)  # still silent, none of dora's resting: no more calls
    assert exchange.cancel_owns == 1
    assert exchange.orders == [by_hand] and exchange.cancel_alls == 0
    await service.stop(ctx)


async def test_while_halted_every_order_resting_is_cancelled_whoever_placed_it(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    await set_halt(aredis, ctx.keys, "kill switch", NOW, "cli")
    exchange.orders = [
        Order("KX", Side.ASK, 9000, 100, "my-own", "ex-h", OrderStatus.RESTING, 0, 100)
    ]
    await check(service, ctx)
    assert exchange.cancel_alls == 1 and exchange.orders == []
    await service.stop(ctx)


async def test_an_executor_seen_then_silent_is_acted_on_at_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    await check(service, ctx)
    exchange.resting = 2
    await aredis.delete(ctx.keys.hb("executor"))  # its heartbeat expired: it went silent
    await check(service, ctx)  # no start-up grace for an executor that was alive
    assert exchange.cancel_owns == 1 and exchange.resting == 0
    await service.stop(ctx)


async def test_a_worst_case_above_the_cap_at_the_exchange_halts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Computed from the exchange's own positions and orders, never from Redis (which may not
    know an order): above max_total_exposure it halts, saying why."""
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.hset(ctx.keys.cfg_global, "max_total_exposure", "20")
    await aredis.hset(ctx.keys.cfg_global, "version", "2")
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    exchange.positions, exchange.exposures = {"KX": 2000}, {"KX": 10_000_000}  # $10 held
    exchange.orders = [
        Order("KY", Side.ASK, 4000, 1000, "a", "ex-a", OrderStatus.RESTING, 0, 1000)  # $6
    ]
    assert not (await check(service, ctx, 1_000)).halted
    assert not decode_risk(await aredis.hgetall(ctx.keys.risk)).halted
    exchange.orders.append(
        Order("KZ", Side.BID, 5000, 1000, "b", "ex-b", OrderStatus.RESTING, 0, 1000)  # $5
    )
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and state.reason.startswith("exposure_breach")
    assert "$21.00" in state.reason and "$20.00" in state.reason
    await service.stop(ctx)


async def test_every_shards_executor_is_watched(redis_url: str, aredis: aioredis.Redis) -> None:
    """Two executor shards: one silent leaves its orders unmaintained, whatever the other does."""
    settings = load_settings(
        {"DORA_REDIS_URL": redis_url, "DORA_SHARD_COUNT": "2"}, read_file=False
    )
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor-0"), "{}", px=60_000)
    await aredis.set(ctx.keys.hb("executor-1"), "{}", px=60_000)
    await check(service, ctx)
    exchange.resting = 2
    await aredis.delete(ctx.keys.hb("executor-1"))
    await check(service, ctx)
    assert exchange.cancel_owns == 1 and exchange.resting == 0
    await service.stop(ctx)


async def test_each_events_worst_loss_is_recorded_and_a_breach_halts(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Three mutually exclusive markets, long 10 YES at $0.30 in each ($9 lost if none wins)
    and a resting ask: the event's worst loss, from the exchange, in dora:risk; past its
    override it halts."""
    import orjson

    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    for t in ("KXE-A", "KXE-B", "KXE-C"):
        await aredis.hset(
            ctx.keys.market(t), mapping={"event_ticker": "KXE", "mutually_exclusive": "1"}
        )
    exchange.positions = {"KXE-A": 1000, "KXE-B": 1000, "KXE-C": 1000}
    exchange.exposures = dict.fromkeys(exchange.positions, 3_000_000)
    await aredis.hset(ctx.keys.cfg_events, mapping={"KXE": "9.5", "version": "1"})
    await check(service, ctx, 1_000)
    events = orjson.loads(await aredis.hget(ctx.keys.risk, "events") or "{}")
    assert events == {"KXE": {"worst_loss": 9_000_000, "limit": 9_500_000}}
    assert not decode_risk(await aredis.hgetall(ctx.keys.risk)).halted
    exchange.orders = [  # a bid of 5 at $0.20: $1 more if none wins
        Order("KXE-A", Side.BID, 2000, 500, "b", "ex-b", OrderStatus.RESTING, 0, 500)
    ]
    await check(service, ctx, 1_000)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and state.reason.startswith("event_loss_breach: KXE")
    await service.stop(ctx)
