"""The persister's side of the streams: a consumer group, batches, acknowledgement after storage.

Consumer group ``persister`` on the order, fill, decision and PnL streams (created at id 0, so
nothing written before the first start is missed). Each pass takes either the batch that could
not be stored yet (kept until DynamoDB takes it), or entries idle for ``claim_idle_ms`` in another
consumer's pending list (a persister that died: XAUTOCLAIM), or new entries (XREADGROUP, blocking
at most ``block_ms``). Entries are acknowledged only after DynamoDB accepted every row they
became; a malformed entry is logged and acknowledged (it can never be stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.domain import RiskState
from common.dynamo.rows import (
    RowError,
    decision_row,
    fill_row,
    order_row,
    position_row,
    settlement_row,
)
from common.dynamo.tables import TableNames
from common.errors import SchemaError
from common.events import risk_from_event
from common.keys import Keys
from common.log import EventLogger
from common.messages import decode_event
from common.position_record import CLOSED_TICKER, PositionRecord
from common.stream_read import xreadgroup
from common.streams import PERSISTED_STREAMS, PERSISTER_GROUP

CONSUMER_IDLE_DELETE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Entry:
    stream: str  # short name: orders, fills, decisions, pnl
    id: str
    fields: Mapping[str, Any]
    key: str = ""  # the stream's key when not the plain one (a cluster shard's)


@dataclass(frozen=True, slots=True)
class DayClosed:
    """A ``day_closed`` event: the day's last snapshot and the totals it ran between."""

    risk: RiskState
    closed_ms: int
    start_total: int
    end_total: int


@dataclass
class Batch:
    entries: list[Entry]
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    snapshots: dict[str, tuple[RiskState, int]] = field(default_factory=dict)  # day -> latest
    closed_days: list[DayClosed] = field(default_factory=list)  # days that rolled
    risk: RiskState | None = None  # the latest pnl/risk event
    halt_event: bool = False  # a ``risk`` event or a halted snapshot: store risk_state first
    records: dict[str, PositionRecord] = field(default_factory=dict)  # ticker -> newest
    cursor: tuple[int, int] | None = None  # the backfill's (backfilled_to_ms, settled_to_ms)
    fills: int = 0
    bad: int = 0

    def take_record(self, ticker: str, data: object) -> None:
        """Keep the newest ``PositionRecord`` of each market the batch changed."""
        if not isinstance(data, dict):
            raise SchemaError(f"record of {ticker} must be an object, was {data!r}")
        record = PositionRecord.from_payload(ticker, data)
        kept = self.records.get(ticker)
        if kept is None or kept.version < record.version:
            self.records[ticker] = record


