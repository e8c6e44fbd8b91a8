from collections.abc import Mapping
from decimal import Decimal

import orjson
import redis.asyncio as aioredis
from botocore.exceptions import EndpointConnectionError

from common.domain import Fill, Order, OrderStatus, Position, RiskState, Side
from common.dynamo import Dynamo
from common.events import day_closed_event, decision_event, fill_event, order_event, pnl_event
from common.keys import Keys
from common.redis_codec import encode_position, encode_risk
from common.settings import Settings
from common.streams import PERSISTER_GROUP, append
from services.persister.state import StateSync
from tests.persister.conftest import Harness, make_harness

K = Keys()
TS = 1_767_225_600_000
TRADES = "dora_trade_log"
DECISIONS = "dora_decision_log"


def order(i: int) -> dict:
    o = Order("KXA", Side.BID, 5600, 1000, f"c-{i}", f"o-{i}", OrderStatus.RESTING)
    return order_event(o, "placed", TS + i)


def fill(i: int) -> dict:
    f = Fill(f"f-{i}", f"o-{i}", "KXA", Side.BID, 5600, 100, 10, False, TS + i)
    return fill_event(f, Position("KXA", position=100 * (i + 1)))


async def pending(redis: aioredis.Redis, stream: str) -> int:
    return int((await redis.xpending(K.stream(stream), PERSISTER_GROUP))["pending"])


