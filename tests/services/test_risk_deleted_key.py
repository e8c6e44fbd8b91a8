"""``DEL dora:risk`` by hand while Redis keeps its data (the restore marker is there): the risk
process's next check started the trading day again (the day's earlier losses stopped counting
toward ``max_daily_loss``) and wrote ``halted 0``: a halt was lifted by a deleted key. Now it
writes the key again from its last record on the pnl stream (the day, and the halt as last
recorded); with no record of the day it halts and says why. A fresh install (no record ever, no
risk state restored from DynamoDB) still starts normally."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from common.domain import Position, RiskState
from common.events import pnl_event
from common.halt import HaltNotRecorded, ResumeRefused, lift_halt, set_halt
from common.keys import Keys
from common.messages import decode_event
from common.redis_codec import decode_risk, encode_position
from common.runtime import Context
from common.settings import Settings
from common.streams import append
from services.risk.service import PNL_EVENT_EVERY_MS, RiskService
from tests.services.test_risk import book, check, setup


async def losing_day(aredis: aioredis.Redis, settings: Settings) -> tuple[RiskService, Context]:
    """The day began with $3 realized and has lost $1 since (recorded on the pnl stream); the
    daily loss limit is $1.50."""
    service, ctx, _ = await setup(aredis, settings, max_daily_loss="1.5")
    k = ctx.keys
    await aredis.set(k.hb("executor"), '{"pid": 1, "ts_ms": 1}')
    held = Position("KX", 1000, 5_000_000, realized_pnl=3_000_000)  # 10 @ 0.50, $3 realized
    await aredis.hset(k.pos("KX"), mapping=encode_position(held))
    await book(aredis, "KX", 4900, 5100)
    start = await check(service, ctx)
    assert start.day_start_pnl == 3_000_000 and start.daily_pnl == 0
    await book(aredis, "KX", 3900, 4100)
    lost = await check(service, ctx, PNL_EVENT_EVERY_MS)
    assert lost.daily_pnl == -1_000_000 and not lost.halted
    return service, ctx


async def test_a_deleted_risk_key_keeps_the_days_losses(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx = await losing_day(aredis, settings)
    k = ctx.keys
    await aredis.delete(k.risk)

    again = await check(service, ctx, 1_000)

    assert again.day_start_pnl == 3_000_000 and again.daily_pnl == -1_000_000
    assert not again.halted  # the last record was not halted
    await book(aredis, "KX", 3300, 3500)  # $0.60 more: $1.60 lost today
    state = await check(service, ctx, 1_000)
    assert state.daily_pnl == -1_600_000
    assert state.halted and "daily loss limit" in state.reason
    await service.stop(ctx)


async def test_a_deleted_risk_key_never_lifts_a_halt(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx = await losing_day(aredis, settings)
    k = ctx.keys
    await set_halt(aredis, k, "fat finger", ctx.clock.now_ms(), "test")
    assert (await check(service, ctx, PNL_EVENT_EVERY_MS)).halted
    await aredis.delete(k.risk)

    state = await check(service, ctx, 1_000)

    assert state.halted and state.reason == "fat finger"
    assert state.day_start_pnl == 3_000_000 and state.daily_pnl == -1_000_000
    stored = decode_risk(await aredis.hgetall(k.risk))  # what the executor and persister read
    assert stored.halted and stored.reason == "fat finger" and stored.halted_ms
    later = await check(service, ctx, PNL_EVENT_EVERY_MS)
    assert later.halted and later.reason == "fat finger"
    await service.stop(ctx)


async def test_a_halt_set_after_the_delete_keeps_the_day_and_a_resume_lifts_only_the_halt(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """'dora halt' (then 'dora resume') into the deleted key, before the risk process's next
    check: the key then holds only the halt fields, still no trading day."""
    service, ctx = await losing_day(aredis, settings)
    k = ctx.keys
    now = ctx.clock.now_ms
    await aredis.delete(k.risk)
    await set_halt(aredis, k, "while deleted", now(), "test")
    halted = await check(service, ctx, 1_000)
    assert halted.halted and halted.reason == "while deleted"
    assert halted.day_start_pnl == 3_000_000
    await aredis.delete(k.risk)
    await lift_halt(aredis, k, "checked", now(), "test")
    resumed = decode_risk(await aredis.hgetall(k.risk))
    assert not resumed.halted and resumed.day_start_pnl == 3_000_000  # the resume kept the day
    state = await check(service, ctx, 1_000)
    assert not state.halted and state.daily_pnl == -1_000_000
    await service.stop(ctx)


async def test_with_no_record_of_the_day_a_deleted_key_is_a_halt_that_says_why(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The risk process ran (its snapshot is there) but its record lacks the day's start (written
    before the snapshot carried it): not a fresh install, and the day is not known."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    old = pnl_event(RiskState(day="2027-01-15", daily_pnl=-5), 10)
    old.pop("day_start_pnl")
    await append(aredis, k, "pnl", "pnl", old)

    state = await check(service, ctx, 1_000)

    assert state.halted and "deleted" in state.reason and "no risk record" in state.reason
    assert "dora resume" in state.reason
    events = [decode_event(f) for _, f in await aredis.xrange(k.stream("pnl"))]
    assert ("risk", True) in {(kind, p.get("halted")) for kind, p in events}
    later = await check(service, ctx, PNL_EVENT_EVERY_MS)
    assert later.halted and later.reason == state.reason
    await lift_halt(aredis, k, "checked", ctx.clock.now_ms(), "test")
    assert not (await check(service, ctx, 1_000)).halted  # the day counts from here
    await service.stop(ctx)


async def test_a_fresh_install_starts_normally(settings: Settings, aredis: aioredis.Redis) -> None:
    """No risk record ever, no risk state restored: the day starts at the first check; a halt
    and a resume given before it are plain."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    await aredis.set(k.restored, orjson.dumps({"ts_ms": 1, "risk_restored": False}).decode())
    assert not (await check(service, ctx)).halted
    await aredis.delete(k.risk, k.stream("pnl"))
    await service.stop(ctx)
    service = RiskService(settings, client=service.client)  # a new process: it saw no day
    await service.start(ctx)
    await set_halt(aredis, k, "before the first check", ctx.clock.now_ms(), "test")
    state = await check(service, ctx, 1_000)
    assert state.halted and state.reason == "before the first check" and state.day
    await aredis.delete(k.risk, k.stream("pnl"))
    await service.stop(ctx)
    service = RiskService(settings, client=service.client)
    await service.start(ctx)
    await set_halt(aredis, k, "again", ctx.clock.now_ms(), "test")
    resumed = await lift_halt(aredis, k, "go", ctx.clock.now_ms(), "test")
    assert resumed.replaced is None
    state = await check(service, ctx, 1_000)
    assert not state.halted and state.day and state.reason == "go"
    await service.stop(ctx)


