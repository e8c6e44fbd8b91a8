"""Redis losing the fills process's acknowledged writes (a kill -9 and a restart from an AOF
written every second): positions, the applied ids and the backfill cursor roll back together.
Before the fills mark the periodic backfill healed them up to 5 s later, and meanwhile the
executor computed its limits on a position missing fills the exchange had made."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.clock import ManualClock
from common.domain import Fill, Side
from common.kalshi.errors import ExchangeError
from common.kalshi.wire.portfolio import ExchangePosition
from common.kalshi.ws_events import FillEvent
from common.keys import Keys
from common.log import EventLogger
from common.redis_codec import decode_position
from common.restore import trading_state_gap
from common.runtime import Context
from common.settings import Settings
from services.fills.ledger import apply_fill
from services.fills.mark import FillsMark
from services.fills.service import FillsService
from tests.services.test_executor import FakeExchange, seed
from tests.services.test_executor import started as executor_started
from tests.services.test_executor_data_loss import refresh
from tests.services.test_executor_ledger_loss import roll_back, snapshot
from tests.support.state import mark_restored

NOW = 1_800_000_000_000


class Recorded(EventLogger):
    def __init__(self) -> None:
        super().__init__(logging.getLogger("dora.test.fills"))
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _log(self, level: int, event: str, exc_info: bool, fields: dict[str, Any]) -> None:
        self.events.append((event, fields))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [fields for name, fields in self.events if name == event]


class Rest:
    """The exchange's REST: its fills, the positions they make; ``down`` fails every call."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.down = False

    def exchange_now_ms(self) -> int:
        return NOW

    async def get_fills(self, since_ms: int | None = None, **_: Any) -> list[Fill]:
        if self.down:
            raise ExchangeError("down")
        return [f for f in self.fills if since_ms is None or f.ts_ms >= since_ms]

    async def get_settlements(self, since_ms: int | None = None, **_: Any) -> list[Any]:
        return []

    async def get_positions(self, **_: Any) -> list[Any]:
        if self.down:
            raise ExchangeError("down")
        held = sum(f.count for f in self.fills)
        cost = sum(f.count * f.price // 100 for f in self.fills)
        return [ExchangePosition("KX", held, held, cost, 0, 0, NOW)] if held else []

    async def aclose(self) -> None:
        pass


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client without decoding: DUMP/RESTORE (``snapshot``, ``roll_back``) want bytes."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def fill(n: int) -> Fill:
    """A fill made after the point REST covered."""
    return Fill(f"t{n}", f"o{n}", "KX", Side.BID, 4000, 100, 0, False, NOW - 1_000 + n)


async def position(r: aioredis.Redis, k: Keys) -> int:
    """The position as the executor reads it (its refresh, its rebuild)."""
    return decode_position("KX", await r.hgetall(k.pos("KX"))).position


async def started(
    settings: Settings, r: aioredis.Redis, k: Keys
) -> tuple[FillsService, Context, Rest, Recorded]:
    await mark_restored(r, k)
    rest, log = Rest(), Recorded()
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, r, k, ManualClock(NOW), log)
    await service._recover(ctx)  # as at start: positions synced
    assert await trading_state_gap(r, k) == ""
    return service, ctx, rest, log


async def socket_fill(service: FillsService, ctx: Context, rest: Rest, f: Fill) -> None:
    rest.fills.append(f)
    service.queue.put_nowait(FillEvent(f))
    await service.step(ctx)


def lost_keys(k: Keys) -> list[str]:
    return [k.pos("KX"), k.fill_ids, k.fills_meta, k.fee_rounding("KX"), k.stream("fills")]


@pytest.mark.parametrize("from_memory", [True, False])
async def test_lost_fills_are_found_adds_held_and_healed_at_once(
    settings: Settings, raw: aioredis.Redis, aredis: aioredis.Redis, from_memory: bool
) -> None:
    k = Keys()
    service, ctx, rest, log = await started(settings, aredis, k)
    await socket_fill(service, ctx, rest, fill(1))
    saved = await snapshot(raw, lost_keys(k))
    await socket_fill(service, ctx, rest, fill(2))
    assert await position(aredis, k) == 200
    if not from_memory:
        service.mark.recent.clear()  # only the REST backfill can bring it back
    rest.down = True  # the heal cannot finish yet
    await roll_back(raw, saved)  # Redis restarted without its last second of writes
    assert await position(aredis, k) == 100
    await service.step(ctx)  # idle: no fill comes, no backfill is due for 5 s
    # the loss is found, once; the executor adds nothing until the positions are whole
    assert await trading_state_gap(aredis, k) != ""  # before: "", on a position of 100
    (lost,) = log.named("redis_lost_acknowledged_fills")
    assert lost["acknowledged"] > lost["ours"]
    assert await position(aredis, k) == (200 if from_memory else 100)
    await service.step(ctx)
    assert len(log.named("redis_lost_acknowledged_fills")) == 1
    rest.down = False
    ctx.clock.advance(5_000)  # type: ignore[attr-defined]
    await service.step(ctx)
    assert await position(aredis, k) == 200
    assert await trading_state_gap(aredis, k) == ""
    assert len(log.named("fills_healed")) == 1
    await service.step(ctx)  # healed: no more alarms
    assert len(log.named("redis_lost_acknowledged_fills")) == 1


