"""What must hold before the executor adds risk, beyond the halt and live feeds (issue 19.1, 19.7).

- Redis holds its data: ``dora:restored`` exists, and the positions were checked against the
  exchange since that restore (``dora:positions:synced``, written by fills). After Redis lost
  its data the working orders are written back to Redis and reconciled before quoting resumes.
- The local clock agrees with the exchange's (``common.clock_guard``), measured at start (beyond
  the limit the executor does not start) and every ``clock_check_interval_s``.
- Every position it reads, reads (``Markets.bad_positions``: a ``dora:pos`` of the wrong type or
  with a field that is not a number). One market's unknown position is the account's unknown
  exposure (DESIGN.md §3: when dora cannot know its state, it stops adding risk), so this holds
  every market's adds, not only that market's (whose quotes are pulled besides).

Until all hold, ``reason`` says why and every adding action is denied (cancels still go out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from common.batching import Batcher
from common.clock_guard import ClockGuard
from common.restore import state_gap
from common.runtime import Context
from services.executor.state import Blocked

STATE_CHECK_MS = 250  # every housekeeping round (a fills loss is held within it)


class TradingGate:
    def __init__(
        self,
        ctx: Context,
        batch: Batcher,
        blocked: Blocked,
        clock: ClockGuard | None,
        on_reopen: Callable[[], Awaitable[None]],
        on_open: Callable[[], None],
        unreadable: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.ctx = ctx
        self.batch = batch  # its read shares the passes' round trips
        self.blocked = blocked
        self.clock = clock
        self.on_reopen = on_reopen  # after Redis lost its data: put the working orders back
        self.on_open = on_open  # adding allowed again: look at every market now
        self.unreadable = unreadable  # market -> why its position does not read
        self.data_lost = False
        self.state = blocked.reason  # why the state holds adding back, as last read
        self.next_state_ms = 0.0

    async def check_clock_at_start(self) -> None:
        if self.clock is not None:
            await self.clock.check_at_start()

    async def refresh(self) -> None:
        ctx = self.ctx
        now = ctx.clock.monotonic_ms()
        if now >= self.next_state_ms or self.state:
            # a read each round (the passes' round trip carries it): the fills process clears
            # the synced marker for as little as a heal takes (services/fills/mark.py)
            self.next_state_ms = now + STATE_CHECK_MS
            keys = ctx.keys
            # two GETs, not MGET: a cluster pipeline refuses MGET
            marker, synced = await self.batch.execute(
                lambda pipe: (pipe.get(keys.restored), pipe.get(keys.positions_synced))
            )
            self.state = state_gap(marker, synced)
        state = self.state
        if state.startswith("Redis lost") and not self.data_lost:
            self.data_lost = True
            ctx.log.error("redis_data_lost_not_adding_risk", reason=state)
        clock = await self.clock.check_if_due() if self.clock is not None else ""
        bad = self.unreadable()
        unread = ""
        if bad:
            first = min(bad)
            unread = f"position of {first} unreadable ({len(bad)} in all): {bad[first]}"
        reason = state or clock or unread
        if not state and self.data_lost:
            await self.on_reopen()
            self.data_lost = False
            ctx.log.warning("redis_data_back_positions_synced")
        if reason != self.blocked.reason:
            if reason:
                ctx.log.warning("not_adding_risk", reason=reason)
            self.blocked.reason = reason
            if not reason:
                ctx.log.info("adding_risk_again")
                self.on_open()
