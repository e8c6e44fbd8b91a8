"""Executions the exchange has told of whose fills are not in the position yet.

The fills stream is the truth of positions: the fills process writes a fill into ``dora:pos``
and appends its event in one transaction, so once the executor has read a fill's event the
position it reads holds that fill. The exchange can say an order executed before that: a cancel
that removed less than rested, a lookup, an amend's answer, an order update. Until the fill
events of those contracts have been read, they are in neither the position nor the resting size,
so each is kept in the worst case here, as a stand-in order resting on its side at its price
(``stand_ins``; after an amend, the worse of the prices it rested at: what executed before the
amend cost the old price), and forgotten once its fills are posted (or, should they never come, after
``IN_FLIGHT_MAX_MS``: by then the risk process's comparison with the exchange has halted on a lost
fill).

The same counts keep the two ways of hearing of a fill from adding up twice: an order's
``filled`` is cumulative as the exchange reports it, its fill events are increments; the larger of
the exchange's count and the events read is what executed (``filled_after``), never their sum.
A cancel-all answers nothing per order: what it took may have executed in part just before, and
the exchange's update of each order says how much only later. Each such order is held as if all it
had resting executed (``doubt``) until that update (``settle``) or its fills say otherwise.

For an order adopted, the fills before are taken as posted (``credit``): they are in the position
the executor starts from (its events after that are counted on top of them for what is posted,
never for what executed: an amend sized from an overstated count would rest more than approved).
An order loaded at start is credited with its fill events on the stream before the executor reads
from it (``credit_posted``): those and only those are in that position. Its record's count is
neither: written lazily it can predate a fill posted (held twice, then ``fills_never_posted`` of a
fill never lost), and it can hold an execution the exchange told of before its fill was posted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from common.domain import Order, OrderStatus, Side

IN_FLIGHT_MAX_MS = 60_000


@dataclass(slots=True)
class _Tally:
    posted: int = 0  # contracts of the order's fill events read
    credited: int = 0  # contracts taken as posted (already in the position at start)
    touched_ms: int = 0
    worst_price: int | None = None  # the worst price the order rested at before an amend


class FillsInFlight:
    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = {}  # order id -> what of its fills is posted
        self.done: dict[str, Order] = {}  # order id -> an order no longer live, fills unposted
        self.doubted: set[str] = set()  # of ``done``: taken by a cancel-all, executions unsaid

    def on_fill(self, order_id: str, count: int, now_ms: int) -> int:
        """A fill event of ``order_id`` was read; returns the contracts of its events read."""
        tally = self.tallies.setdefault(order_id, _Tally())
        tally.posted += count
        tally.touched_ms = now_ms
        held = self.done.get(order_id)
        if held is not None and not self.unposted(held):
            self.forget(order_id)
        return tally.posted

    def filled_after(self, order: Order, posted: int) -> int:
        """``order``'s executed count once its events so far are read: the exchange's count or
        the events', whichever is larger (an amend's answer may hold a fill its event repeats)."""
        return max(order.filled, posted)

    def credit(self, order: Order, now_ms: int) -> None:
        """``order``'s fills so far are in the position (adopted; loaded at start, until
        ``credit_posted`` says what of them is)."""
        if order.order_id:
            tally = self.tallies.setdefault(order.order_id, _Tally())
            tally.credited = max(tally.credited, order.filled)
            tally.touched_ms = now_ms

    def credit_posted(self, order: Order, posted: int, whole: bool, now_ms: int) -> None:
        """At start: ``posted`` contracts of ``order``'s fill events were on the stream before the
        executor read from it, so in its positions. ``whole``: the stream reaches back past the
        order's creation, so those are all of its fills posted; else (trimmed, or read only so
        far back) its record's count is kept when larger, as before."""
        if order.order_id:
            tally = self.tallies.setdefault(order.order_id, _Tally())
            tally.credited = posted if whole else max(tally.credited, order.filled, posted)
            tally.touched_ms = now_ms

    def unposted(self, order: Order) -> int:
        """Contracts ``order`` executed whose fills have not reached the position."""
        if not order.order_id:
            return 0
        tally = self.tallies.get(order.order_id)
        seen = tally.posted + tally.credited if tally else 0
        return max(0, order.filled - seen)

    def retire(self, order: Order) -> None:
        """``order`` no longer rests: keep it while some of its fills are not posted."""
        if not order.order_id or order.order_id in self.doubted:
            return
        if self.unposted(order):
            self.done[order.order_id] = order
        else:
            self.forget(order.order_id)

    def doubt(self, order: Order) -> None:
        """``order`` is about to be taken as cancelled by a cancel-all: until the exchange says,
        all it had resting may have executed just before (held as executed, fills unposted)."""
        if order.order_id and order.remaining:
            self.done[order.order_id] = replace(
                order,
                status=OrderStatus.CANCELED,
                filled=order.filled + order.remaining,
                remaining=0,
            )
            self.doubted.add(order.order_id)

    def settle(self, order_id: str, filled: int) -> bool:
        """The exchange's last word on a doubted order: ``filled`` executed in all. False when
        the order is not in doubt."""
        held = self.done.get(order_id)
        if held is None or order_id not in self.doubted:
            return False
        self.doubted.discard(order_id)
        self.done[order_id] = replace(held, filled=filled)
        if not self.unposted(self.done[order_id]):
            self.forget(order_id)
        return True

    def amended(self, before: Order, after: Order) -> None:
        """``before`` was amended to ``after``'s price: an execution of the earlier price not
        posted yet stands at the worse of the two (a bid's higher, an ask's lower), never at the
        new price alone."""
        if not before.order_id or before.price == after.price:
            return
        tally = self.tallies.setdefault(before.order_id, _Tally())
        tally.worst_price = _worse(before.side, tally.worst_price, before.price)

    def forget(self, order_id: str) -> None:
        self.done.pop(order_id, None)
        self.doubted.discard(order_id)
        self.tallies.pop(order_id, None)

    def stand_ins(self, live: Iterable[Order], ticker: str | None = None) -> list[Order]:
        """An order resting at the price of each execution not posted yet (of ``live`` orders
        and of orders done in ``ticker``, or in every market with None), for the worst case."""
        done = [o for o in self.done.values() if ticker is None or o.ticker == ticker]
        out = []
        for order in (*live, *done):
            size = self.unposted(order)
            if size:
                tally = self.tallies.get(order.order_id or "")
                worst = tally.worst_price if tally else None
                out.append(
                    replace(
                        order,
                        price=_worse(order.side, worst, order.price),
                        client_order_id=f"in-flight:{order.client_order_id}",
                        status=OrderStatus.RESTING,
                        count=size,
                        filled=0,
                        remaining=size,
                    )
                )
        return out

    def expire(self, now_ms: int, live_ids: set[str]) -> list[tuple[Order, int]]:
        """Done orders whose fills never came within ``IN_FLIGHT_MAX_MS`` (returned, to be
        reported) are dropped, and so are the tallies of orders neither live nor done that long
        (a fill event can come before the answer that tells the order's id)."""
        stale = [
            (o, self.unposted(o))
            for o in self.done.values()
            if now_ms - o.updated_ms > IN_FLIGHT_MAX_MS
        ]
        doubted = self.doubted.copy()  # no word on them is no lost fill: not reported
        for order, _ in stale:
            self.forget(order.order_id or "")
        stale = [(o, n) for o, n in stale if o.order_id not in doubted]
        for order_id, tally in list(self.tallies.items()):
            if order_id in live_ids or order_id in self.done:
                continue
            if now_ms - tally.touched_ms > IN_FLIGHT_MAX_MS:
                del self.tallies[order_id]
        return stale


def _worse(side: Side, price: int | None, other: int) -> int:
    """The price at which an executed contract loses the more: a bid's higher, an ask's lower."""
    if price is None:
        return other
    return max(price, other) if side is Side.BID else min(price, other)