async def test_a_loss_is_healed_at_once_when_rest_answers(
    settings: Settings, raw: aioredis.Redis, aredis: aioredis.Redis
) -> None:
    """The backfill runs at the step that finds the loss, not at the next periodic one."""
    k = Keys()
    service, ctx, rest, log = await started(settings, aredis, k)
    await socket_fill(service, ctx, rest, fill(1))
    saved = await snapshot(raw, lost_keys(k))
    await socket_fill(service, ctx, rest, fill(2))
    service.mark.recent.clear()
    await roll_back(raw, saved)
    asked = len(log.events)
    await service.step(ctx)  # the clock did not move: the backfill ran for the loss
    assert await position(aredis, k) == 200
    assert await trading_state_gap(aredis, k) == ""
    assert [e for e, _ in log.events[asked:]].count("fills_healed") == 1


async def test_a_loss_found_by_a_write_is_handled_too(
    settings: Settings, raw: aioredis.Redis, aredis: aioredis.Redis
) -> None:
    """A fill applied after the loss and before the next read of the mark finds it itself."""
    k = Keys()
    service, ctx, rest, log = await started(settings, aredis, k)
    await socket_fill(service, ctx, rest, fill(1))
    saved = await snapshot(raw, lost_keys(k))
    await socket_fill(service, ctx, rest, fill(2))
    await roll_back(raw, saved)
    rest.fills.append(fill(3))
    await service._apply(ctx, [fill(3)], "ws")  # the write moves the mark past the loss
    assert service.mark.lost
    await service.step(ctx)
    assert len(log.named("redis_lost_acknowledged_fills")) == 1
    assert await position(aredis, k) == 300
    assert len(log.named("fills_healed")) == 1


async def test_a_new_fills_process_is_not_judged_by_its_predecessors_mark(
    settings: Settings, raw: aioredis.Redis, aredis: aioredis.Redis
) -> None:
    """A restart: the predecessor's mark (more transactions, another token) is no loss; Redis
    going back to it after the new process's writes were acknowledged is."""
    k = Keys()
    old, ctx, rest, _ = await started(settings, aredis, k)
    for n in range(1, 6):
        await socket_fill(old, ctx, rest, fill(n))
    saved = await snapshot(raw, lost_keys(k))
    new = FillsService(settings, client=rest)  # type: ignore[arg-type]
    log = Recorded()
    new_ctx = Context("fills", settings, aredis, k, ManualClock(NOW), log)
    await new.step(new_ctx)  # reads the predecessor's mark before writing anything
    await new._recover(new_ctx)
    await socket_fill(new, new_ctx, rest, fill(6))
    await new.step(new_ctx)
    assert not log.named("redis_lost_acknowledged_fills") and not new.mark.lost
    assert await trading_state_gap(aredis, k) == ""
    await roll_back(raw, saved)  # back to the predecessor's mark: fill 6 is gone
    await new.step(new_ctx)
    assert len(log.named("redis_lost_acknowledged_fills")) == 1
    assert await position(aredis, k) == 600


async def test_redis_losing_all_its_data_is_the_restores_not_a_loss_of_writes(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    service, ctx, rest, log = await started(settings, aredis, k)
    for n in range(1, 4):
        await socket_fill(service, ctx, rest, fill(n))
    await aredis.flushall()  # emptied; the persister restores (a new restore) before a step
    await mark_restored(aredis, k, ts_ms=2)
    await aredis.delete(k.positions_synced)
    await service.step(ctx)  # the restore's sync: the backfill brings the fills back
    assert not log.named("redis_lost_acknowledged_fills")
    assert await position(aredis, k) == 300
    assert await trading_state_gap(aredis, k) == ""


async def test_a_transaction_answered_while_the_mark_was_read_is_no_loss(
    aredis: aioredis.Redis,
) -> None:
    """The step reads the mark while the backfill's transactions are answered: one answered
    after the read was sent may have run after it. Compared with what was acknowledged when
    the read came back, the mark looked lost (a false alarm)."""
    k = Keys()
    await mark_restored(aredis, k)
    mark = FillsMark()
    await apply_fill(aredis, k, fill(1), mark=mark)
    before_read = mark.acked
    raw = await aredis.hget(k.fills_meta, mark.name)  # the read runs here...
    await apply_fill(aredis, k, fill(2), mark=mark)
    assert mark.acked > before_read  # ...and a transaction is answered before it returns
    assert mark.check(raw, mark.restore, before_read) and not mark.lost
    assert not mark.check(raw, mark.restore, mark.acked)  # what it would have compared


async def test_the_executor_adds_no_risk_until_the_lost_fills_are_back(
    settings: Settings, raw: aioredis.Redis, aredis: aioredis.Redis
) -> None:
    """The executor's gate, which re-reads ``dora:positions:synced`` while it runs (every
    250 ms), holds every adding order from the loss until the fills are healed."""
    k = Keys()
    exchange = FakeExchange(aredis, k)
    await seed(aredis, k, "KX")
    executor, exec_ctx = await executor_started(settings, aredis, exchange)
    try:
        service, ctx, rest, _ = await started(settings, aredis, k)
        await socket_fill(service, ctx, rest, fill(1))
        saved = await snapshot(raw, lost_keys(k))
        await socket_fill(service, ctx, rest, fill(2))
        await refresh(executor, exec_ctx)
        assert executor.safety.blocked.reason == ""
        rest.down = True
        await roll_back(raw, saved)
        await service.step(ctx)
        await refresh(executor, exec_ctx)
        assert "checked against the exchange" in executor.safety.blocked.reason
        rest.down = False
        ctx.clock.advance(5_000)  # type: ignore[attr-defined]
        await service.step(ctx)
        await refresh(executor, exec_ctx)
        assert executor.safety.blocked.reason == ""
    finally:
        await executor.stop(exec_ctx)
