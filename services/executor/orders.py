"""The four writes (create, amend, decrease, cancel), each recorded with the exchange's answer.

A new order is recorded under its deterministic client order id (status ``pending``) before its
request leaves, so a crash between the two leaves a trace the next executor resolves by lookup.
Only an order that is about to be sent is recorded: one held back (its market's order group
cools down) leaves no record and no trade-log event. A create whose answer is lost is
``unknown`` until the exchange says (never ``failed``); an amend, decrease or cancel that fails
is followed by a lookup of the order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from common.domain import Order, OrderStatus, make_client_order_id
from common.kalshi.errors import ExchangeError, NotFound, OrderRejected, OutcomeUnknown
from common.kalshi.wire.orders import OrderRequest
from common.order_diff import Action, ActionKind
from common.runtime import Context
from services.executor.gateway import Gateway
from services.executor.groups import COOLING_DOWN, OrderGroups
from services.executor.journal import OrderJournal
from services.executor.reconcile import Reconciler, merge
from services.executor.state import Schedule


@dataclass(frozen=True, slots=True)
class Prepared:
    """A place about to leave: its pending order and the order group it joins."""

    order: Order
    group_id: str | None


class OrderEntry:
    def __init__(
        self,
        ctx: Context,
        gateway: Gateway,
        journal: OrderJournal,
        reconciler: Reconciler,
        groups: OrderGroups,
        schedule: Schedule,
        counts: dict[str, int],
        namespace: str,
    ) -> None:
        self.ctx = ctx
        self.gateway = gateway
        self.journal = journal
        self.reconciler = reconciler
        self.groups = groups
        self.schedule = schedule
        self.counts = counts
        self.namespace = namespace  # of the client order ids: this process's, never reused
        self.seq = 0

    def presign(self, action: Action) -> None:
        """Sign ahead the request ``action`` will send (a create or an amend; the executor does
        it while Redis answers the ledger step that clears it)."""
        if action.kind is ActionKind.PLACE:
            self.gateway.presign(None)
        elif action.kind is ActionKind.AMEND and action.order is not None:
            self.gateway.presign(action.order)

    async def execute(self, action: Action) -> bool:
        """Send ``action`` and record the answer. False when an amend, decrease or cancel
        failed (the order is then looked up); a create's failure is recorded on the order."""
        ctx = self.ctx
        now = ctx.clock.now_ms()
        try:
            if action.kind is ActionKind.PLACE:
                await self.place(action)
            elif action.kind is ActionKind.CANCEL:
                assert action.order is not None
                removed = await self.gateway.cancel(action.order)
                # what it removed tells an executed order from a cancelled one (reduced_by)
                if await self.reconciler.cancelled(action.order, removed, action.reason):
                    self.counts["canceled"] += 1
                    ctx.metrics.count("orders_cancelled")
            elif action.kind is ActionKind.DECREASE:
                assert action.order is not None
                updated = await self.gateway.decrease(action.order, action.size)
                self.counts["decreased"] += 1
                await self._answered(action, updated, "decreased")
            else:
                assert action.order is not None
                updated = await self.gateway.amend(action.order, action.price, action.size)
                self.counts["amended"] += 1
                await self._answered(action, updated, "amended")
            return True
        except NotFound:
            if action.order is not None:  # it is gone at the exchange: stop tracking it
                gone = replace(
                    action.order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now
                )
                await self.journal.record(gone, "canceled", "not_found_at_exchange")
        except OrderRejected as exc:
            self.counts["rejected"] += 1
            ctx.log.info(
                "rejected",
                market=action.ticker,
                kind=action.kind.value,
                side=action.side.value,
                price=action.price,
                reason=str(exc),
            )
            if action.order is not None:
                self.schedule.mark(action.ticker)  # an amend/decrease refused: look again
                await self.reconciler.resolve(action.order)
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning(
                "action_failed",
                market=action.ticker,
                kind=action.kind.value,
                side=action.side.value,
                error=f"{type(exc).__name__}: {exc}",
            )
            if action.order is not None:
                await self.reconciler.resolve(action.order)
        return False

    async def _answered(self, action: Action, updated: Order, event: str) -> None:
        """Record an amend's or a decrease's answer. One that accounts for fewer contracts than
        the order had less what we took off (``shortfall``) says the rest left the book some
        other way first: executed (its fills not heard of yet) or cancelled by the exchange.
        Recording it would forget those contracts, an execution among them, until its fill is
        posted: the order is looked up instead, counted as it was until the exchange says."""
        assert action.order is not None
        now = self.ctx.clock.now_ms()
        short = shortfall(action.order, updated, action.size)
        if not short:
            await self.journal.record(
                merge(action.order, updated, now), event, action.reason, updated
            )
            return
        self.ctx.log.warning(
            "answer_short",
            market=action.ticker,
            kind=action.kind.value,
            order_id=action.order.order_id,
            missing=short,
        )
        why = f"{action.reason}: {event} answer {short} short (executed or cancelled first)"
        resolved = await self.reconciler.resolve(action.order, why)
        if resolved is not None and resolved.status.is_live:
            await self.journal.log(resolved, event, why)

    async def place(self, action: Action) -> None:
        """Record the new order, then send it; its answer (or the lack of one) is recorded."""
        prepared = await self.prepare(action)
        if prepared is None:
            return
        await self.journal.save(prepared.order)  # before sending
        await self.send(prepared, action.reason)

    async def prepare(self, action: Action) -> Prepared | None:
        """The pending order a place would record (None: its market's order group cools down,
        so it is not sent and leaves no record)."""
        group_id = await self.groups.group_for(action.ticker)
        if group_id == COOLING_DOWN:
            return None  # not sent, so not recorded: the market is looked at again after
        self.seq += 1
        coid = make_client_order_id(self.namespace, action.ticker, action.side, self.seq)
        now = self.ctx.clock.now_ms()
        pending = Order(
            action.ticker,
            action.side,
            action.price,
            action.size,
            coid,
            status=OrderStatus.PENDING,
            remaining=action.size,
            created_ms=now,
            updated_ms=now,
        )
        return Prepared(pending, group_id)

    async def send(self, prepared: Prepared, reason: str) -> None:
        """Send a prepared order already recorded as pending; record its answer."""
        ctx, pending, group_id = self.ctx, prepared.order, prepared.group_id
        request = OrderRequest(
            pending.ticker,
            pending.side,
            pending.price,
            pending.count,
            pending.client_order_id,
            post_only=True,
            cancel_order_on_pause=True,
            order_group_id=group_id,
        )
        try:
            placed = await self.gateway.place(request)
        except OutcomeUnknown as exc:
            await self._record_unknown(pending, str(exc))
            return
        except OrderRejected as exc:
            if group_id and "group" in f"{exc.details} {exc}".lower():
                self.groups.fired(pending.ticker, group_id)
            rejected = replace(
                pending, status=OrderStatus.REJECTED, remaining=0, updated_ms=ctx.clock.now_ms()
            )
            self.counts["rejected"] += 1
            await self.journal.record(rejected, "rejected", str(exc))
            return
        except ExchangeError as exc:
            # Any other failure of a create: the outcome is not known until the exchange says.
            ctx.metrics.count("api_errors")
            await self._record_unknown(pending, f"{type(exc).__name__}: {exc}")
            return
        self.counts["placed"] += 1
        ctx.metrics.count("orders_placed")
        await self.journal.record(merge(pending, placed, ctx.clock.now_ms()), "placed", reason)

    async def _record_unknown(self, pending: Order, reason: str) -> None:
        unknown = replace(pending, status=OrderStatus.UNKNOWN, updated_ms=self.ctx.clock.now_ms())
        await self.journal.record(unknown, "unknown", reason)


def shortfall(order: Order, answer: Order, remaining: int) -> int:
    """Contracts of ``order`` an amend's or decrease's ``answer`` (asked to leave ``remaining``
    resting) no longer accounts for: it had ``order.filled`` executed and ``remaining`` resting
    by our count; the exchange's filled and resting together fall short of that by what left
    the book without our knowing (0 when nothing did)."""
    return max(0, order.filled + remaining - (answer.filled + answer.remaining))
