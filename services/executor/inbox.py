"""Stream entries into memory: the strategy's targets, fills and the exchange's order updates.

The read loop never waits on a round trip per entry (a burst of fills must not hold up the
targets behind it). What has to be written or asked is left to the market's next pass, which
runs it before deciding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from common.domain import OrderStatus, Position
from common.errors import SchemaError
from common.position_record import PositionRecord
from common.redis_codec import decode_targets
from common.runtime import Context
from common.trace import now_us
from services.executor.journal import OrderJournal
from services.executor.reconcile import Reconciler
from services.executor.state import SIDES, Markets, Schedule
from services.executor.working import WorkingOrders


class Inbox:
    def __init__(
        self,
        ctx: Context,
        working: WorkingOrders,
        journal: OrderJournal,
        reconciler: Reconciler,
        markets: Markets,
        schedule: Schedule,
        owned: Callable[[str], bool],
        tracing: bool,
    ) -> None:
        self.ctx = ctx
        self.working = working
        self.journal = journal
        self.reconciler = reconciler
        self.markets = markets
        self.schedule = schedule
        self.owned = owned
        self.tracing = tracing  # keep each tick's stamps for the tick-to-order trace

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        ticker = payload.get("ticker")
        if not isinstance(ticker, str) or not self.owned(ticker):
            return
        if kind == "targets":
            self.markets.targets[ticker] = decode_targets(ticker, payload)
            self.schedule.mark(ticker)
            trace = payload.get("trace")
            if self.tracing and isinstance(trace, list):
                stamps = (*map(int, trace), now_us())
                for side in SIDES:
                    self.schedule.trace.setdefault((ticker, side), stamps)
        elif kind == "fill":
            self._on_fill(ticker, payload)
        elif kind == "user_order":
            self._on_user_order(ticker, payload)

    def _on_fill(self, ticker: str, payload: dict[str, Any]) -> None:
        positions = self.markets.positions
        pos = positions.get(ticker) or Position(ticker)
        record = payload.get("record")
        try:  # the whole record after the fill: its cost too (the ledger holds its exposure)
            after = (
                PositionRecord.from_payload(ticker, record) if isinstance(record, dict) else None
            )
        except SchemaError:
            after = None
        self.markets.moved_by_fill(
            after.position
            if after is not None
            else replace(pos, position=int(payload["position_after"]))
        )
        order_id, count, now = (
            payload.get("order_id"),
            int(payload["count"]),
            self.ctx.clock.now_ms(),
        )
        in_flight = self.working.in_flight
        posted = in_flight.on_fill(order_id, count, now) if isinstance(order_id, str) else 0
        order = self.working.find(order_id, payload.get("client_order_id"), ticker)
        if order is not None:
            # The exchange's count (an amend's answer, an order update) may hold this fill
            # already: what executed is the larger of the two, never their sum.
            filled = in_flight.filled_after(order, posted)
            executed = filled - order.filled
            if executed and order.remaining > executed:
                self.working.apply(
                    replace(
                        order, filled=filled, remaining=order.remaining - executed, updated_ms=now
                    )
                )
            elif executed:
                # By our arithmetic it is done. Never forget an order on arithmetic alone: ask
                # the exchange (the market's next pass does, before it decides anything).
                self.reconciler.resolve_later(ticker, replace(order, filled=filled, updated_ms=now))
        self.schedule.mark(ticker)  # position changed: sizes may need to shrink

    def _on_user_order(self, ticker: str, payload: dict[str, Any]) -> None:
        """The exchange says an order changed (cancelled by a pause, filled, decreased).

        The socket's news can reach us after a REST answer made later (an update sent before
        an amend was answered): one the exchange stamped before the change our record holds is
        not news. Applied, its old size would free ledger room the amended size still uses at
        the exchange. Only the exchange's own times are compared; with either unsaid the update
        is applied but its price (which may be the one before an amend) is not."""
        order_id = payload.get("order_id")
        order = self.working.find(order_id, payload.get("client_order_id"), ticker)
        if order is None:
            # an order a cancel-all took: its last word says how much of it executed first
            final = not OrderStatus(payload["status"]).is_live
            if (
                final
                and isinstance(order_id, str)
                and "filled" in payload
                and self.working.in_flight.settle(order_id, int(payload["filled"]))
            ):
                self.schedule.mark(ticker)
            return
        if order.status is OrderStatus.PENDING:
            return
        said_ms = int(payload.get("exchange_ms") or 0)
        dated = bool(said_ms and order.exchange_ms)  # both times known: old and new can be told
        if dated and said_ms < order.exchange_ms:
            self.ctx.metrics.count("stale_order_updates")
            return
        status = OrderStatus(payload["status"])
        price = payload.get("price")
        updated = self.working.apply(
            replace(
                order,
                status=status,
                price=int(price) if dated and price is not None else order.price,
                remaining=int(payload["remaining"]),
                filled=max(order.filled, int(payload.get("filled", order.filled))),
                updated_ms=self.ctx.clock.now_ms(),
                exchange_ms=max(order.exchange_ms, said_ms),
            )
        )
        self.reconciler.exchange_said(ticker, order)
        if not status.is_live:
            event = "canceled" if status is OrderStatus.CANCELED else "filled"
            self.journal.log_later(updated, event, "exchange")
        self.schedule.mark(ticker)
