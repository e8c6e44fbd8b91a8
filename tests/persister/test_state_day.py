"""What the persister stores as ``risk_state`` when ``dora:risk`` holds no trading day.

The risk process writes the day at every check. A key without it was written by someone else: a
halt or a resume recorded before the first check of a fresh install, or the exchange watch's
``events`` landing in a key deleted by hand (the risk process writes it again from its record
within a check). Stored, such a key replaced the complete state in DynamoDB: a data loss in that
window restored a key with an empty day (taken as a first day: the day's earlier losses no longer
counted) and, for a key deleted while halted, no halt."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.clock import ManualClock
from common.domain import RiskState
from common.halt import lift_halt, set_halt
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_risk
from common.runtime import Context
from common.settings import Settings
from services.risk.service import RiskService
from tests.persister.conftest import Harness
from tests.services.test_risk import FakeExchange

K = Keys()
TS = 1_767_225_600_000
HALTED = RiskState(True, "daily loss limit", TS, -100_000_000, day="2026-01-01", day_start_pnl=5)


async def test_a_key_deleted_by_hand_is_not_stored_over_the_halt_and_the_day(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    persister.db.state.put_risk(HALTED, TS, TS)
    await persister.start()  # restored: the halt and the day
    await persister.step()
    await aredis.delete(K.risk)  # by hand
    await aredis.hset(K.risk, "events", "{}")  # the exchange watch, before the next check
    await persister.step()
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.halted and stored.risk.day == "2026-01-01"
    await aredis.flushall()  # Redis loses its data in that window
    await persister.step()
    risk = decode_risk(await aredis.hgetall(K.risk))
    assert risk.halted and risk.reason == "daily loss limit"
    assert (risk.day, risk.day_start_pnl) == ("2026-01-01", 5)


async def test_a_halt_before_the_first_check_of_a_fresh_install_is_stored_and_restored(
    persister: Harness, aredis: aioredis.Redis, settings: Settings
) -> None:
    """The halt is durable whatever the key lacks; restored without a day, it is the same halt
    to the risk process (not a key deleted by hand), and the day starts at its first check."""
    await persister.start()
    await set_halt(aredis, K, "before trading", TS, "cli")
    await persister.step()
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.halted and not stored.risk.day
    await aredis.flushall()
    await persister.step()
    risk = RiskService(settings, client=FakeExchange())  # type: ignore[arg-type]
    ctx = Context("risk", settings, aredis, K, ManualClock(TS + 1_000), get_logger("risk"))
    await risk.start(ctx)
    try:
        state = await risk.check(ctx)
        assert state.halted and state.reason == "before trading" and state.day
    finally:
        await risk.stop(ctx)


async def test_a_fresh_install_stores_its_first_state_with_its_day(
    persister: Harness, aredis: aioredis.Redis, settings: Settings
) -> None:
    await persister.start()
    await lift_halt(aredis, K, "go", TS, "cli")  # a resume before the risk process's first check
    assert not await aredis.hexists(K.risk, "day")
    await persister.step()
    assert persister.db.state.get_risk() is None  # nothing of the risk process's yet
    risk = RiskService(settings, client=FakeExchange())  # type: ignore[arg-type]
    ctx = Context("risk", settings, aredis, K, ManualClock(TS), get_logger("risk"))
    await risk.start(ctx)
    try:
        state = await risk.check(ctx)
    finally:
        await risk.stop(ctx)
    await persister.step()
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.day == state.day and state.day
