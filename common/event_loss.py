"""The worst loss of one Kalshi event across its outcomes, positions and resting orders included
(``max_event_loss``, DESIGN.md §3). Pure.

For one market, with signed position ``q`` (1/100 contract) and signed YES cost basis ``c``:

- if it resolves YES the position pays ``q`` dollars: the loss is ``c - q x $1``, and every
  resting ask that fills adds ``($1 - price) x count`` (a YES sold short pays out); bids that
  fill only gain then;
- if it resolves NO: the loss is ``c``, and every resting bid adds ``price x count``.

So ``loss_if_yes = c - q x $1 + asks`` and ``loss_if_no = c + bids`` (``MarketLoss``): the worst
case of each outcome is every order that loses in it filling. A mutually exclusive event has at
most one market resolve YES: its worst loss is the largest, over which market wins (or none),
of that market's ``loss_if_yes`` plus every other's ``loss_if_no``. A non-exclusive event's
markets resolve on their own: the sum over markets of the larger of the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.domain import Order, Side
from common.numbers import ONE_DOLLAR


@dataclass(frozen=True, slots=True)
class MarketLoss:
    """One market's parts of its event's loss, in money: the position's loss if it resolves
    YES and if NO, and what its resting bids and asks add when they fill."""

    position_if_yes: int = 0
    position_if_no: int = 0
    bids: int = 0  # adds to the loss if NO
    asks: int = 0  # adds to the loss if YES

    @property
    def if_yes(self) -> int:
        return self.position_if_yes + self.asks

    @property
    def if_no(self) -> int:
        return self.position_if_no + self.bids


def position_losses(position: int, cost: int) -> tuple[int, int]:
    """(loss if YES, loss if NO) of a signed position with signed YES cost basis ``cost``."""
    return cost - position * ONE_DOLLAR, cost


def orders_loss(side: Side, orders: Iterable[Order]) -> int:
    """What the live ``side`` orders lose if they all fill and the outcome goes against them."""
    total = 0
    for o in orders:
        if o.side is side and o.status.is_live:
            size = o.resting_size
            total += (o.price if side is Side.BID else ONE_DOLLAR - o.price) * size
    return total


def reserved_orders_loss(side: Side, orders: Iterable[Order], position: int, cost: int) -> int:
    """``orders_loss`` for a reservation, which must hold after any of the orders fill: an ask
    that closes a long (a bid that closes a short) realizes its gain against the position's
    average price, and the formula above counts open contracts only, so once it fills the loss
    if YES (if NO) is higher by that gain than the order's part said. Each closing contract is
    counted at the worse of its price and the average (the best-paid orders close first)."""
    live = [o for o in orders if o.side is side and o.status.is_live]
    total = orders_loss(side, live)
    if side is Side.ASK and position > 0:
        closable, average = position, cost // position  # rounded down: more conservative
    elif side is Side.BID and position < 0:
        closable, average = -position, -(cost // -position)  # the YES price sold at, rounded up
    else:
        return total
    gains = sorted(
        (
            (o.price - average if side is Side.ASK else average - o.price),
            o.resting_size,
        )
        for o in live
    )
    for gain, size in reversed(gains):
        if gain <= 0 or closable <= 0:
            break
        closing = min(size, closable)
        total += gain * closing
        closable -= closing
    return total


def market_loss(position: int, cost: int, orders: Iterable[Order]) -> MarketLoss:
    live = list(orders)
    if_yes, if_no = position_losses(position, cost)
    return MarketLoss(if_yes, if_no, orders_loss(Side.BID, live), orders_loss(Side.ASK, live))


def event_worst_loss(markets: Iterable[MarketLoss], mutually_exclusive: bool) -> int:
    """The worst loss of the event over its outcomes (see the module's text)."""
    losses = list(markets)
    if not mutually_exclusive:
        return sum(max(m.if_yes, m.if_no) for m in losses)
    all_no = sum(m.if_no for m in losses)
    return all_no + max([0, *(m.if_yes - m.if_no for m in losses)])


def cost_from_exposure(position: int, exposure: int) -> int:
    """The signed YES cost basis of a position the exchange reports by its exposure (the cost
    of the YES or NO contracts held)."""
    return exposure if position >= 0 else exposure + position * ONE_DOLLAR
