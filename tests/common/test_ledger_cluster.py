"""The exposure ledger and the executor lease on a real local Redis Cluster (three masters):
every script's keys in one slot. The ledger is in the account's ``{acct}`` slot, a market's lease,
book, market and orders in its shard's ``{gN}``; a reservation is two steps there (the
account's, then the shard's) and a refused shard step sets the reservation back. On the code
before, every reservation failed with CROSSSLOT (the one script took the ledger and the lease)."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from common.batching import Batcher
from common.domain import MarketMeta, MarketStatus, Order, OrderStatus, PriceGrid, Side
from common.keys import Keys
from common.ledger import NO_CAP, EventPart, Ledger, Record, field, read_event_worst, read_total
from common.log import get_logger
from common.redis_codec import encode_market, encode_order
from common.sharding import executor_name, shard_of
from services.executor.lease import Lease

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed for a local cluster",
)
SHARDS = 2
CAP = 10_000_000  # $10
NOW = 1_700_000_000_000


def keys(shard: int) -> Keys:
    return Keys("dora:", cluster=True, shard_count=SHARDS, shard_index=shard)


def ticker_of_shard(shard: int, n: int = 0) -> str:
    found = [t for t in (f"KXC-{i}" for i in range(200)) if shard_of(t, SHARDS) == shard]
    return found[n]


async def open_market(r: aioredis.Redis, k: Keys, ticker: str, stale: bool = False) -> None:
    meta = MarketMeta(ticker, MarketStatus.ACTIVE, NOW + 10**8, PriceGrid.linear_cent())
    await r.hset(k.market(ticker), mapping=encode_market(meta))
    await r.hset(k.book(ticker), mapping={"seq": "1", "stale": "1" if stale else "0"})


async def executor(r: aioredis.Redis, shard: int) -> tuple[Lease, Ledger, Batcher]:
    k = keys(shard)
    lease = Lease(r, k, executor_name(shard, SHARDS), get_logger("executor"))
    assert await lease.try_acquire() == ""
    ledger = Ledger(r, k, lease.key, lambda: lease.token)
    await ledger.load()
    return lease, ledger, Batcher(r)


def step(batch: Batcher) -> Any:
    async def execute(queue: Any) -> Any:
        (reply,) = await batch.execute(queue)
        return reply

    return execute


def record(ticker: str, n: int) -> Record:
    order = Order(ticker, Side.BID, 4000, 500, f"c-{n}", None, OrderStatus.PENDING, 0, 500)
    return Record(order.client_order_id, encode_order(order))


def test_the_ledger_and_each_shards_lease_keys_are_in_slots_apart() -> None:
    a, b = keys(0), keys(1)
    ledger = key_slot(a.ledger.encode())
    assert ledger == key_slot(a.risk.encode())  # the account's slot
    for k in (a, b):
        t = ticker_of_shard(k.shard_index)
        lease = key_slot(k.lease(executor_name(k.shard_index, SHARDS)).encode())
        assert lease == key_slot(k.lease_fence.encode())
        assert lease == key_slot(k.book(t).encode()) == key_slot(k.orders(t).encode())
        assert lease != ledger
    assert key_slot(a.lease_fence.encode()) != key_slot(b.lease_fence.encode())


async def test_two_shards_reserve_from_one_cap_on_the_cluster(rc: aioredis.Redis) -> None:
    """Shard 0 reserves $6 and records its order as pending; shard 1's $6 would pass the $10
    cap together: denied, nothing recorded; $4 passes. The cap is the account's."""
    t0, t1 = ticker_of_shard(0), ticker_of_shard(1)
    _, ledger0, batch0 = await executor(rc, 0)
    _, ledger1, batch1 = await executor(rc, 1)
    for shard, t in ((0, t0), (1, t1)):
        await open_market(rc, keys(shard), t)
    bid0, bid1 = field("bid", t0), field("bid", t1)
    answer = await ledger0.reserve(
        step(batch0), t0, {bid0: 6_000_000}, CAP, True, (record(t0, 1),), before={bid0: 0}
    )
    assert answer.ok and answer.total == 6_000_000
    assert await rc.hget(keys(0).orders(t0), "c-1")  # recorded before it leaves
    denied = await ledger1.reserve(
        step(batch1), t1, {bid1: 6_000_000}, CAP, True, (record(t1, 2),), before={bid1: 0}
    )
    assert denied.outcome == "denied"
    assert not await rc.hget(keys(1).orders(t1), "c-2")
    ok = await ledger1.reserve(
        step(batch1), t1, {bid1: 4_000_000}, CAP, True, (record(t1, 3),), before={bid1: 0}
    )
    assert ok.ok and await read_total(rc, keys(0)) == CAP
    # a release is the account's step alone
    pipe = rc.pipeline(transaction=False)
    ledger0.queue_reserve(pipe, t0, {bid0: 0}, NO_CAP)
    (reply,) = await pipe.execute()
    assert ledger0.answered({bid0: 0}, reply).ok
    assert await read_total(rc, keys(0)) == 4_000_000


