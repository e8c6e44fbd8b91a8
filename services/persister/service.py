"""The persister process: the only one that talks to DynamoDB (DESIGN.md §1, §4).

Each step, in order:

1. if ``dora:restored`` is missing (Redis empty or flushed), restore the persisted state;
2. about once a second, mirror the config tables into ``dora:cfg:*``;
3. store one batch of stream entries (risk_state first when the halt changed, the trade log and
   decision log, the position item of every market whose record the batch changed, the backfill
   cursor, PnL snapshots) and acknowledge it; an item DynamoDB refuses is parked, never retried
   forever;
4. every ~2 s, store risk_state when it changed;
5. every ~2 s, publish the backlog (``dora:persister:lag`` and the heartbeat status).

When DynamoDB fails (outage, throttling, a missing table) every DynamoDB operation backs off
together, exponentially up to 5 s; the batch in hand stays unacknowledged and nothing new is read,
so the backlog waits in Redis (the streams are never trimmed past it: common/streams.py) and is
drained when DynamoDB answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.exceptions import RedisError, ResponseError

from common.alerts import Alerter
from common.dynamo import Dynamo
from common.dynamo.tables import describe
from common.restore import is_restored
from common.runtime import Context, service_main
from common.settings import Settings
from services.persister.mirror import ConfigMirror
from services.persister.positions import PositionWriter
from services.persister.restore import restore_state
from services.persister.sink import Batch, StreamSink
from services.persister.state import StateSync

MIRROR_INTERVAL_MS = 1_000
STATE_INTERVAL_MS = 2_000
LAG_INTERVAL_MS = 2_000
READ_COUNT = 100
READ_BLOCK_MS = 500
CLAIM_IDLE_MS = 5_000
BACKOFF_BASE_MS = 200
BACKOFF_MAX_MS = 5_000


class Backoff:
    """One shared backoff for everything that calls DynamoDB."""

    def __init__(self, base_ms: int = BACKOFF_BASE_MS, max_ms: int = BACKOFF_MAX_MS) -> None:
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.failures = 0
        self.until_ms = 0.0

    def ready(self, now_ms: float) -> bool:
        return now_ms >= self.until_ms

    def remaining_s(self, now_ms: float) -> float:
        return max(0.0, (self.until_ms - now_ms) / 1000)

    def failed(self, now_ms: float) -> float:
        self.failures += 1
        delay_ms = min(self.base_ms * 2 ** min(self.failures - 1, 10), self.max_ms)
        self.until_ms = now_ms + delay_ms
        return float(delay_ms) / 1000

    def succeeded(self) -> int:
        """Resets; returns how many failures came before (0: it was not failing)."""
        failures, self.failures, self.until_ms = self.failures, 0, 0.0
        return failures


class PersisterService:
    name = "persister"

    def __init__(
        self,
        settings: Settings,
        *,
        dynamo: Dynamo | None = None,
        mirror_interval_ms: int = MIRROR_INTERVAL_MS,
        state_interval_ms: int = STATE_INTERVAL_MS,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        read_count: int = READ_COUNT,
        read_block_ms: int = READ_BLOCK_MS,
    ) -> None:
        self.settings = settings
        self.dynamo = dynamo
        self.mirror_interval_ms = mirror_interval_ms
        self.state_interval_ms = state_interval_ms
        self.claim_idle_ms = claim_idle_ms
        self.read_count = read_count
        self.read_block_ms = read_block_ms
        self.backoff = Backoff()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.next_mirror_ms = 0.0
        self.next_state_ms = 0.0
        self.next_lag_ms = 0.0
        self.counters = {
            "rows": 0,
            "acked": 0,
            "bad_events": 0,
            "rejected_rows": 0,
            "positions_written": 0,
        }
        self._sink: StreamSink | None = None
        self._mirror: ConfigMirror | None = None
        self._state: StateSync | None = None
        self._positions: PositionWriter | None = None

    @property
    def db(self) -> Dynamo:
        assert self.dynamo is not None, "start() first"
        return self.dynamo

    @property
    def sink(self) -> StreamSink:
        assert self._sink is not None, "start() first"
        return self._sink

    @property
    def mirror(self) -> ConfigMirror:
        assert self._mirror is not None, "start() first"
        return self._mirror

    @property
    def state(self) -> StateSync:
        assert self._state is not None, "start() first"
        return self._state

    @property
    def positions(self) -> PositionWriter:
        assert self._positions is not None, "start() first"
        return self._positions

    async def start(self, ctx: Context) -> None:
        if self.dynamo is None:
            # few attempts and short timeouts per call: the loop's own backoff does the waiting
            self.dynamo = Dynamo.from_settings(self.settings, max_attempts=2, timeout_s=3.0)
        self._sink = StreamSink(
            ctx.keys,
            self.db.names,
            self.consumer,
            ctx.log,
            ttl_days=self.settings.decision_log_ttl_days,
            count=self.read_count,
            block_ms=self.read_block_ms,
            claim_idle_ms=self.claim_idle_ms,
        )
        self._mirror = ConfigMirror(self.db.config, ctx.keys, ctx.log)
        self._state = StateSync(self.db.state, ctx.keys, ctx.log)
        alerter = Alerter(self.settings, ctx.log, ctx.clock)
        self._positions = PositionWriter(self.db.positions, ctx.keys, ctx.log, alerter)
        await self.sink.ensure_groups(ctx.redis)
        await self.sink.forget_dead_consumers(ctx.redis)
        await self.mirror.load(ctx.redis)
        ctx.status.update({"consumer": self.consumer, "dynamodb": "starting"})
        if not await is_restored(ctx.redis, ctx.keys):
            await self._restore(ctx)  # DynamoDB unreachable: start fails and is retried
        ctx.status["dynamodb"] = "ok"

    async def _restore(self, ctx: Context) -> None:
        await self.sink.ensure_groups(ctx.redis)  # before the marker: producers rely on it
        _, tombstones = await restore_state(
            ctx.redis, ctx.keys, self.db, self.mirror, ctx.log, ctx.clock
        )
        self.positions.tombstones.update({r.ticker: r for r in tombstones})
        self.state.risk = None  # compare against the restored state afresh

    async def step(self, ctx: Context) -> None:
        if not await is_restored(ctx.redis, ctx.keys):
            ctx.log.warning("redis_not_restored_restoring")
            await self._restore(ctx)
        now = ctx.clock.monotonic_ms()
        if now >= self.next_mirror_ms and self.backoff.ready(now):
            self.next_mirror_ms = now + self.mirror_interval_ms
            if await self._dynamo(ctx, "mirror", lambda: self.mirror.run_once(ctx.redis)):
                ctx.status["invalid_configs"] = len(self.mirror.invalid)
        await self._store_batch(ctx)
        now = ctx.clock.monotonic_ms()
        if now >= self.next_state_ms and self.backoff.ready(now):
            self.next_state_ms = now + self.state_interval_ms
            await self._dynamo(ctx, "state", lambda: self.state.sync(ctx.redis, ctx.clock.now_ms()))
        if now >= self.next_lag_ms:
            self.next_lag_ms = now + LAG_INTERVAL_MS
            await self.publish_lag(ctx)

    async def _dynamo(self, ctx: Context, what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """Run a DynamoDB operation under the shared backoff; False when it failed."""
        try:
            await call()
        except asyncio.CancelledError:
            raise
        except RedisError:
            raise  # a Redis problem, not DynamoDB's: the runtime logs and backs off
        except Exception as exc:
            delay_s = self.backoff.failed(ctx.clock.monotonic_ms())
            ctx.status["dynamodb"] = "failing"
            if self.backoff.failures == 1 or self.backoff.failures % 10 == 0:
                ctx.log.warning(
                    "dynamodb_failed",
                    action=what,
                    error=describe(exc),
                    failures=self.backoff.failures,
                    retry_s=delay_s,
                )
            return False
        failures = self.backoff.succeeded()
        if failures:
            ctx.log.info("dynamodb_recovered", action=what, failures=failures)
        ctx.status["dynamodb"] = "ok"
        return True

    async def _store_batch(self, ctx: Context) -> None:
        now = ctx.clock.monotonic_ms()
        if not self.backoff.ready(now):
            with contextlib.suppress(TimeoutError):  # keep the step short: SIGTERM is seen
                await asyncio.wait_for(ctx.stopping.wait(), min(self.backoff.remaining_s(now), 0.5))
            return
        batch = self.sink.inflight
        if batch is None:
            try:
                entries = await self.sink.fetch(ctx.redis, now)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ctx.log.warning("consumer_group_missing_recreating")
                await self.sink.ensure_groups(ctx.redis)
                return
            if not entries:
                return
            batch = self.sink.build(entries)
            self.counters["bad_events"] += batch.bad
        self.sink.inflight = batch  # until acknowledged
        if await self._dynamo(ctx, "batch", lambda: self._write(ctx, batch)):
            await self.sink.ack(ctx.redis, batch.entries)
            self.sink.inflight = None
            self.counters["acked"] += len(batch.entries)

    async def _write(self, ctx: Context, batch: Batch) -> None:
        if batch.halt_event:  # the halt is durable before its event is acknowledged
            await self.state.sync(ctx.redis, ctx.clock.now_ms(), event_risk=batch.risk)
        if batch.rows:
            report = await asyncio.to_thread(self.db.logs.write, batch.rows)
            self.counters["rows"] += report.written
            for table, item, reason in report.rejected:
                self.counters["rejected_rows"] += 1
                ctx.log.error("row_rejected", table=table, key=_key_text(item), reason=reason)
        if batch.records:
            written = await self.positions.write(ctx.redis, batch.records, ctx.clock.now_ms())
            self.counters["positions_written"] += written
        if batch.cursor is not None:
            await self.positions.write_cursor(batch.cursor, ctx.clock.now_ms())
        for risk, ts_ms in batch.snapshots.values():
            await asyncio.to_thread(self.db.state.put_pnl_snapshot, risk, ts_ms)
        for closed in batch.closed_days:
            await asyncio.to_thread(
                self.db.state.put_day_closed,
                closed.risk,
                closed.risk.last_check_ms,
                closed.closed_ms,
                closed.start_total,
                closed.end_total,
            )
        if batch.risk is not None and not batch.halt_event:
            await self.state.sync(ctx.redis, ctx.clock.now_ms(), event_risk=batch.risk)

    async def publish_lag(self, ctx: Context) -> None:
        lag = await self.sink.lag(ctx.redis)
        backlog = sum(v["pending"] + max(v["lag"], 0) for v in lag.values())
        ctx.status.update({"backlog": backlog, "lag": lag, **self.counters})
        ctx.status["parked"] = len(self.positions.parked)
        value = {"ts_ms": ctx.clock.now_ms(), "backlog": backlog, "streams": lag}
        await ctx.redis.set(ctx.keys.persister_lag, orjson.dumps(value).decode())

    async def stop(self, ctx: Context) -> None:
        """Store the latest risk state once more when DynamoDB is answering."""
        if self._positions is not None:
            self._positions.close()
        if self._state is None or not self.backoff.ready(ctx.clock.monotonic_ms()):
            return
        with contextlib.suppress(Exception):
            if await is_restored(ctx.redis, ctx.keys):
                await asyncio.wait_for(self.state.sync(ctx.redis, ctx.clock.now_ms()), 5)


def _key_text(item: dict[str, Any]) -> str:
    parts = [str(next(iter(item[k].values()))) for k in ("date", "sk", "timestamp") if k in item]
    return "/".join(parts)


def main() -> int:
    return service_main(PersisterService, cold=True)
