"""``dora:risk`` of the wrong type (a person's ``SET dora:risk x``): every read and write of the
risk process was refused with WRONGTYPE for ever. Now it replaces the key by a halt (its halt state
was lost, so trading must not resume by itself), logged as ``bad_key_replaced``, recorded and
announced like any halt, and every reader sees an ordinary halted state."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from cli.status_view import gather
from common.domain import Position, RiskState
from common.events import pnl_event
from common.halt import is_halted, lift_halt
from common.keys import Keys
from common.log import EventLogger
from common.messages import ControlCommand, decode_event, parse_control
from common.redis_codec import decode_risk, encode_position
from common.settings import Settings
from common.streams import append
from common.trading_day import trading_day
from services.risk.service import PNL_EVENT_EVERY_MS
from tests.services.test_risk import book, check, setup


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[tuple[str, dict[str, object]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append((record.getMessage(), getattr(record, "fields", {})))


def recording_log() -> tuple[EventLogger, Recorded]:
    logger = logging.getLogger("tests.risk_bad_key")
    logger.handlers[:] = [handler := Recorded()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return EventLogger(logger), handler


async def test_a_risk_key_of_the_wrong_type_is_replaced_by_a_halt(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    ctx.log, logged = recording_log()
    assert not (await check(service, ctx)).halted
    await aredis.set(k.risk, "x")
    control = aredis.pubsub()
    await control.subscribe(k.control)
    await control.get_message(timeout=1.0)  # the subscription's confirmation

    state = await check(service, ctx, 1_000)

    assert state.halted and "corrupted" in state.reason and "dora resume" in state.reason
    assert await aredis.type(k.risk) == "hash"
    stored = decode_risk(await aredis.hgetall(k.risk))  # what the executor and persister read
    assert stored.halted and stored.reason == state.reason and stored.last_check_ms
    assert await is_halted(aredis, k) == (True, state.reason)
    status = await gather(aredis, k)  # dora status and the dashboard
    assert status["risk"]["halted"] and "error" not in status["risk"], status["risk"]
    replaced = [f for e, f in logged.events if e == "bad_key_replaced"]
    assert len(replaced) == 1 and replaced[0]["key"] == k.risk, logged.events
    assert "WRONGTYPE" in str(replaced[0]["reason"])
    events = [decode_event(f) for _, f in await aredis.xrange(k.stream("pnl"))]
    assert ("risk", True) in {(kind, p.get("halted")) for kind, p in events}
    message = None
    for _ in range(20):
        message = await control.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            break
    assert message is not None and parse_control(message["data"]).cmd == "halt"
    await control.aclose()

    later = await check(service, ctx, 1_000)  # it never resumes by itself
    assert later.halted and later.reason == state.reason and not later.check_failures
    assert [e for e, _ in logged.events].count("bad_key_replaced") == 1
    await service.stop(ctx)


async def test_a_halt_heard_while_the_risk_key_is_of_the_wrong_type_is_recorded(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    await aredis.set(k.risk, "x")
    await service._on_control(ctx, ControlCommand("halt", "by hand"))
    stored = decode_risk(await aredis.hgetall(k.risk))
    assert stored.halted and "corrupted" in stored.reason
    await service.stop(ctx)


async def test_the_replacement_keeps_the_days_starting_pnl_so_earlier_losses_still_count(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The day began with $3 realized; it has lost $1 since. A replacement that started the day
    again at its next check forgave that $1: after 'dora resume' a further $0.60 went unnoticed
    by the $1.50 daily loss limit. The risk process's own last record on the pnl stream keeps it."""
    service, ctx, _ = await setup(aredis, settings, max_daily_loss="1.5")
    k = ctx.keys
    await aredis.set(k.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    held = Position("KX", 1000, 5_000_000, realized_pnl=3_000_000)  # 10 @ 0.50, $3 realized
    await aredis.hset(k.pos("KX"), mapping=encode_position(held))
    await book(aredis, "KX", 4900, 5100)
    start = await check(service, ctx)
    assert start.day_start_pnl == 3_000_000 and start.daily_pnl == 0
    await book(aredis, "KX", 3900, 4100)
    lost = await check(service, ctx, PNL_EVENT_EVERY_MS)  # recorded on the pnl stream
    assert lost.daily_pnl == -1_000_000 and not lost.halted
    await aredis.set(k.risk, "x")

    replaced = await check(service, ctx, 1_000)

    assert replaced.halted and "corrupted" in replaced.reason
    assert "kept" in replaced.reason and "dora resume" in replaced.reason
    assert (replaced.day, replaced.day_start_pnl) == (start.day, 3_000_000)
    assert replaced.daily_pnl == -1_000_000
    await lift_halt(aredis, k, "checked", ctx.clock.now_ms(), "test")
    assert not (await check(service, ctx, 1_000)).halted
    await book(aredis, "KX", 3300, 3500)  # $0.60 more: $1.60 lost today
    state = await check(service, ctx, 1_000)
    assert state.daily_pnl == -1_600_000
    assert state.halted and "daily loss limit" in state.reason
    await service.stop(ctx)


async def test_with_no_record_of_the_day_the_replacement_stays_halted_and_says_so(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Nothing on the pnl stream to take the day's starting PnL from: the day would count from
    now, so the halt's reason says so (only a person's 'dora resume' accepts it)."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    await aredis.set(k.risk, "x")

    state = await check(service, ctx, 1_000)

    assert state.halted and "no risk record" in state.reason
    assert "would not count" in state.reason and "dora resume" in state.reason
    later = await check(service, ctx, PNL_EVENT_EVERY_MS)
    assert later.halted and later.reason == state.reason
    await service.stop(ctx)


async def test_the_last_risk_record_is_the_newest_snapshot_that_has_the_days_start(
    aredis: aioredis.Redis,
) -> None:
    from common.risk_record import RECORD_PAGE, last_risk_record

    k = Keys()
    assert await last_risk_record(aredis, k) is None
    old = pnl_event(RiskState(day="2026-12-05", daily_pnl=-5), 10)
    old.pop("day_start_pnl", None)  # written before the snapshot carried it
    await append(aredis, k, "pnl", "pnl", old)
    assert await last_risk_record(aredis, k) is None  # never a start of 0 by default
    day = RiskState(day="2026-12-06", daily_pnl=-7, day_start_pnl=40, total_exposure=9)
    await append(aredis, k, "pnl", "pnl", pnl_event(day, 20))
    await append(aredis, k, "pnl", "risk", {"ts_ms": 30, "halted": True, "reason": "x"})
    record = await last_risk_record(aredis, k)
    assert record is not None and record.last_check_ms == 20
    assert (record.day, record.day_start_pnl, record.daily_pnl) == ("2026-12-06", 40, -7)
    assert record.total_exposure == 9
    for ts_ms in range(31, 31 + 3 * RECORD_PAGE):  # halts and resumes with the risk process down
        await append(aredis, k, "pnl", "risk", {"ts_ms": ts_ms, "halted": True, "reason": "x"})
    assert await last_risk_record(aredis, k) == record


async def test_a_kept_record_of_the_day_before_rolls_from_its_last_total(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The last record is of yesterday (the risk process had not rolled yet): the new day starts
    from yesterday's last recorded total, as any late roll does, and yesterday is closed."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    now = ctx.clock.now_ms()
    yesterday = trading_day(now - 86_400_000, settings.trading_day_tz)
    last = RiskState(day=yesterday, daily_pnl=-2_000_000, day_start_pnl=5_000_000)
    await append(aredis, k, "pnl", "pnl", pnl_event(last, now - 3_600_000))
    await aredis.set(k.risk, "x")

    state = await check(service, ctx, 1_000)

    assert state.halted and state.day == trading_day(now, settings.trading_day_tz)
    assert state.day_start_pnl == 3_000_000  # yesterday's last total, not today's 0
    events = [decode_event(f) for _, f in await aredis.xrange(k.stream("pnl"))]
    closed = [p for kind, p in events if kind == "day_closed"]
    assert [(c["day"], c["day_end_total"]) for c in closed] == [(yesterday, 3_000_000)]
    await service.stop(ctx)