def _whole_ms(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError(f"{name} must be whole milliseconds, was {value!r}")
    return value


class StreamSink:
    def __init__(
        self,
        keys: Keys,
        names: TableNames,
        consumer: str,
        log: EventLogger,
        *,
        ttl_days: int,
        count: int,
        block_ms: int,
        claim_idle_ms: int,
    ) -> None:
        self.keys = keys
        self.names = names
        self.consumer = consumer
        self.log = log
        self.ttl_days = ttl_days
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        # every shard's stream in cluster mode (common/keys.py)
        self.streams = {key: s for s in PERSISTED_STREAMS for key in keys.streams(s)}
        self.inflight: Batch | None = None
        self.claim_cursors: dict[str, str] = {}
        self.next_claim_ms = 0.0

    async def ensure_groups(self, redis: aioredis.Redis) -> None:
        for name in self.streams:
            try:
                await redis.xgroup_create(name, PERSISTER_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def forget_dead_consumers(self, redis: aioredis.Redis) -> None:
        """Remove consumers of earlier persister runs that hold nothing (long idle, 0 pending)."""
        for name in self.streams:
            for consumer in await redis.xinfo_consumers(name, PERSISTER_GROUP):
                if (
                    consumer["name"] != self.consumer
                    and int(consumer.get("pending", 0)) == 0
                    and int(consumer.get("idle", 0)) > CONSUMER_IDLE_DELETE_MS
                ):
                    await redis.xgroup_delconsumer(name, PERSISTER_GROUP, consumer["name"])

    async def fetch(self, redis: aioredis.Redis, now_ms: float) -> list[Entry]:
        """Reclaimed entries of dead consumers when due, else new ones (blocks <= block_ms)."""
        if now_ms >= self.next_claim_ms:
            claimed = await self._claim(redis)
            if all(cursor == "0-0" for cursor in self.claim_cursors.values()):
                self.next_claim_ms = now_ms + self.claim_idle_ms
            if claimed:
                return claimed
        response = await xreadgroup(
            redis,
            PERSISTER_GROUP,
            self.consumer,
            list(self.streams),
            count=self.count,
            block=self.block_ms,
            cluster=self.keys.cluster,
        )
        entries: list[Entry] = []
        for name, messages in response or ():
            key = name.decode() if isinstance(name, bytes) else name
            stream = self.streams[key]
            entries.extend(Entry(stream, str(i), f or {}, key) for i, f in messages)
        return entries

    async def _claim(self, redis: aioredis.Redis) -> list[Entry]:
        entries: list[Entry] = []
        for name, stream in self.streams.items():
            result = await redis.xautoclaim(
                name,
                PERSISTER_GROUP,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=self.claim_cursors.get(name, "0-0"),
                count=self.count,
            )
            self.claim_cursors[name] = str(result[0])
            messages = result[1]
            deleted = result[2] if len(result) > 2 else []
            if deleted:  # only if something trimmed entries nobody had stored
                self.log.error("pending_entries_lost", stream=stream, ids=list(deleted)[:20])
            for entry_id, fields in messages:
                if fields is not None:
                    entries.append(Entry(stream, str(entry_id), fields, name))
            if messages:
                self.log.info("entries_reclaimed", stream=stream, count=len(messages))
        return entries

    def build(self, entries: list[Entry]) -> Batch:
        """Entries -> rows to write and state to store (pure apart from logging)."""
        batch = Batch(entries)
        for entry in entries:
            try:
                kind, payload = decode_event(entry.fields)
                self._add(batch, entry, kind, payload)
            except (SchemaError, RowError) as exc:
                batch.bad += 1
                self.log.error("bad_event", stream=entry.stream, id=entry.id, reason=str(exc)[:300])
        return batch

    def _add(self, batch: Batch, entry: Entry, kind: str, payload: dict[str, Any]) -> None:
        if entry.stream == "orders" and kind == "order":
            batch.rows.append((self.names.trade_log, order_row(payload, entry.id)))
        elif entry.stream == "fills" and kind == "fill":
            row = fill_row(payload, entry.id)
            if "record" in payload:
                batch.take_record(row["market_id"], payload["record"])
            batch.rows.append((self.names.trade_log, row))
            batch.fills += 1
        elif entry.stream == "fills" and kind == "settlement":
            row = settlement_row(payload, entry.id)
            if "record" in payload:
                batch.take_record(row["market_id"], payload["record"])
                batch.take_record(CLOSED_TICKER, payload.get("closed"))
            batch.rows.append((self.names.trade_log, row))
        elif entry.stream == "fills" and kind == "position":
            row = position_row(payload, entry.id)
            batch.take_record(row["market_id"], payload["record"])
            batch.rows.append((self.names.trade_log, row))
        elif entry.stream == "fills" and kind == "cursor":
            cursor = (_whole_ms(payload, "backfilled_to_ms"), _whole_ms(payload, "settled_to_ms"))
            batch.cursor = max(batch.cursor or (0, 0), cursor)
        elif entry.stream == "decisions" and kind == "decision":
            row = decision_row(payload, entry.id, ttl_days=self.ttl_days)
            batch.rows.append((self.names.decision_log, row))
        elif entry.stream == "pnl" and kind in ("pnl", "risk"):
            risk = risk_from_event(payload)
            ts_ms = risk.last_check_ms
            if risk.day:
                latest = batch.snapshots.get(risk.day)
                if latest is None or latest[1] <= ts_ms:
                    batch.snapshots[risk.day] = (risk, ts_ms)
            if batch.risk is None or batch.risk.last_check_ms <= ts_ms:
                batch.risk = risk
            batch.halt_event = batch.halt_event or kind == "risk" or risk.halted
        elif entry.stream == "pnl" and kind == "day_closed":
            batch.closed_days.append(day_closed_from_event(payload))
        else:
            self.log.debug("event_ignored", stream=entry.stream, type=kind, id=entry.id)

    async def ack(self, redis: aioredis.Redis, entries: list[Entry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            key = entry.key or self.keys.stream(entry.stream)
            by_stream.setdefault(key, []).append(entry.id)
        pipe = redis.pipeline(transaction=False)
        for name, ids in by_stream.items():
            pipe.xack(name, PERSISTER_GROUP, *ids)
        await pipe.execute()

    async def lag(self, redis: aioredis.Redis) -> dict[str, dict[str, int]]:
        """Per stream: entries delivered but not acknowledged, and not yet delivered."""
        out: dict[str, dict[str, int]] = {}
        for name, stream in self.streams.items():
            for group in await redis.xinfo_groups(name):
                if group.get("name") == PERSISTER_GROUP:
                    lag = group.get("lag")  # None when Redis cannot tell: -1 here
                    seen = out.get(stream, {"pending": 0, "lag": 0})  # summed over shards
                    out[stream] = {
                        "pending": seen["pending"] + int(group.get("pending") or 0),
                        "lag": -1 if lag is None or seen["lag"] < 0 else seen["lag"] + int(lag),
                    }
        return out


def day_closed_from_event(payload: Mapping[str, Any]) -> DayClosed:
    numbers = {}
    for name in ("closed_ms", "day_start_total", "day_end_total"):
        value = payload.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{name} must be an integer, was {value!r}")
        numbers[name] = value
    return DayClosed(
        risk_from_event(payload),
        numbers["closed_ms"],
        numbers["day_start_total"],
        numbers["day_end_total"],
    )
