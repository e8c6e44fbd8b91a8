"""What must hold before the executor adds risk, beyond the halt and live feeds (issue 19.1, 19.7).

- Redis holds its data: ``dora:restored`` exists, and the positions were checked against the
  exchange since that restore (``dora:positions:synced``, written by fills). After Redis lost
  its data the working orders are written back to Redis and reconciled before quoting resumes.
- The local clock agrees with the exchange's (``common.clock_guard``), measured at start (beyond
  the limit the executor does not start) and every ``clock_check_interval_s``.

Until both hold, ``reason`` says why and every adding action is denied (cancels still go out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from common.clock_guard import ClockGuard
from common.restore import trading_state_gap
from common.runtime import Context
from services.executor.state import Blocked

STATE_CHECK_MS = 1_000


class TradingGate:
    def __init__(
        self,
        ctx: Context,
        blocked: Blocked,
        clock: ClockGuard | None,
        on_reopen: Callable[[], Awaitable[None]],
    ) -> None:
        self.ctx = ctx
        self.blocked = blocked
        self.clock = clock
        self.on_reopen = on_reopen  # after Redis lost its data: put the working orders back
        self.data_lost = False
        self.state = blocked.reason  # why the state holds adding back, as last read
        self.next_state_ms = 0.0

    async def check_clock_at_start(self) -> None:
        if self.clock is not None:
            await self.clock.check_at_start()

    async def refresh(self) -> None:
        ctx = self.ctx
        now = ctx.clock.monotonic_ms()
        if now >= self.next_state_ms:  # a read a second: Redis losing its data is rare
            self.next_state_ms = now + STATE_CHECK_MS
            self.state = await trading_state_gap(ctx.redis, ctx.keys)
        state = self.state
        if state.startswith("Redis lost") and not self.data_lost:
            self.data_lost = True
            ctx.log.error("redis_data_lost_not_adding_risk", reason=state)
        clock = await self.clock.check_if_due() if self.clock is not None else ""
        reason = state or clock
        if not state and self.data_lost:
            await self.on_reopen()
            self.data_lost = False
            ctx.log.warning("redis_data_back_positions_synced")
        if reason != self.blocked.reason:
            if reason:
                ctx.log.warning("not_adding_risk", reason=reason)
            else:
                ctx.log.info("adding_risk_again")
            self.blocked.reason = reason
