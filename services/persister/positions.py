"""Positions into ``{prefix}state``: one item per market, written only when it changed.

The fills stream carries each market's whole ``PositionRecord`` with every change (fill,
settlement, a position set from the exchange), so a batch knows exactly which markets changed
and their newest record: those items, and only those, are written (several at a time), each
replaced only by a newer version. The items and the trade log come from the same stream entries,
so what DynamoDB holds never counts a fill the trade log lacks.

An item DynamoDB refuses (too large, a validation error) is **parked**: logged, alerted, listed
in ``dora:persister:parked`` and dropped from the batch, which is then acknowledged. One bad item
never holds up the halt, the trade log or any other market (the batch is not retried forever).
A later change of the same market is tried again and, once stored, unparks it.

The backfill cursor (``cursor`` events) is stored after the records before it, and settled
markets' tombstones are removed once the cursor has passed them far enough that no fill of
theirs can be listed again.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis
from botocore.exceptions import ClientError

from common.alerts import Alerter
from common.dynamo.position_store import PositionStore, position_key
from common.dynamo.tables import describe, error_code
from common.errors import StorageError
from common.keys import Keys
from common.log import EventLogger
from common.position_record import RECENT_MARGIN_MS, PositionRecord

WRITERS = 8  # items written at once (boto3 clients are thread-safe)
REFUSED = ("ValidationException", "ItemCollectionSizeLimitExceededException")


class PositionWriter:
    def __init__(
        self,
        store: PositionStore,
        keys: Keys,
        log: EventLogger,
        alerter: Alerter,
        *,
        workers: int = WRITERS,
    ) -> None:
        self.store = store
        self.keys = keys
        self.log = log
        self.alerter = alerter
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="positions")
        self.parked: dict[str, str] = {}  # item key -> why DynamoDB refused it
        self.tombstones: dict[str, PositionRecord] = {}  # settled markets not yet removed
        self.written = 0

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def write(
        self, redis: aioredis.Redis, records: dict[str, PositionRecord], now_ms: int
    ) -> int:
        """Store every record; returns how many were stored (a newer stored version, or a
        parked item, is not). A DynamoDB failure other than a refusal propagates."""
        loop = asyncio.get_running_loop()
        ordered = sorted(records.values(), key=lambda r: r.ticker)
        results = await asyncio.gather(
            *(loop.run_in_executor(self.pool, self._put, r, now_ms) for r in ordered)
        )
        stored = 0
        for record, outcome in zip(ordered, results, strict=True):
            key = position_key(record.ticker)
            if isinstance(outcome, str):
                await self._park(redis, key, outcome)
                continue
            if key in self.parked:
                self.parked.pop(key)
                await redis.hdel(self.keys.persister_parked, key)
                self.log.info("state_item_unparked", key=key)
            if record.settled_ms:
                self.tombstones[record.ticker] = record
            stored += int(outcome)
        self.written += stored
        return stored

    def _put(self, record: PositionRecord, now_ms: int) -> bool | str:
        """True stored, False a newer one is stored, or why DynamoDB refused the item."""
        try:
            return self.store.put(record, now_ms)
        except ClientError as exc:
            if error_code(exc) in REFUSED:
                return describe(exc)
            raise
        except StorageError as exc:  # does not serialize: the same as a refusal
            return str(exc)

    async def _park(self, redis: aioredis.Redis, key: str, reason: str) -> None:
        first = key not in self.parked
        self.parked[key] = reason
        await redis.hset(self.keys.persister_parked, key, reason[:500])
        if first:
            self.log.error("state_item_parked", key=key, reason=reason)
            await self.alerter.alert(
                "state_item_parked",
                f"{key} not stored",
                f"DynamoDB refused the state item {key}: {reason}. The persister goes on without "
                "it; a restore would miss it until it is stored (dora-redis-cli hgetall "
                f"{self.keys.persister_parked}).",
            )

    async def write_cursor(self, cursor: tuple[int, int], now_ms: int) -> None:
        """Store the backfill cursor, then remove the tombstones it has passed."""
        backfilled_to, settled_to = cursor
        await asyncio.to_thread(self.store.put_cursor, backfilled_to, settled_to, now_ms)
        passed = min(backfilled_to, settled_to) - RECENT_MARGIN_MS
        for ticker, record in list(self.tombstones.items()):
            newest = max([record.settled_ms, *(ms for _, ms in record.recent_fills)])
            if newest < passed:
                await asyncio.to_thread(self.store.delete_tombstone, record)
                self.tombstones.pop(ticker, None)
