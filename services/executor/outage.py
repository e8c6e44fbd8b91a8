"""Failing closed when Redis does not answer (DESIGN.md §3: "when Redis stops answering, pulls its
quotes at the exchange").

Without Redis the executor knows neither its targets, nor the fills, nor the halt: a quote left
resting is a quote nobody maintains. ``RedisWatch`` asks Redis for a PING every
``PROBE_EVERY_MS`` on a connection of its own (the loop's own reads simply hang on a frozen
server); once no answer has come for ``redis_outage_cancel_s`` the executor goes blind:

- every resting order of the subaccount that dora made is cancelled at the exchange (listed, and
  those whose client order id carries dora's check batch-cancelled: this is not a kill switch,
  and an order placed by hand in the subaccount stays, DESIGN.md §5; REST needs no Redis: the
  rate budget falls back to its local bucket), and again every ``RECANCEL_EVERY_MS`` while Redis
  stays away, for a create that was already on its way;
- nothing else is sent (``BlindGate``: a place, an amend or an order group write is refused
  before it leaves; cancels and decreases go);
- the orders are marked cancelled in memory only, and written once Redis is back.

When Redis answers again, the in-memory changes are written, the working orders reconciled with
the exchange (the exchange wins) and the risk state read again; only then does quoting resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from redis.exceptions import RedisError

from common.domain import Order, OrderStatus
from common.kalshi.errors import ExchangeError, OrderRejected
from common.kalshi.wire.orders import OrderRequest
from common.runtime import Context
from services.executor.gateway import Gateway
from services.executor.journal import OrderJournal
from services.executor.reconcile import Reconciler
from services.executor.safety import Safety
from services.executor.state import Markets, Pulled, Schedule
from services.executor.working import WorkingOrders

PROBE_EVERY_MS = 250
PROBE_TIMEOUT_S = 1.0
RECANCEL_EVERY_MS = 5_000
REDIS_AWAY = "redis unreachable"


class BlindGate:
    """The executor's gateway, refusing every write that could add risk while the executor is
    blind (``pulled.blind``): the last lock, for a pass that was past its checks already."""

    def __init__(self, inner: Gateway, pulled: Pulled) -> None:
        self.inner = inner
        self.pulled = pulled

    def _refuse(self, what: str) -> None:
        if self.pulled.blind:
            raise OrderRejected(
                f"{what} not sent: {self.pulled.blind}", code="not_sent", details=self.pulled.blind
            )

    async def place(self, request: OrderRequest) -> Order:
        self._refuse("order")
        return await self.inner.place(request)

    def presign(self, order: Order | None) -> None:
        presign = getattr(self.inner, "presign", None)  # a test's fake exchange signs nothing
        if presign is not None and not self.pulled.blind:
            presign(order)

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        self._refuse("amend")
        return await self.inner.amend(order, price, remaining)

    async def decrease(self, order: Order, remaining: int) -> Order:
        return await self.inner.decrease(order, remaining)

    async def cancel(self, order: Order) -> int:
        return await self.inner.cancel(order)

    async def cancel_all(self) -> None:
        await self.inner.cancel_all()

    async def cancel_own(self) -> None:
        await self.inner.cancel_own()

    async def open_orders(self) -> list[Order]:
        return await self.inner.open_orders()

    async def lookup(self, order: Order) -> Order | None:
        return await self.inner.lookup(order)

    async def create_group(self, contracts_limit: int, exchange_index: int) -> str:
        self._refuse("order group")
        return await self.inner.create_group(contracts_limit, exchange_index)

    async def reset_group(self, group_id: str) -> None:
        self._refuse("order group reset")
        await self.inner.reset_group(group_id)

    async def set_group_limit(self, group_id: str, contracts_limit: int) -> None:
        self._refuse("order group limit")
        await self.inner.set_group_limit(group_id, contracts_limit)

    async def aclose(self) -> None:
        await self.inner.aclose()


class RedisWatch:
    def __init__(
        self,
        ctx: Context,
        probe: Callable[[], Awaitable[object]],
        *,
        gateway: Gateway,
        working: WorkingOrders,
        journal: OrderJournal,
        reconciler: Reconciler,
        safety: Safety,
        schedule: Schedule,
        markets: Markets,
    ) -> None:
        self.ctx = ctx
        self.probe = probe
        self.gateway = gateway
        self.working = working
        self.journal = journal
        self.reconciler = reconciler
        self.safety = safety
        self.schedule = schedule
        self.markets = markets
        self.pulled = safety.pulled
        self.last_answer_ms = ctx.clock.monotonic_ms()
        self.cancelled_ms = 0.0  # monotonic: the last cancel of its own orders sent while blind
        self.outages = 0

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(PROBE_EVERY_MS / 1000)

    async def tick(self) -> None:
        """One probe and what follows from it."""
        ctx, pulled = self.ctx, self.pulled
        answered = await self._answers()
        now = ctx.clock.monotonic_ms()
        if answered:
            self.last_answer_ms = now
            if pulled.blind:
                await self._see_again()
        elif not pulled.blind:
            silent_ms = now - self.last_answer_ms
            if silent_ms >= ctx.settings.redis_outage_cancel_s * 1000:
                pulled.blind = REDIS_AWAY
                self.outages += 1
                ctx.log.error("redis_unreachable_pulling_quotes", silent_ms=int(silent_ms))
                await self._cancel_own()
        elif now - self.cancelled_ms >= RECANCEL_EVERY_MS:
            await self._cancel_own()

    async def _answers(self) -> bool:
        try:
            await asyncio.wait_for(self.probe(), PROBE_TIMEOUT_S)
        except (RedisError, OSError):  # OSError includes TimeoutError
            return False
        return True

    async def _cancel_own(self) -> None:
        """Cancel dora's orders at the exchange (never another's); the orders known to rest
        before are cancelled in memory (written, and logged, once Redis is back)."""
        ctx = self.ctx
        self.cancelled_ms = ctx.clock.monotonic_ms()
        sent_ms = ctx.clock.now_ms()
        try:
            await self.gateway.cancel_own()
        except ExchangeError as exc:
            ctx.log.error("cancel_own_failed", reason=REDIS_AWAY, error=str(exc))
            self.cancelled_ms = 0.0  # try again at the next probe
            return
        ctx.log.warning("cancelled_own", reason=REDIS_AWAY)
        for order in self.working.all_live():
            if order.status is OrderStatus.RESTING and order.updated_ms < sent_ms:
                gone = replace(
                    order, status=OrderStatus.CANCELED, remaining=0, updated_ms=ctx.clock.now_ms()
                )
                self.working.in_flight.doubt(replace(order, updated_ms=gone.updated_ms))
                self.working.apply(gone)
                self.journal.log_later(gone, "canceled", REDIS_AWAY)

    async def _see_again(self) -> None:
        """Redis answers: write what changed meanwhile, believe the exchange, read the risk
        state; then quote. Any of it failing leaves the executor blind for the next probe."""
        ctx = self.ctx
        try:
            await self.journal.flush()
            await self.reconciler.reconcile()
            await self.safety.refresh_risk()
        except Exception as exc:
            ctx.log.warning("redis_back_not_reconciled", error=f"{type(exc).__name__}: {exc}")
            return
        self.pulled.blind = ""
        ctx.log.info("redis_back_quoting_again")
        self.schedule.mark_all(self.markets.targets)
