"""The risk process's watch over the exchange: positions compared, a silent executor's orders
cancelled. It runs beside the PnL check, never in it: a slow exchange must not make the risk
state old (the executor stops adding risk when it is).

- positions in Redis against the exchange's, every ``RECONCILE_EVERY_MS``: the same difference in
  a market at three comparisons in a row halts with its reason (one comparison's difference can be
  a fill still in flight; in a busy market a different fill can be in flight every time, so a
  changing difference is not one that persists, while a lost fill leaves the same offset however
  many fills follow it); dora's side of a market that differs is read again after the
  exchange's answer (only the fills' posting lag is compared, never the age of the check's
  snapshot); positions that could not be read are left out, not called a mismatch;
- heartbeats: an executor silent for ``executor_silence_ms`` gets dora's orders cancelled
  directly at the exchange (those whose client order id carries dora's check: a silent executor
  is no kill switch, and an order placed by hand stays, DESIGN.md §5); while halted (the kill
  switch) any order still resting is cancelled, whoever placed it.

What goes wrong is returned as a problem of the check: an error of ours at once, the exchange
unreachable once it has been for ``MISMATCH_CHECKS_TO_HALT`` comparisons in a row.
"""

from __future__ import annotations

import asyncio
import contextlib

from common.domain import Position, is_own_client_order_id
from common.halt import set_halt
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.wire.listing import Skipped
from common.kalshi.wire.orders import OrderRef
from common.numbers import format_count
from common.runtime import Context
from common.sharding import executor_names
from services.risk.limits import ExchangeLimits

# A difference must persist this many comparisons: fills and settlements missed by the WebSocket
# are found by the fills process's REST backfill every 5 s.
MISMATCH_CHECKS_TO_HALT = 3
RECONCILE_EVERY_MS = 5_000


