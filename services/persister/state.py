"""Redis -> ``{prefix}state``: risk_state (with the halt).

The risk state (``dora:risk`` plus the last fill time) is written whenever it differs from what
was last written: at once on a ``risk`` event (a halt is durable before the event is
acknowledged), and on every pass otherwise (every ~2 s).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from common.clock import utc_date
from common.domain import RiskState
from common.dynamo.state_store import StateStore
from common.errors import SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.redis_codec import decode_risk

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    """The risk state (``dora:risk`` and the last fill time) into ``risk_state``, whenever it
    differs from what was last written. Positions are written from the fills stream's events
    (``services.persister.positions``), never read back from ``dora:pos:*``."""

    def __init__(self, store: StateStore, keys: Keys, log: EventLogger) -> None:
        self.store = store
        self.keys = keys
        self.log = log
        self.risk: tuple[RiskState, int] | None = None  # as last written

    async def sync(
        self, redis: aioredis.Redis, now_ms: int, *, event_risk: RiskState | None = None
    ) -> int:
        """Write the risk state if it changed; returns how many items were written."""
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.risk)
        pipe.hget(self.keys.fills_meta, "last_fill_ms")
        risk_fields, last_fill_text = await pipe.execute()
        try:
            last_fill_ms = int(last_fill_text or 0)
            risk = decode_risk(risk_fields) if risk_fields else event_risk
        except (ValueError, SchemaError) as exc:
            self.log.error("bad_risk_hash", reason=str(exc))
            risk, last_fill_ms = event_risk, 0
        if risk is None or (risk, last_fill_ms) == self.risk:
            return 0
        await asyncio.to_thread(self.store.put_risk, risk, last_fill_ms, now_ms)
        if self.risk is None or self.risk[0].halted != risk.halted:
            self.log.info("risk_state_stored", halted=risk.halted, reason=risk.reason)
        self.risk = (risk, last_fill_ms)
        return 1
