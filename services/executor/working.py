"""The executor's working orders: in memory for speed, mirrored to ``dora:orders:{ticker}``.

Every order is recorded (status ``pending``) before it is sent, under its deterministic client
order id, so a crash between recording and sending leaves a trace the next executor resolves by
looking it up. Orders that stop resting (filled, cancelled, rejected) leave the hash; what they
executed still counts in the worst case until its fills are in the position
(``services.executor.fills_in_flight``): ``counted`` is what the worst case is taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.domain import Order, Side
from common.errors import SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.messages import decode_event
from common.redis_codec import decode_order, encode_order
from common.streams import entry_ms
from services.executor.fills_in_flight import FillsInFlight

LEFT_KEPT = 10_000  # orders whose leaving is remembered (the newest; a reconcile takes seconds)
POSTED_LOOKBACK = 10_000  # fills stream entries read back at start for the loaded orders' fills
POSTED_PAGE = 1_000
CLOCK_MARGIN_MS = 60_000  # Redis's clock (stream ids) against ours (an order's ``created_ms``)


class WorkingOrders:
    def __init__(self, redis: aioredis.Redis, keys: Keys, log: EventLogger) -> None:
        self.redis = redis
        self.keys = keys
        self.log = log
        self.by_ticker: dict[str, dict[str, Order]] = {}  # ticker -> client_order_id -> order
        self.by_order_id: dict[str, Order] = {}
        # changes made in memory only (``apply``), written by the next ``flush`` of their market
        self.unsaved: dict[str, dict[str, Order]] = {}
        self.in_flight = FillsInFlight()
        # client order id -> when it left (no longer rests): a listing of the exchange's open
        # orders asked for before then is older than what we know of it (``left_since``)
        self.left_ms: dict[str, int] = {}

    async def load(self, owned: Callable[[str], bool]) -> int:
        """Load what a previous executor left in Redis for the markets this one ``owned``."""
        count = 0
        async for key in self.redis.scan_iter(match=self.keys.pattern("orders"), count=500):
            ticker = self.keys.ticker_of(key, "orders")
            if not owned(ticker):
                continue
            try:
                stored = await self.redis.hgetall(key)
            except ResponseError as exc:
                # not a hash (a person's SET): nothing in it is an order, and every write of
                # this market's orders would fail on it; reconcile learns what rests there
                self.log.warning("bad_working_orders", market=ticker, reason=str(exc))
                await self.redis.delete(key)
                continue
            for coid, value in stored.items():
                try:
                    order = decode_order(value)
                except SchemaError as exc:
                    self.log.warning("bad_working_order", market=ticker, reason=str(exc))
                    await self.redis.hdel(key, coid)
                    continue
                self._index(order)
                self.in_flight.credit(order, order.updated_ms)  # its fills are in the position
                count += 1
        return count

    async def credit_posted(self, upto: str, lookback: int = POSTED_LOOKBACK) -> None:
        """Credit each loaded order with its fill events on the fills stream up to ``upto`` (the
        entry the executor reads on from): in one transaction with their positions, they are
        what the positions it starts from hold of it, no more, no less (see ``FillsInFlight``).
        Read back to the oldest order's creation, or ``lookback`` entries at most."""
        live = {o.order_id: o for o in self.all_live() if o.order_id}
        if not live or upto == "0-0":
            return
        needed_ms = min(o.created_ms for o in live.values()) - CLOCK_MARGIN_MS
        posted: dict[str, int] = dict.fromkeys(live, 0)
        reached_ms, top, read = None, upto, 0
        while read < lookback and (reached_ms is None or reached_ms > needed_ms):
            page = await self.redis.xrevrange(self.keys.stream("fills"), max=top, count=POSTED_PAGE)
            for _, fields in page:
                try:
                    kind, payload = decode_event(fields)
                    order_id, count = payload.get("order_id"), int(payload.get("count", 0))
                except (SchemaError, TypeError, ValueError):
                    continue
                if kind == "fill" and order_id in posted:
                    posted[order_id] += count
            read += len(page)
            if page:
                top = f"({page[-1][0]}"
                reached_ms = entry_ms(page[-1][0])
            if len(page) < POSTED_PAGE:
                break  # the stream's oldest entry
        for order_id, order in live.items():
            whole = reached_ms is not None and reached_ms <= order.created_ms - CLOCK_MARGIN_MS
            self.in_flight.credit_posted(order, posted[order_id], whole, order.updated_ms)

    def live(self, ticker: str) -> list[Order]:
        return [o for o in self.by_ticker.get(ticker, {}).values() if o.status.is_live]

    def all_live(self) -> list[Order]:
        return [
            o for orders in self.by_ticker.values() for o in orders.values() if o.status.is_live
        ]

    def counted(self, ticker: str | None = None, live: list[Order] | None = None) -> list[Order]:
        """What the worst case is taken over: the ``live`` orders (of ``ticker``, or of every
        market with None) and an order standing for each execution not in the position yet."""
        if live is None:
            live = self.all_live() if ticker is None else self.live(ticker)
        return [*live, *self.in_flight.stand_ins(live, ticker)]

    def tickers(self) -> list[str]:
        return [t for t, orders in self.by_ticker.items() if orders]

    def get(self, ticker: str, client_order_id: str) -> Order | None:
        return self.by_ticker.get(ticker, {}).get(client_order_id)

    def find(
        self, order_id: str | None, client_order_id: str | None, ticker: str | None
    ) -> Order | None:
        if order_id and order_id in self.by_order_id:
            return self.by_order_id[order_id]
        if client_order_id:
            if ticker:
                return self.get(ticker, client_order_id)
            for orders in self.by_ticker.values():
                if client_order_id in orders:
                    return orders[client_order_id]
        return None

    def _index(self, order: Order) -> None:
        self.by_ticker.setdefault(order.ticker, {})[order.client_order_id] = order
        if order.order_id:
            self.by_order_id[order.order_id] = order

    def _unindex(self, order: Order) -> None:
        self.by_ticker.get(order.ticker, {}).pop(order.client_order_id, None)
        if order.order_id and self.by_order_id.get(order.order_id) is not None:
            self.by_order_id.pop(order.order_id, None)

    def apply(self, order: Order) -> Order:
        """Change ``order`` in memory now; Redis hears of it when its market's writes are next
        ``queue``d (the read loop must not wait on a write per fill). Only for changes whose loss
        in a crash the next executor's reconciliation repairs (fills, exchange updates): an order
        about to be sent is recorded with ``save``."""
        self._replace(order)
        self.unsaved.setdefault(order.ticker, {})[order.client_order_id] = order
        return order

    def queue(self, pipe: Any, ticker: str | None = None, side: Side | None = None) -> bool:
        """Queue in ``pipe`` the writes of what ``apply`` changed: one market side's (from its
        pass, so that an order's writes stay in order), one market's or, with no ticker, every
        market's. True when anything was queued."""
        tickers = [ticker] if ticker is not None else list(self.unsaved)
        queued = False
        for t in tickers:
            changed = self.unsaved.get(t, {})
            for coid in [c for c, o in changed.items() if side is None or o.side is side]:
                self._write(pipe, changed.pop(coid))
                queued = True
            if not changed:
                self.unsaved.pop(t, None)
        return queued

    async def save(self, order: Order) -> Order:
        """Record ``order`` (or forget it when it no longer rests) in memory and in Redis."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_save(pipe, order)
        await pipe.execute()
        return order

    def remember(self, order: Order) -> None:
        """Hold ``order`` in memory: it was written to Redis by someone else (the ledger's
        reservation records a new order in the same step)."""
        self._replace(order)
        self.unsaved.get(order.ticker, {}).pop(order.client_order_id, None)

    def queue_save(self, pipe: Any, order: Order) -> None:
        """``save`` with the write queued in ``pipe`` (memory changes at once)."""
        self._replace(order)
        self.unsaved.get(order.ticker, {}).pop(order.client_order_id, None)  # superseded
        self._write(pipe, order)

    async def save_all(self) -> int:
        """Write every live order to Redis again (after Redis lost its data); returns how many."""
        pipe = self.redis.pipeline(transaction=False)
        orders = self.all_live()
        for order in orders:
            self._write(pipe, order)
        await pipe.execute()
        return len(orders)

    def _replace(self, order: Order) -> None:
        previous = self.get(order.ticker, order.client_order_id)
        if previous is not None:
            self._unindex(previous)
            self.in_flight.amended(previous, order)
        if order.status.is_live:
            self._index(order)
        elif previous is not None:
            self.in_flight.retire(order)
            self._note_left(order)

    def _note_left(self, order: Order) -> None:
        if len(self.left_ms) >= LEFT_KEPT:
            oldest = sorted(self.left_ms.items(), key=lambda kv: kv[1])[: LEFT_KEPT // 2]
            for coid, _ in oldest:
                del self.left_ms[coid]
        self.left_ms[order.client_order_id] = order.updated_ms

    def left_since(self, client_order_id: str | None, since_ms: int) -> bool:
        """Whether the order left our books (cancelled, executed) at or after ``since_ms``: a
        listing asked for before then still shows it resting, and is not to be believed."""
        left = self.left_ms.get(client_order_id or "")
        return left is not None and left >= since_ms

    def _write(self, pipe: Any, order: Order) -> None:
        key = self.keys.orders(order.ticker)
        if order.status.is_live:
            pipe.hset(key, order.client_order_id, encode_order(order))
        else:
            pipe.hdel(key, order.client_order_id)