class ExchangeWatch:
    def __init__(
        self, client: KalshiClient, started_ms: int, limits: ExchangeLimits | None = None
    ) -> None:
        self.client = client
        self.limits = limits
        self.started_ms = started_ms
        self.mismatches: dict[str, tuple[int, int]] = {}  # ticker -> (theirs - ours, checks)
        self.last_reconcile_ms = -float(RECONCILE_EVERY_MS)  # monotonic
        self.unreachable = 0  # comparisons in a row the exchange did not answer
        self.executor_seen = False  # its heartbeat seen since this process started
        self.executor_down_cancelled = False
        self.emergency_cancels = 0

    async def run(
        self, ctx: Context, positions: list[Position], unreadable: set[str], halted: bool
    ) -> list[str]:
        """One round: the executor's heartbeat always, positions when due; the problems."""
        problems: list[str] = []
        parts = [
            ("executor watch", self._watch_executor(ctx, halted)),
            ("positions reconcile", self._reconcile_if_due(ctx, positions, unreadable, halted)),
        ]
        if self.limits is not None:
            parts.append(("limits at the exchange", self.limits.check(ctx, halted)))
        for part, coro in parts:
            try:
                problem = await coro
            except Exception as exc:  # one part failing never skips the other
                ctx.log.exception("risk_part_failed", part=part)
                problem = f"{part} failed: {type(exc).__name__}: {exc}"
            if problem:
                problems.append(problem)
        return problems

    async def _reconcile_if_due(
        self, ctx: Context, positions: list[Position], unreadable: set[str], halted: bool
    ) -> str:
        now = ctx.clock.monotonic_ms()
        if now - self.last_reconcile_ms < RECONCILE_EVERY_MS:
            return ""
        self.last_reconcile_ms = now
        skipped: list[Skipped] = []  # a position that does not parse: not known, not compared
        try:
            exchange = await self.client.get_positions(skipped=skipped)
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning("exchange_positions_failed", error=str(exc))
            self.unreachable += 1
            if self.unreachable >= MISMATCH_CHECKS_TO_HALT:
                return f"positions not compared with the exchange {self.unreachable} times: {exc}"
            return ""
        self.unreachable = 0
        unknown = unreadable | {s.key for s in skipped}
        theirs = {p.ticker: p.position for p in exchange if p.ticker not in unknown}
        ours = {p.ticker: p.position for p in positions if p.ticker not in unknown}
        differing = [t for t in ours.keys() | theirs.keys() if ours.get(t, 0) != theirs.get(t, 0)]
        ours.update(await self._ours_now(ctx, differing))
        await self._compare(ctx, ours, theirs, halted)
        return ""

    async def _ours_now(self, ctx: Context, tickers: list[str]) -> dict[str, int]:
        """dora's positions in ``tickers`` as Redis holds them now, after the exchange's were
        read. The check's snapshot can be seconds older than the exchange's answer (a loaded
        box, 500 markets of pages): every fill posted in between would look like one in flight,
        and in a market filled every few seconds the same one-fill offset at three comparisons
        in a row halted a healthy bot. Read again, only the fills' posting lag remains. A
        position that does not read keeps the snapshot's figure."""
        if not tickers:
            return {}
        pipe = ctx.redis.pipeline(transaction=False)
        for ticker in tickers:
            pipe.hget(ctx.keys.pos(ticker), "position")
        now: dict[str, int] = {}
        for ticker, value in zip(tickers, await pipe.execute(raise_on_error=False), strict=True):
            if value is None:
                now[ticker] = 0
            elif not isinstance(value, Exception):
                with contextlib.suppress(ValueError):
                    now[ticker] = int(value)
        return now

    async def _compare(
        self, ctx: Context, ours: dict[str, int], theirs: dict[str, int], halted: bool
    ) -> None:
        differing = {t for t in ours.keys() | theirs.keys() if ours.get(t, 0) != theirs.get(t, 0)}
        mismatches = {}
        for t in differing:
            offset = theirs.get(t, 0) - ours.get(t, 0)
            before, seen = self.mismatches.get(t, (0, 0))
            mismatches[t] = (offset, seen + 1 if offset == before else 1)
        self.mismatches = mismatches
        persistent = sorted(
            t for t, (_, n) in self.mismatches.items() if n >= MISMATCH_CHECKS_TO_HALT
        )
        if persistent and not halted:
            t = persistent[0]
            await halt(
                ctx,
                f"position mismatch in {t}: dora {format_count(ours.get(t, 0))}, "
                f"exchange {format_count(theirs.get(t, 0))}"
                + (f" (+{len(persistent) - 1} more)" if len(persistent) > 1 else ""),
            )
        elif differing:
            ctx.log.warning("position_difference", markets=sorted(differing)[:10])

    async def _watch_executor(self, ctx: Context, halted: bool) -> str:
        """Every shard's executor: one silent leaves its orders unmaintained."""
        names = executor_names(ctx.settings.shard_count)
        alive = await ctx.redis.exists(*(ctx.keys.hb(n) for n in names)) == len(names)
        if alive:
            self.executor_seen = True
            self.executor_down_cancelled = False
            if halted:
                await self.cancel_if_resting(ctx, "orders resting while halted")
            return ""
        if (
            not self.executor_seen
            and ctx.clock.now_ms() - self.started_ms < ctx.settings.executor_silence_ms
        ):
            return ""  # started together: the executor may not have written its first heartbeat
        if not self.executor_down_cancelled:
            await self.emergency_cancel(ctx, "executor silent", own_only=True)
            self.executor_down_cancelled = True
        else:
            await self.cancel_if_resting(ctx, "executor silent", own_only=True)
        return ""

    async def cancel_if_resting(self, ctx: Context, why: str, own_only: bool = False) -> None:
        """Cancel at the exchange when anything rests there: dora's orders alone with
        ``own_only``. One listing, read no further than a cancel needs (an order that does not
        parse otherwise may be dora's and is still seen); dora's are cancelled by the ids it
        gave, not listed again (every check while the executor is silent: the read budget)."""
        skipped: list[Skipped] = []  # no readable id: resting, reached by a cancel-all alone
        try:
            refs = await self.client.get_open_order_refs(skipped=skipped)
        except ExchangeError as exc:
            ctx.log.warning("open_orders_failed", error=str(exc))
            return
        if own_only:
            own = [r for r in refs if is_own_client_order_id(r.client_order_id)]
            if own:
                await self.emergency_cancel(ctx, f"{why}: {len(own)} resting", True, own)
        elif refs or skipped:
            await self.emergency_cancel(ctx, f"{why}: {len(refs) + len(skipped)} resting")

    async def emergency_cancel(
        self, ctx: Context, why: str, own_only: bool = False, refs: list[OrderRef] | None = None
    ) -> None:
        """Cancel every resting order of the subaccount (a kill switch: the halt), or with
        ``own_only`` those dora made (its quotes, left unmaintained): ``refs`` when just
        listed, else all the exchange lists."""
        self.emergency_cancels += 1
        for attempt in range(5):
            try:
                if own_only:
                    await self.client.cancel_own_orders(refs)
                else:
                    await self.client.cancel_all_orders()
                ctx.log.error(
                    "emergency_cancel_own" if own_only else "emergency_cancel_all", reason=why
                )
                return
            except ExchangeError as exc:
                ctx.log.error(
                    "emergency_cancel_failed", reason=why, error=str(exc), attempt=attempt
                )
                await asyncio.sleep(0.2 * 2**attempt)


async def halt(ctx: Context, reason: str) -> None:
    ctx.log.error("halting", reason=reason)
    await set_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms(), "risk")
