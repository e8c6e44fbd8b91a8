import redis.asyncio as aioredis

from common.book import BookState, YesBook
from common.clock import ManualClock
from common.config import GlobalConfig
from common.domain import Position
from common.kalshi.wire.portfolio import ExchangePosition
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_risk, encode_book, encode_global_config, encode_position
from common.runtime import Context
from common.settings import Settings
from services.risk.service import RiskService, trading_day

NOW = 1_800_000_000_000


class FakeExchange:
    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.resting = 0
        self.cancel_alls = 0

    async def get_positions(self) -> list[ExchangePosition]:
        return [ExchangePosition(t, p, 0, 0, 0, 0, 0) for t, p in self.positions.items()]

    async def get_open_orders(self) -> list[object]:
        return [object()] * self.resting

    async def cancel_all_orders(self) -> None:
        self.cancel_alls += 1
        self.resting = 0

    async def aclose(self) -> None:
        pass


async def setup(
    r: aioredis.Redis, settings: Settings, max_daily_loss: str = "100"
) -> tuple[RiskService, Context, FakeExchange]:
    k = Keys()
    await r.set(k.restored, "1")
    await r.hset(
        k.cfg_global,
        mapping=encode_global_config(GlobalConfig.from_item({"max_daily_loss": max_daily_loss}), 1),
    )
    exchange = FakeExchange()
    service = RiskService(settings, client=exchange)  # type: ignore[arg-type]
    ctx = Context("risk", settings, r, k, ManualClock(NOW), get_logger("risk"))
    await service.start(ctx)
    return service, ctx, exchange


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
    await aredis.hset(
        k.book("KX"),
        mapping=encode_book(BookState("KX", YesBook(((4900, 1),), ((5100, 1),)), 1, 0, 0, False)),
    )
    state = await service.check(ctx)
    assert state.daily_pnl == 0 and not state.halted  # the day starts here
    await aredis.hset(
        k.book("KX"),
        mapping=encode_book(BookState("KX", YesBook(((3900, 1),), ((4100, 1),)), 2, 0, 0, False)),
    )
    state = await service.check(ctx)
    assert state.daily_pnl == -1_000_000  # 10 contracts x -$0.10
    assert not state.halted
    await aredis.hset(
        k.book("KX"),
        mapping=encode_book(BookState("KX", YesBook(((3800, 1),), ((3900, 1),)), 3, 0, 0, False)),
    )
    exchange.positions = {"KX": 1000}
    await aredis.hset(
        k.cfg_global,
        mapping=encode_global_config(GlobalConfig.from_item({"max_daily_loss": "1"}), 2),
    )
    state = await service.check(ctx)
    assert state.halted and "daily loss limit" in state.reason
    assert decode_risk(await aredis.hgetall(k.risk)).halted
    await service.stop(ctx)


async def test_position_mismatch_halts_only_when_it_persists(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    await aredis.hset(ctx.keys.pos("KX"), mapping=encode_position(Position("KX", 500, 2_500_000)))
    exchange.positions = {"KX": 700}
    assert not (await service.check(ctx)).halted  # one check: maybe a fill in flight
    exchange.positions = {"KX": 500}
    assert not (await service.check(ctx)).halted  # agreed again: the count starts over
    exchange.positions = {"KX": 700}
    await service.check(ctx)
    await service.check(ctx)
    assert not decode_risk(await aredis.hgetall(ctx.keys.risk)).halted  # two checks: not yet
    await service.check(ctx)
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
        assert not (await service.check(ctx)).halted
    # a lost fill: the same offset stays while later fills move both positions
    for ours in (3000, 3400, 2900):
        await aredis.hset(
            ctx.keys.pos("KX"), mapping=encode_position(Position("KX", ours, ours * 3_000))
        )
        exchange.positions = {"KX": ours + 500}
        await service.check(ctx)
    state = decode_risk(await aredis.hgetall(ctx.keys.risk))
    assert state.halted and "dora 29.00, exchange 34.00" in state.reason
    await service.stop(ctx)


async def test_a_silent_executor_gets_everything_cancelled(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings)
    exchange.resting = 4
    await service.check(ctx)  # no executor heartbeat yet: just started together, so it waits
    assert exchange.cancel_alls == 0
    ctx.clock.advance(settings.executor_silence_ms)  # type: ignore[attr-defined]
    await service.check(ctx)  # still none a silence period after starting
    assert exchange.cancel_alls == 1 and exchange.resting == 0
    await service.check(ctx)  # still silent, nothing resting: no more calls
    assert exchange.cancel_alls == 1
    await service.stop(ctx)


async def test_an_executor_seen_then_silent_is_acted_on_at_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, exchange = await setup(aredis, settings)
    await aredis.set(ctx.keys.hb("executor"), "{}", px=60_000)
    await service.check(ctx)
    exchange.resting = 2
    await aredis.delete(ctx.keys.hb("executor"))  # its heartbeat expired: it went silent
    await service.check(ctx)  # no start-up grace for an executor that was alive
    assert exchange.cancel_alls == 1 and exchange.resting == 0
    await service.stop(ctx)


def test_trading_day_boundary() -> None:
    ms = 1_795_500_000_000  # 2026-11-24T05:20Z
    assert trading_day(ms, 0) == "2026-11-24"
    assert trading_day(ms, 8) == "2026-11-23"  # days start at 08:00 UTC: still yesterday's