async def test_resume_of_a_deleted_key_with_no_record_of_the_day_is_refused_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx = await losing_day(aredis, settings)
    k = ctx.keys
    await aredis.delete(k.risk, k.stream("pnl"))  # the record gone too
    await aredis.set(k.restored, orjson.dumps({"ts_ms": 1, "risk_restored": True}).decode())
    with pytest.raises(ResumeRefused, match="was deleted"):
        await lift_halt(aredis, k, "go", ctx.clock.now_ms(), "test")
    stored = decode_risk(await aredis.hgetall(k.risk))
    assert stored.halted and "no risk record" in stored.reason
    resumed = await lift_halt(aredis, k, "go", ctx.clock.now_ms(), "test")
    assert resumed.replaced is None and not decode_risk(await aredis.hgetall(k.risk)).halted
    await service.stop(ctx)


async def test_a_restored_risk_state_deleted_before_any_record_is_a_halt(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The persister put DynamoDB's risk state back, then the key was deleted before the risk
    process's first snapshot: no record of the day, and not a fresh install."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    await aredis.set(k.restored, orjson.dumps({"ts_ms": 1, "risk_restored": True}).decode())
    state = await check(service, ctx)
    assert state.halted and "no risk record" in state.reason
    await service.stop(ctx)


async def test_a_key_and_stream_deleted_under_a_running_risk_process_are_a_halt(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """This risk process wrote the day itself: whatever the stream says, not a fresh install."""
    service, ctx = await losing_day(aredis, settings)
    k = ctx.keys
    await aredis.delete(k.risk, k.stream("pnl"))
    state = await check(service, ctx, 1_000)
    assert state.halted and "no risk record" in state.reason
    await service.stop(ctx)


async def test_with_the_restore_marker_gone_the_risk_process_writes_nothing(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """Redis lost its data: the persister's restore from DynamoDB is the path, not a record."""
    service, ctx = await losing_day(aredis, settings)
    k = ctx.keys
    await aredis.delete(k.risk, k.restored)
    await service.step(ctx)
    assert not await aredis.exists(k.risk)
    await service.stop(ctx)


async def test_the_halt_of_the_record_is_the_newest_halt_or_resume_or_a_later_halted_snapshot(
    aredis: aioredis.Redis,
) -> None:
    from common.risk_record import read_record

    k = Keys()
    empty = await read_record(aredis, k)
    assert empty.snapshot is None and empty.never and not empty.halted
    day = RiskState(day="2026-12-06", daily_pnl=-7, day_start_pnl=40)
    await append(aredis, k, "pnl", "pnl", pnl_event(day, 10))
    await append(aredis, k, "pnl", "risk", {"ts_ms": 20, "halted": True, "reason": "stop"})
    # a snapshot written by a check that read the key just before the halt landed
    await append(aredis, k, "pnl", "pnl", pnl_event(day, 30))
    record = await read_record(aredis, k)
    assert record.halted and record.reason == "stop" and record.halted_ms == 20
    assert record.snapshot is not None and record.snapshot.last_check_ms == 30
    assert not record.never
    await append(aredis, k, "pnl", "risk", {"ts_ms": 40, "halted": False, "reason": "ok"})
    assert not (await read_record(aredis, k)).halted
    halted = RiskState(halted=True, reason="restored halt", day="2026-12-06")
    await append(aredis, k, "pnl", "pnl", pnl_event(halted, 50))
    record = await read_record(aredis, k)
    assert record.halted and record.reason == "restored halt" and record.halted_ms == 50


async def test_a_halt_redis_refuses_to_record_still_goes_out_and_says_so(
    aredis: aioredis.Redis,
) -> None:
    """Redis out of memory refuses the record (not the PUBLISH): the halt is announced all the
    same and ``HaltNotRecorded`` says so."""
    k = Keys()
    control = aredis.pubsub()
    await control.subscribe(k.control)
    await control.get_message(timeout=1.0)
    policy = await aredis.config_get("maxmemory*")
    await aredis.config_set("maxmemory-policy", "noeviction")
    await aredis.config_set("maxmemory", "1")
    try:
        with pytest.raises(HaltNotRecorded) as refused:
            await set_halt(aredis, k, "oom", 5, "test")
    finally:
        await aredis.config_set("maxmemory", policy["maxmemory"])
        await aredis.config_set("maxmemory-policy", policy["maxmemory-policy"])
    assert refused.value.heard == 1 and "maxmemory" in str(refused.value)
    assert not await aredis.exists(k.risk)
    await control.aclose()