async def test_events_become_rows_and_are_acknowledged(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    for i in range(30):
        await append(aredis, K, "orders", "order", order(i))
        await append(aredis, K, "fills", "fill", fill(i))
        await append(
            aredis, K, "decisions", "decision", decision_event("KXA", TS + i, {}, 0, {}, [], [])
        )
    await persister.step(3)
    assert persister.count(TRADES) == 60 and persister.count(DECISIONS) == 30
    for stream in ("orders", "fills", "decisions"):
        assert await pending(aredis, stream) == 0
    # a replay (a producer retry, a reclaim) adds no row
    await append(aredis, K, "fills", "fill", fill(3))
    await append(aredis, K, "orders", "order", order(3))
    await persister.step(2)
    assert persister.count(TRADES) == 60
    lag = orjson.loads(await aredis.get(K.persister_lag))
    assert lag["backlog"] == 0 and set(lag["streams"]) == {"orders", "fills", "decisions", "pnl"}


async def test_nothing_is_acknowledged_until_dynamodb_accepts_it(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    real_write = persister.db.logs.write
    calls = []

    def down(rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        raise EndpointConnectionError(endpoint_url="http://dynamodb")

    persister.db.logs.write = down  # type: ignore[method-assign]
    for i in range(10):
        await append(aredis, K, "orders", "order", order(i))
    await persister.step()
    assert calls == [10] and await pending(aredis, "orders") == 10
    assert persister.ctx.status["dynamodb"] == "failing"
    for i in range(10, 20):  # more arrive meanwhile: they wait in Redis, unread
        await append(aredis, K, "orders", "order", order(i))
    persister.service.backoff.until_ms = 0
    await persister.step()
    assert calls == [10, 10]  # the same batch again; nothing new read
    persister.db.logs.write = real_write  # type: ignore[method-assign]
    persister.service.backoff.until_ms = 0
    await persister.step(3)
    assert persister.count(TRADES) == 20 and await pending(aredis, "orders") == 0
    assert persister.ctx.status["dynamodb"] == "ok"


async def test_a_malformed_event_is_logged_and_acknowledged(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    await aredis.xadd(K.stream("orders"), {"type": "order", "data": "{not json"})
    await append(aredis, K, "orders", "order", {"event": "placed"})
    await append(aredis, K, "orders", "order", order(1))
    await append(aredis, K, "pnl", "pnl", {**pnl_event(RiskState(), TS), "day": "x" * 3000})
    await persister.step()
    assert persister.count(TRADES) == 1 and await pending(aredis, "orders") == 0
    assert await pending(aredis, "pnl") == 0
    assert persister.service.counters["bad_events"] == 3


async def test_entries_of_a_dead_consumer_are_reclaimed(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    for i in range(5):
        await append(aredis, K, "fills", "fill", fill(i))
    # another persister read them and died before storing them
    await aredis.xreadgroup(PERSISTER_GROUP, "dead-1", {K.stream("fills"): ">"}, count=10)
    await persister.step()
    assert persister.count(TRADES) == 0  # not idle long enough yet
    import asyncio

    await asyncio.sleep(0.3)
    persister.service.sink.next_claim_ms = 0
    await persister.step()
    assert persister.count(TRADES) == 5 and await pending(aredis, "fills") == 0


async def test_a_halt_is_stored_before_its_event_is_acknowledged(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    await persister.step()
    halted = RiskState(True, "fat finger", TS, -5, 0, 0, 0, 0, "2026-01-01", TS)
    await aredis.hset(K.risk, mapping=encode_risk(halted))
    await append(aredis, K, "pnl", "risk", pnl_event(halted, TS + 1))
    persister.service.next_state_ms = float("inf")  # only the event may cause the write
    persister.service.positions_dirty = False
    await persister.service._store_batch(persister.ctx)
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.halted and stored.risk.reason == "fat finger"
    assert await pending(aredis, "pnl") == 0
    snapshot = persister.db.state.get_pnl_snapshot("2026-01-01")
    assert snapshot is not None and snapshot["trading_halted"] is True


async def test_a_day_closed_at_its_roll_is_stored_as_the_days_final_snapshot(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """Risk sends the day that ended at each roll: its last recorded state, with the totals it
    ran between; the persister stores it as that day's snapshot in dora_state, for good."""
    await persister.start()
    last = RiskState(
        daily_pnl=-2_000_000, day="2026-01-01", last_check_ms=TS, day_start_pnl=3_000_000
    )
    await append(aredis, K, "pnl", "pnl", pnl_event(last, TS))
    await append(aredis, K, "pnl", "day_closed", day_closed_event(last, TS + 7_200_000))
    await persister.step(2)
    snapshot = persister.db.state.get_pnl_snapshot("2026-01-01")
    assert snapshot is not None and snapshot["closed_ms"] == TS + 7_200_000
    assert snapshot["daily_pnl"] == Decimal("-2") and snapshot["day_end_total"] == Decimal("1")
    assert await pending(aredis, "pnl") == 0


async def test_positions_are_stored_at_most_once_a_second_under_fills(
    settings: Settings, aredis: aioredis.Redis, db: Dynamo
) -> None:
    """The positions item holds every market: fills in every step, or a PnL event in every
    batch, must not rewrite it each time. The risk state still follows each PnL event."""
    persister = make_harness(settings, aredis, db, state_interval_ms=60_000)
    await persister.start()
    await persister.step()  # the first store
    service, real = persister.service, persister.db.state.put_positions
    writes: list[Mapping[str, Position]] = []

    def put_positions(positions: Mapping[str, Position], now_ms: int) -> int:
        writes.append(positions)
        return real(positions, now_ms)

    persister.db.state.put_positions = put_positions  # type: ignore[method-assign]
    for i in range(3):
        await aredis.hset(K.pos("KXA"), mapping=encode_position(Position("KXA", 100 * (i + 1))))
        await append(aredis, K, "fills", "fill", fill(i))
        await persister.step()
    assert [w["KXA"].position for w in writes] == []  # within a second of the first store
    risk = RiskState(daily_pnl=-3, day="2026-01-01", last_check_ms=TS)
    await aredis.hset(K.risk, mapping=encode_risk(risk))
    await append(aredis, K, "pnl", "pnl", pnl_event(risk, TS))
    await persister.step()
    assert writes == []
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.daily_pnl == -3  # the risk state did not wait
    service.last_state_ms -= 1_000  # a second later
    await persister.step()
    assert [w["KXA"].position for w in writes] == [300]


async def test_positions_and_the_last_fill_are_stored_when_they_change(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    position = Position("KXA", 500, 2_800_000, 10, 2, TS)
    await aredis.hset(K.pos("KXA"), mapping=encode_position(position))
    await aredis.hset(K.fills_meta, "last_fill_ms", str(TS + 5))
    await aredis.hset(K.risk, mapping=encode_risk(RiskState(daily_pnl=-7)))
    await persister.step()
    assert persister.db.state.get_positions() == {"KXA": position}
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.last_fill_ms == TS + 5 and stored.risk.daily_pnl == -7


class SizedStore:
    """A state store that only reports the positions item's size."""

    def __init__(self) -> None:
        self.sizes = [350_000, 360_000, 1_000, 350_000]

    def put_positions(self, positions: Mapping[str, Position], now_ms: int) -> int:
        return self.sizes.pop(0)

    def put_risk(self, *args: object) -> None:
        pass


class Errors:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def error(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))

    def info(self, event: str, **fields: object) -> None:
        pass

    warning = info


async def test_a_positions_item_near_dynamodbs_limit_is_reported_once(
    aredis: aioredis.Redis,
) -> None:
    """DynamoDB refuses an item over 400 KB, and positions are one item: the persister says so
    (an error log, and ``positions_kb`` in its heartbeat) when the item passes 300 KB."""
    log = Errors()
    sync = StateSync(SizedStore(), K, log)  # type: ignore[arg-type]
    for i in range(4):
        await aredis.hset(K.pos("KXA"), mapping=encode_position(Position("KXA", 100 * (i + 1))))
        await sync.sync(aredis, TS + i, positions=True)
    assert [e for e, _ in log.events] == ["positions_item_near_limit"] * 2  # crossing up, twice
    assert log.events[0][1]["bytes"] == 350_000 and log.events[0][1]["markets"] == 1
    assert sync.positions_bytes == 350_000
