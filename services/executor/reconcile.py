"""Working orders against the exchange: the exchange wins.

Every few seconds (and at start) the working orders are compared with the exchange's open
orders: an order of ours the exchange does not list, or one whose outcome is unknown, is looked
up by id and believed; an order the exchange lists that we do not know is adopted if its client
order id says dora made it (a record lost with Redis, say) and left alone if not: an order placed
by hand or by another program is never amended or cancelled in normal quoting. Fills that
say an order is done are not believed on arithmetic alone: the order is looked up at its side's
next pass. Neither is a cancel that took less off the book than we thought rested: the rest
executed first (or went some other way), and the exchange says which. What an order executed
stays in the worst case until its fills are in the position (``WorkingOrders.counted``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from common.domain import Order, OrderStatus, Side, is_own_client_order_id
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
        self.foreign: set[str] = set()  # resting orders dora did not make (logged once each)

    async def reconcile(self) -> None:
        """Make the working orders agree with the exchange (the exchange wins)."""
        working = self.working
        started = self.ctx.clock.now_ms()
        at_exchange = [o for o in await self.gateway.open_orders() if self.owned(o.ticker)]
        seen: set[str] = set()
        foreign: set[str] = set()
        for theirs in at_exchange:
            mine = working.find(theirs.order_id, theirs.client_order_id, theirs.ticker)
            if mine is None and not is_own_client_order_id(theirs.client_order_id):
                foreign.add(theirs.order_id or "")
                if theirs.order_id not in self.foreign:
                    self.ctx.log.info(
                        "foreign_order_left_alone",
                        market=theirs.ticker,
                        order_id=theirs.order_id,
                        client_order_id=theirs.client_order_id,
                    )
                continue
            if mine is None and working.left_since(theirs.client_order_id, started):
                # cancelled or executed while the listing was on its way: adopting it would
                # rest it again in memory and take its unposted fills as posted (``credit``)
                continue
            seen.add(mine.client_order_id if mine else theirs.client_order_id)
            if mine is None:
                adopted = replace(theirs, status=OrderStatus.RESTING, updated_ms=started)
                working.in_flight.credit(adopted, started)  # its fills so far: in the position
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
        self.foreign = foreign
        for mine in working.all_live():
            if mine.client_order_id in seen or mine.updated_ms > started:
                continue  # at the exchange, or changed while we were asking
            if mine.status is OrderStatus.PENDING and started - mine.created_ms < PENDING_GRACE_MS:
                continue  # its create is in flight: the answer to it will say
            await self.resolve(mine)

    async def cancelled(self, order: Order, removed: int, reason: str) -> bool:
        """Our cancel of ``order`` took ``removed`` contracts off the book (Kalshi's
        ``reduced_by``). All that we thought rested: it is cancelled. Less: the rest executed
        before the cancel (or the exchange cancelled it itself), so ask the exchange and log
        what it says: executed, or cancelled with its executed part. True when cancelled."""
        if removed >= order.remaining:
            now = self.ctx.clock.now_ms()
            gone = replace(order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now)
            await self.journal.record(gone, "canceled", reason, cancelled=removed)
            return True
        why = f"{reason}: cancel took {removed} of {order.remaining} off the book"
        resolved = await self.resolve(order, why, cancelled=removed)
        return resolved is not None and resolved.status is OrderStatus.CANCELED

    async def resolve(
        self, order: Order, why: str = "resolved_by_lookup", cancelled: int | None = None
    ) -> Order | None:
        """Ask the exchange what became of ``order`` and believe it; returns what it said (None
        when it could not be asked or does not know the order yet)."""
        try:
            theirs = await self.gateway.lookup(order)
        except ExchangeError as exc:
            self.ctx.log.warning(
                "lookup_failed",
                market=order.ticker,
                client_order_id=order.client_order_id,
                error=str(exc),
            )
            return None
        now = self.ctx.clock.now_ms()
        if theirs is None:
            if (
                order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN)
                and now - order.created_ms < UNKNOWN_GIVE_UP_MS
            ):
                return None  # may still appear: ask again at the next reconcile
            resolved = replace(order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now)
            await self.journal.record(resolved, "canceled", "absent_at_exchange", None, cancelled)
        else:
            resolved = await self.working.save(merge(order, theirs, now))
            if not resolved.status.is_live:
                event = "filled" if resolved.status is OrderStatus.EXECUTED else "canceled"
                await self.journal.log(resolved, event, why, cancelled)
        self.schedule.mark(order.ticker)
        return resolved

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
        filled=max(mine.filled, theirs.filled),  # each report is the truth when it was made
        remaining=theirs.remaining,
        updated_ms=now_ms,
        exchange_ms=max(mine.exchange_ms, theirs.exchange_ms),
    )
