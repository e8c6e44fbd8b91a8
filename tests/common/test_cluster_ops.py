"""The multi-key writes and reads that cluster mode changed, on a real local Redis Cluster
(three masters, one replica each): each failed on a cluster before (CROSSSLOT, a pipeline
refusing MGET/ECHO, a watched EXISTS never run, no ``explicit_transaction``)."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import redis.asyncio as aioredis

from cli.redis_cluster import LocalCluster
from common.batching import Batcher
from common.control import ControlListener
from common.domain import Fill, RiskState, Side
from common.events import pnl_event
from common.halt import is_halted, record_heard_halt, set_halt
from common.keys import Keys
from common.log import get_logger
from common.messages import ControlCommand
from common.redis_codec import decode_risk
from common.risk_deleted import restore_deleted_risk
from common.stream_read import xread
from common.streams import append
from services.fills.ledger import NotRestored, apply_fill, apply_fills

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed for a local cluster",
)
KEYS = Keys("dora:", cluster=True, shard_count=2, shard_index=0)


def fill(n: int) -> Fill:
    return Fill(f"trade-{n}", "ord-1", "KX-1", Side.BID, 4000, 100, 700, False, 1_000 + n, "c1")


async def test_the_fills_ledger_applies_once_in_one_slot(rc: aioredis.Redis) -> None:
    with pytest.raises(NotRestored):  # the watched restore marker is really read
        await apply_fill(rc, KEYS, fill(1))
    await rc.set(KEYS.restored, "{}")
    applied = await apply_fill(rc, KEYS, fill(1))
    assert applied is not None and applied.position.position == 100
    assert await apply_fill(rc, KEYS, fill(1)) is None
    assert await rc.xlen(KEYS.stream("fills")) == 1


async def test_a_batch_of_fills_of_several_markets_applies_once_in_one_slot(
    rc: aioredis.Redis,
) -> None:
    """``apply_fills``: one scripted read and one MULTI over every market of the batch."""
    await rc.set(KEYS.restored, "{}")
    other = Fill("trade-b", "ord-2", "KX-2", Side.ASK, 6000, 200, 0, False, 1_500, "c2")
    applied = await apply_fills(rc, KEYS, [fill(10), other, fill(10), fill(11)])
    assert [a.position.position if a else None for a in applied] == [100, -200, None, 200]
    assert await apply_fills(rc, KEYS, [other]) == [None]
    assert await rc.xlen(KEYS.stream("fills")) == 3


async def test_a_halt_is_recorded_with_its_event_in_one_transaction(rc: aioredis.Redis) -> None:
    assert await record_heard_halt(rc, KEYS, "heard", 5)
    await set_halt(rc, KEYS, "operator", 10, "test")
    assert await is_halted(rc, KEYS) == (True, "operator")
    assert await rc.xlen(KEYS.stream("pnl")) == 2


async def test_a_corrupted_or_deleted_risk_key_is_written_again_in_one_slot(
    rc: aioredis.Redis,
) -> None:
    """The scripts that write dora:risk again from the pnl stream's record, on a cluster."""
    day = RiskState(day="2026-12-06", daily_pnl=-9, day_start_pnl=40)
    await append(rc, KEYS, "pnl", "pnl", pnl_event(day, 20))
    await rc.set(KEYS.risk, "x")
    halted = await set_halt(rc, KEYS, "operator", 30, "test")
    assert halted.replaced is not None and halted.replaced.record is not None
    assert decode_risk(await rc.hgetall(KEYS.risk)).day_start_pnl == 40
    await rc.delete(KEYS.risk)
    await rc.set(KEYS.restored, "{}")
    assert await restore_deleted_risk(rc, KEYS, 40, "test") is not None
    state = decode_risk(await rc.hgetall(KEYS.risk))
    assert (state.halted, state.reason, state.day_start_pnl) == (True, "operator", 40)


async def test_a_read_across_slots_gets_every_streams_entries(rc: aioredis.Redis) -> None:
    ids = {KEYS.stream("md"): "0-0", KEYS.stream("fills"): "0-0"}
    assert await xread(rc, ids, count=10, block=50, cluster=True) == []
    ticker = next(
        t for t in (f"KX-{i}" for i in range(20)) if KEYS.stream("md", t) == KEYS.stream("md")
    )
    await append(rc, KEYS, "md", "book", {"ticker": ticker})
    await append(rc, KEYS, "fills", "fill", {"ticker": ticker})
    got = await xread(rc, ids, count=10, block=50, cluster=True)
    assert sorted(name for name, _ in got) == sorted(ids)


async def test_the_batcher_queues_on_a_cluster_pipeline(rc: aioredis.Redis) -> None:
    await rc.set(KEYS.restored, "r")
    batch = Batcher(rc)
    a, b = await asyncio.gather(
        batch.execute(lambda p: (p.get(KEYS.restored), p.get(KEYS.positions_synced))),
        batch.execute(lambda p: p.hgetall(KEYS.book("KX-1"))),
    )
    assert a == ["r", None] and b == [{}]


async def test_a_publish_on_any_node_reaches_a_listener(
    rc: aioredis.Redis, cluster: LocalCluster
) -> None:
    heard: list[str] = []
    listener = ControlListener(rc, KEYS, get_logger("test"), lambda c: _note(heard, c))
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.subscribed.wait(), 5)
    node = aioredis.Redis(port=cluster.ports[-1])  # a replica, not the listener's node
    await node.publish(KEYS.control, "halt")
    await node.aclose()
    for _ in range(50):
        if heard:
            break
        await asyncio.sleep(0.1)
    await listener.close(task)
    assert heard == ["halt"]


async def _note(heard: list[str], command: ControlCommand) -> None:
    heard.append(command.cmd)
