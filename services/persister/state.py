"""Redis -> ``{prefix}state``: risk_state (with the halt).

The risk state (``dora:risk`` plus the last fill time) is written whenever it differs from what
was last written: at once on a ``risk`` event (a halt is durable before the event is
acknowledged), and on every pass otherwise (every ~2 s).

Not a key without its trading day that holds no halt: the risk process writes the day at every
check, so such a key is someone else's write before its first check (a resume on a fresh install)
or after a ``DEL`` by hand (the exchange watch's ``events``; the risk process writes the key again
from its record). Stored, it replaced the whole state: a data loss then restored no halt and an
empty day (taken as a first day: the day's earlier losses no longer counted). A halt is stored
with or without a day: it must be durable.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.domain import RiskState
from common.dynamo.state_store import StateStore
from common.errors import SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.redis_codec import decode_risk


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
        if risk is None or (risk, last_fill_ms) == self.risk or not (risk.day or risk.halted):
            return 0
        await asyncio.to_thread(self.store.put_risk, risk, last_fill_ms, now_ms)
        if self.risk is None or self.risk[0].halted != risk.halted:
            self.log.info("risk_state_stored", halted=risk.halted, reason=risk.reason)
        self.risk = (risk, last_fill_ms)
        return 1