async def test_many_concurrent_reservations_of_both_shards_never_pass_the_cap(
    rc: aioredis.Redis,
) -> None:
    executors = [await executor(rc, s) for s in range(SHARDS)]
    tickers = {s: [ticker_of_shard(s, n) for n in range(16)] for s in range(SHARDS)}
    for s, ts in tickers.items():
        for t in ts:
            await open_market(rc, keys(s), t)

    async def reserve(shard: int, t: str) -> bool:
        _, ledger, batch = executors[shard]
        values = {field("bid", t): 1_000_000}
        answer = await ledger.reserve(
            step(batch), t, values, CAP, True, (record(t, 0),), before={field("bid", t): 0}
        )
        return answer.ok

    results = await asyncio.gather(*(reserve(s, t) for s, ts in tickers.items() for t in ts))
    assert sum(results) == 10
    assert await read_total(rc, keys(0)) == CAP
    recorded = 0
    for s, ts in tickers.items():
        for t in ts:
            recorded += await rc.hlen(keys(s).orders(t))
    assert recorded == 10  # a pending record for each reservation that passed, no other


async def test_a_fenced_shard_step_sets_the_reservation_back(rc: aioredis.Redis) -> None:
    """The lease was taken over (this executor paused past its TTL): the account's step
    passed, the shard's refuses; the reservation is set back and nothing is recorded."""
    t = ticker_of_shard(0)
    lease, ledger, batch = await executor(rc, 0)
    await open_market(rc, keys(0), t)
    bid = field("bid", t)
    assert (await ledger.reserve(step(batch), t, {bid: 2_000_000}, CAP, before={bid: 0})).ok
    await rc.set(lease.key, f"{lease.token + 5}:another", px=5_000)
    answer = await ledger.reserve(
        step(batch), t, {bid: 5_000_000}, CAP, True, (record(t, 1),), before={bid: 2_000_000}
    )
    assert answer.outcome == "fenced" and "another" in answer.detail
    assert await read_total(rc, keys(0)) == 2_000_000
    assert not await rc.hget(keys(0).orders(t), "c-1")
    assert ledger.written[bid] == 2_000_000


async def test_a_stale_book_sets_the_reservation_and_the_event_back(rc: aioredis.Redis) -> None:
    t = ticker_of_shard(1)
    _, ledger, batch = await executor(rc, 1)
    await open_market(rc, keys(1), t, stale=True)
    bid = field("bid", t)
    event = EventPart("KXE", True, {"b": 3_000_000}, limit=CAP, before={"b": 0})
    answer = await ledger.reserve(
        step(batch), t, {bid: 3_000_000}, CAP, True, (record(t, 1),), event, before={bid: 0}
    )
    assert answer.outcome == "guard" and answer.detail == "book_stale"
    assert await read_total(rc, keys(1)) == 0
    assert await read_event_worst(rc, keys(1), "KXE") == 0
    assert not await rc.hlen(keys(1).orders(t))


async def test_rebuild_and_the_lease_on_the_cluster(rc: aioredis.Redis) -> None:
    t0, t1 = ticker_of_shard(0), ticker_of_shard(1)
    lease0, ledger0, _ = await executor(rc, 0)
    _, ledger1, _ = await executor(rc, 1)
    assert await lease0.renew()  # the lease and its fence in one slot: one script
    await ledger1.rebuild(lambda t: shard_of(t, SHARDS) == 1, {field("ask", t1): 1_000_000})
    answer = await ledger0.rebuild(
        lambda t: shard_of(t, SHARDS) == 0,
        {field("pos", t0): 2_000_000},
        {t0: EventPart("KXE", False, {"py": 2_000_000})},
    )
    assert answer.ok and answer.total == 3_000_000
    raw = await rc.hget(keys(0).ledger, f"em:KXE|{t0}")
    assert raw and orjson.loads(raw)["py"][0] == 2_000_000
    assert await read_event_worst(rc, keys(0), "KXE") == 2_000_000
    await rc.set(lease0.key, "999:another", px=5_000)
    fenced = await ledger0.rebuild(lambda t: shard_of(t, SHARDS) == 0, {})
    assert fenced.outcome == "fenced"
    assert await read_total(rc, keys(0)) == 3_000_000
