"""Putting the persisted state back into an empty Redis, before anyone trades.

Runs when ``dora:restored`` is missing (a fresh Redis, one restarted without its data, or one
flushed while running): the config mirror first; the original plan's single ``positions`` item
migrated to one item per market if it is still there; then every live market's record into
``dora:pos:{t}`` (only into hashes that do not exist), the ids of the fills those records count
into ``dora:fills:seen`` (so the backfill applies none of them twice), the backfill cursor, the
risk state with the halt (a halt in DynamoDB always wins: it is lifted only by ``dora resume``),
and the last fill time (only forward). The marker says whether a risk state came back
(``risk_restored``): a ``dora:risk`` deleted later is then never taken for a fresh install. ``dora:restored`` is set last, so a crash half-way simply
restores again. Settled markets' records (tombstones) are not put back, but their fill and
settlement ids are.
"""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio as aioredis

from common.clock import Clock, iso_from_ms
from common.dynamo import Dynamo
from common.keys import Keys
from common.log import EventLogger
from common.position_record import PositionRecord
from common.redis_codec import encode_risk
from services.persister.mirror import ConfigMirror

SEEN_CHUNK = 5_000  # ids per SADD


async def restore_state(
    redis: aioredis.Redis,
    keys: Keys,
    db: Dynamo,
    mirror: ConfigMirror,
    log: EventLogger,
    clock: Clock,
) -> tuple[dict[str, object], list[PositionRecord]]:
    """Restore and mark; returns what was done and the settled markets' records (tombstones).
    DynamoDB errors propagate (nothing is marked)."""
    mirror.loaded = False  # Redis may have been emptied: start from what it holds now
    await mirror.run_once(redis)
    migrated = await asyncio.to_thread(db.positions.migrate_legacy, clock.now_ms())
    if migrated:
        log.warning("positions_item_migrated", markets=migrated)
    records = await asyncio.to_thread(db.positions.get_all)
    cursor = await asyncio.to_thread(db.positions.get_cursor)
    stored_risk = await asyncio.to_thread(db.state.get_risk)
    live = sorted((r for r in records if not r.settled_ms), key=lambda r: r.ticker)
    tombstones = [r for r in records if r.settled_ms]

    pipe = redis.pipeline(transaction=False)
    for record in live:
        pipe.exists(keys.pos(record.ticker))
    pipe.hgetall(keys.risk)
    pipe.hgetall(keys.fills_meta)
    *exists, risk_fields, meta = await pipe.execute()

    pipe = redis.pipeline(transaction=True)
    restored_positions = 0
    for record, present in zip(live, exists, strict=True):
        if not present:
            pipe.hset(keys.pos(record.ticker), mapping=record.redis_fields())  # type: ignore[arg-type]
            restored_positions += 1
    seen = [fill_id for record in records for fill_id in record.fill_ids]
    for start in range(0, len(seen), SEEN_CHUNK):
        pipe.sadd(keys.fill_ids, *seen[start : start + SEEN_CHUNK])
    halted = False
    if stored_risk is not None:
        risk = stored_risk.risk
        halted = risk.halted
        # Each stored field Redis does not hold now. What a process wrote after the loss is
        # fresher and stays; one field of its own (the risk process's exchange check writes
        # ``events``) must not keep the rest out: a key without its trading day reads as one
        # deleted by hand, a halt (common.risk_deleted). HSETNX: nothing written since is lost.
        for name, value in encode_risk(risk).items():
            pipe.hsetnx(keys.risk, name, value)
        if risk.halted and risk_fields.get("halted") != "1":
            # the halt wins: no resume after it (resumed_ms 0)
            halt = {"halted": "1", "reason": risk.reason, "halted_ms": str(risk.halted_ms)}
            pipe.hset(keys.risk, mapping={**halt, "resumed_ms": "0"})
    fills_meta = _fills_meta(meta, live, cursor)
    if fills_meta:
        pipe.hset(keys.fills_meta, mapping=fills_meta)
    now_ms = clock.now_ms()
    summary: dict[str, object] = {
        "ts_ms": now_ms,
        "at": iso_from_ms(now_ms),
        "positions": restored_positions,
        "fill_ids": len(seen),
        "settled_markets": len(tombstones),
        "halted": halted,
        "risk_restored": stored_risk is not None,  # not a fresh install (common.risk_deleted)
        "backfilled_to_ms": int(fills_meta.get("backfilled_to_ms", 0)),
        "last_fill_ms": int(fills_meta.get("last_fill_ms") or meta.get("last_fill_ms") or 0),
    }
    pipe.set(keys.restored, orjson.dumps(summary).decode())
    await pipe.execute()
    log.info("state_restored", **summary)
    return summary, tombstones


def _fills_meta(
    meta: dict[str, str], live: list[PositionRecord], cursor: tuple[int, int] | None
) -> dict[str, str]:
    """The fills meta fields to move forward: the last fill time (from the stored positions
    only: the risk state's may count fills not stored yet) and the backfill cursor."""

    def current(name: str) -> int:
        try:
            return int(meta.get(name) or 0)
        except ValueError:
            return 0

    out: dict[str, str] = {}
    last_fill = max([0, *(r.position.last_fill_ms for r in live)])
    if last_fill > current("last_fill_ms"):
        out["last_fill_ms"] = str(last_fill)
    if cursor is not None:
        backfilled_to, settled_to = cursor
        if backfilled_to > current("backfilled_to_ms"):
            out["backfilled_to_ms"] = str(backfilled_to)
        if settled_to > current("settled_to_ms"):
            out["settled_to_ms"] = str(settled_to)
    return out
