"""Working orders against the exchange: the exchange wins.

Every few seconds (and at start) the working orders are compared with the exchange's open
orders: an order of ours the exchange does not list, or one whose outcome is unknown, is looked
up by id and believed; an order the exchange lists that we do not know is adopted. Fills that
say an order is done are not believed on arithmetic alone: the order is looked up at its side's
next pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from common.domain import Order, OrderStatus, Side
from common.kalshi.errors import ExchangeError
from common.runtime import Context
from services.executor.gateway import Gateway
from services.executor.journal import OrderJournal
from services.executor.state import Schedule
from services.executor.working import WorkingOrders

UNKNOWN_GIVE_UP_MS = 15_000  # a create still absent this long after it was sent never landed
PENDING_GRACE_MS = 5_000  # a create younger than this may simply not be answered yet


class Reconciler:
    def __init__(
        self,
        ctx: Context,
        gateway: Gateway,
        working: WorkingOrders,
        journal: OrderJournal,
        schedule: Schedule,
        owned: Callable[[str], bool],
    ) -> None:
        self.ctx = ctx
        self.gateway = gateway
        self.working = working
        self.journal = journal
        self.schedule = schedule
        self.owned = owned
        self.to_resolve: dict[str, dict[str, Order]] = {}  # fills say done: ask at the next pass

    async def reconcile(self) -> None:
        """Make the working orders agree with the exchange (the exchange wins)."""
        working = self.working
        started = self.ctx.clock.now_ms()
        at_exchange = [o for o in await self.gateway.open_orders() if self.owned(o.ticker)]
        seen: set[str] = set()
        for theirs in at_exchange:
            mine = working.find(theirs.order_id, theirs.client_order_id, theirs.ticker)
            seen.add(mine.client_order_id if mine else theirs.client_order_id)
            if mine is None:
                adopted = replace(theirs, status=OrderStatus.RESTING, updated_ms=started)
                await working.save(adopted)
                self.schedule.mark(theirs.ticker)
                self.ctx.log.warning(
                    "adopted_exchange_order", market=theirs.ticker, order_id=theirs.order_id
                )
            elif mine.updated_ms <= started and (
                mine.price != theirs.price
                or mine.remaining != theirs.remaining
                or mine.status is not OrderStatus.RESTING
            ):
                await working.save(merge(mine, theirs, started))
        for mine in working.all_live():
            if mine.client_order_id in seen or mine.updated_ms > started:
                continue  # at the exchange, or changed while we were asking
            if mine.status is OrderStatus.PENDING and started - mine.created_ms < PENDING_GRACE_MS:
                continue  # its create is in flight: the answer to it will say
            await self.resolve(mine)

    async def resolve(self, order: Order) -> None:
        """Ask the exchange what became of ``order`` and believe it."""
        try:
            theirs = await self.gateway.lookup(order)
        except ExchangeError as exc:
            self.ctx.log.warning(
                "lookup_failed",
                market=order.ticker,
                client_order_id=order.client_order_id,
                error=str(exc),
            )
            return
        now = self.ctx.clock.now_ms()
        if theirs is None:
            if (
                order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN)
                and now - order.created_ms < UNKNOWN_GIVE_UP_MS
            ):
                return  # may still appear: ask again at the next reconcile
            gone = replace(order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now)
            await self.journal.record(gone, "canceled", "absent_at_exchange")
        else:
            resolved = await self.working.save(merge(order, theirs, now))
            if not resolved.status.is_live:
                await self.journal.log(
                    resolved,
                    "filled" if resolved.status is OrderStatus.EXECUTED else "canceled",
                    "resolved_by_lookup",
                )
        self.schedule.mark(order.ticker)

    def resolve_later(self, ticker: str, order: Order) -> None:
        """Look ``order`` up at its side's next pass (a fill says it is done)."""
        self.to_resolve.setdefault(ticker, {})[order.client_order_id] = order

    def exchange_said(self, ticker: str, order: Order) -> None:
        """The exchange told us what became of ``order``: no lookup needed."""
        self.to_resolve.get(ticker, {}).pop(order.client_order_id, None)

    async def resolve_waiting(self, ticker: str, side: Side) -> None:
        """Look up the side's orders that fills say are done."""
        waiting = self.to_resolve.get(ticker, {})
        for coid in [c for c, o in waiting.items() if o.side is side]:
            order = waiting.pop(coid, None)
            if order is not None:
                await self.resolve(order)


def merge(mine: Order, theirs: Order, now_ms: int) -> Order:
    """The exchange's facts (id, status, price, sizes) on our record (client id, created time)."""
    return replace(
        mine,
        order_id=theirs.order_id or mine.order_id,
        status=theirs.status,
        price=theirs.price,
        count=theirs.count or mine.count,
        filled=theirs.filled,
        remaining=theirs.remaining,
        updated_ms=now_ms,
    )
