"""Redis -> ``{prefix}state``: positions, risk_state (with the halt) and daily PnL snapshots.

Positions (``dora:pos:*``) and the risk state (``dora:risk`` plus the last fill time) are written
whenever they differ from what was last written: after fills, at once on a ``risk`` event (a halt
is durable before the event is acknowledged), and on every pass otherwise (every ~2 s).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from common.clock import utc_date
from common.domain import Position, RiskState
from common.dynamo.state_store import StateStore
from common.errors import SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.redis_codec import decode_position, decode_risk

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024
POSITIONS_WARN_BYTES = 300 * 1024  # ~2,400 markets with a position hash


def risk_from_event(payload: Mapping[str, Any]) -> RiskState:
    """A ``pnl``/``risk`` event payload (common.events.pnl_event) -> RiskState."""

    def whole(name: str) -> int:
        value = payload.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{name} must be an integer, was {value!r}")
        return value

    ts_ms = whole("ts_ms")
    day = payload.get("day") or (utc_date(ts_ms) if ts_ms > 0 else "")
    halted = payload.get("halted", False)
    if not isinstance(halted, bool):
        raise SchemaError(f"halted must be a bool, was {halted!r}")
    if not isinstance(day, str) or not DAY.match(day):
        raise SchemaError(f"day must be YYYY-MM-DD, was {day!r}")
    return RiskState(
        halted=halted,
        reason=str(payload.get("reason") or "")[:500],
        halted_ms=ts_ms if halted else 0,
        daily_pnl=whole("daily_pnl"),
        realized_pnl=whole("realized_pnl"),
        unrealized_pnl=whole("unrealized_pnl"),
        fees=whole("fees"),
        total_exposure=whole("total_exposure"),
        day=day,
        last_check_ms=ts_ms,
    )


class StateSync:
    def __init__(self, store: StateStore, keys: Keys, log: EventLogger) -> None:
        self.store = store
        self.keys = keys
        self.log = log
        self.positions: dict[str, Position] | None = None  # as last written
        self.risk: tuple[RiskState, int] | None = None
        self.positions_bytes = 0  # the positions item's size when last stored (heartbeat)

    async def read_positions(self, redis: aioredis.Redis) -> dict[str, Position]:
        names = [name async for name in redis.scan_iter(match=self.keys.pattern("pos"), count=500)]
        pipe = redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        positions: dict[str, Position] = {}
        for name, fields in zip(names, await pipe.execute(), strict=True):
            ticker = self.keys.ticker_of(name, "pos")
            if not fields:
                continue
            try:
                positions[ticker] = decode_position(ticker, fields)
            except SchemaError as exc:  # keep what was last stored rather than drop it
                self.log.error("bad_position_hash", market=ticker, reason=str(exc))
                if self.positions and ticker in self.positions:
                    positions[ticker] = self.positions[ticker]
        return positions

    async def sync(
        self,
        redis: aioredis.Redis,
        now_ms: int,
        *,
        event_risk: RiskState | None = None,
        positions: bool = True,
    ) -> int:
        """Write what changed (with ``positions=False`` only the risk state: positions are one
        item holding every market, so they are not rewritten on every PnL event); returns how
        many items were written."""
        written = 0
        if positions:
            written += await self._sync_positions(redis, now_ms)
        current = self.positions or {}
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.risk)
        pipe.hget(self.keys.fills_meta, "last_fill_ms")
        risk_fields, last_fill_text = await pipe.execute()
        try:
            last_fill_ms = max(
                [int(last_fill_text or 0), *(p.last_fill_ms for p in current.values())]
            )
            risk = decode_risk(risk_fields) if risk_fields else event_risk
        except (ValueError, SchemaError) as exc:
            self.log.error("bad_risk_hash", reason=str(exc))
            risk, last_fill_ms = event_risk, 0
        if risk is not None and (risk, last_fill_ms) != self.risk:
            await asyncio.to_thread(self.store.put_risk, risk, last_fill_ms, now_ms)
            if self.risk is None or self.risk[0].halted != risk.halted:
                self.log.info("risk_state_stored", halted=risk.halted, reason=risk.reason)
            self.risk = (risk, last_fill_ms)
            written += 1
        return written

    async def _sync_positions(self, redis: aioredis.Redis, now_ms: int) -> int:
        positions = await self.read_positions(redis)
        if positions == self.positions:
            return 0
        dropped = set(self.positions or ()) - set(positions)
        # a Redis emptied under us (restore marker gone) must not wipe the durable positions
        if dropped and not await redis.exists(self.keys.restored):
            self.log.warning("positions_not_written_redis_not_restored", dropped=len(dropped))
            return 0
        size = await asyncio.to_thread(self.store.put_positions, positions, now_ms)
        self.positions = positions
        if size > POSITIONS_WARN_BYTES and self.positions_bytes <= POSITIONS_WARN_BYTES:
            # DynamoDB refuses an item over 400 KB: past it the positions stop being stored
            self.log.error(
                "positions_item_near_limit",
                bytes=size,
                markets=len(positions),
                limit_bytes=DYNAMODB_ITEM_LIMIT_BYTES,
            )
        self.positions_bytes = size
        return 1
