"""Room held ahead of a resting quote, so that its next move toward the market needs no ledger step.

An amend toward the market adds risk: before it leaves, the Lua step (``common.ledger``) reserves
the side's new worst case against ``max_total_exposure`` and the event's limit. That is a Redis
round trip on the tick path, and a tick that moves the others' best moves dora's quote toward the
market as often as away from it (issue 24: the step was ~0.9 ms of a tick's ~4.5 ms here).

So after its answers a side that rests holds, when there is room, a little more than rests: the
worst case of its orders moved ``ahead_ticks`` toward the market (``moved_ahead``), reserved by the
same checked step as any order, at most to ``AHEAD_SHARE`` of the cap (near the cap the room goes
to orders, not to room ahead). An amend whose worst case, worked out exactly as the step would,
is within what the ledger already holds for this executor (``within``: the values written and
acknowledged) cannot pass a limit the step would have held it to, and is sent at once, as a move
away from the market is; not while a step of that market is on its way (``Ledger.writing``: the
other side's release or the keeper's sync may be lowering what ``written`` says). What the step did besides, the executor checks itself: its lease is
fresh by its own clock (``Lease.fresh``), the ledger is not lost, the market is open as last
read; the book's staleness is the strategy's check alone for these amends (it computed the
targets on a fresh book a few ms before).

An amend sets the order's count to filled + the new remaining (``KalshiClient.amend_order``), so
its worst case at every moment is the larger of the order's before and after: the amended order
replaces the old one here (``amended``), where the step counts the two beside each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from common.domain import MarketMeta, Order, Side, Targets
from common.grid import PriceGrid
from common.ledger import EventPart
from common.order_diff import Action, ActionKind

if TYPE_CHECKING:
    from services.executor.market_pass import MarketPass

AHEAD_SHARE = (9, 10)  # room ahead is held only while the ledger stays within 9/10 of the cap


def ahead_cap(cap: int) -> int:
    """What room ahead may fill the ledger up to, for ``max_total_exposure`` ``cap``."""
    return cap * AHEAD_SHARE[0] // AHEAD_SHARE[1]


def moved_ahead(
    orders: list[Order], side: Side, grid: PriceGrid, ticks: int, size: int = 0
) -> list[Order]:
    """``orders`` with each live ``side`` order moved ``ticks`` toward the market (a bid up, an
    ask down; no further than the grid goes) and resting at least ``size`` contracts (the
    side's quote: a partly filled order is amended back to it). Executions in flight
    (``in-flight:`` stand-ins) keep their price: they happened."""
    return [
        _ahead(o, grid, ticks, size)
        if o.side is side and o.status.is_live and not o.client_order_id.startswith("in-flight:")
        else o
        for o in orders
    ]


def _ahead(order: Order, grid: PriceGrid, ticks: int, size: int) -> Order:
    price = order.price
    for _ in range(ticks):
        step = grid.next_above(price) if order.side is Side.BID else grid.next_below(price)
        if step is None:
            break
        price = step
    resting = max(order.resting_size, size)
    if price == order.price and resting == order.resting_size:
        return order
    return replace(order, price=price, remaining=resting, count=order.filled + resting)


def room_ahead(
    orders: list[Order],
    sides: Iterable[Side],
    meta: MarketMeta,
    targets: Targets | None,
    ticks: int,
) -> list[Order]:
    """``orders`` as the room ahead counts them: each of ``sides``' live orders moved ``ticks``
    toward the market, at the size its side's quote asks for if larger."""
    for side in sides:
        quote = None if targets is None else (targets.bid if side is Side.BID else targets.ask)
        orders = moved_ahead(orders, side, meta.grid, ticks, quote.size if quote else 0)
    return orders


def amended(orders: list[Order], adds: list[Action]) -> list[Order] | None:
    """``orders`` as they rest once ``adds`` are answered, or None unless every one of ``adds``
    is an amend of one of ``orders`` (a new order is recorded before it leaves: the step's)."""
    by_id: dict[str, Action] = {}
    for add in adds:
        if add.kind is not ActionKind.AMEND or add.order is None:
            return None
        by_id[add.order.client_order_id] = add
    out, found = [], 0
    for order in orders:
        amend = by_id.get(order.client_order_id)
        if amend is None:
            out.append(order)
            continue
        found += 1
        out.append(
            replace(order, price=amend.price, remaining=amend.size, count=order.filled + amend.size)
        )
    return out if found == len(by_id) else None


def within(values: Mapping[str, int], held: Mapping[str, int]) -> bool:
    """Whether every value is at most what the ledger holds for it (one it does not hold: no)."""
    return all(name in held and money <= held[name] for name, money in values.items())


class RoomAhead:
    """A market pass's room ahead: whether an amend is ``covers``-ed by it, and ``hold``-ing it
    after the side's answers. ``ticks`` 0 turns it off (``DORA_EXECUTOR_AHEAD_TICKS``)."""

    def __init__(self, market_pass: MarketPass, ticks: int) -> None:
        self.market_pass = market_pass
        self.ticks = ticks

    def _vouched(self, meta: MarketMeta | None) -> bool:
        """What the ledger step checks besides the limits, this executor's to vouch for: its
        lease fresh by its own clock, its part of the ledger believed, Redis with its data, the
        market open (as last read)."""
        mp = self.market_pass
        return (
            self.ticks > 0
            and meta is not None
            and meta.is_open
            and not mp.ledger.lost
            and not mp.safety.blocked.reason
            and mp.safety.lease.fresh
        )

    def covers(self, ticker: str, side: Side, adds: list[Action], meta: MarketMeta) -> bool:
        """Whether ``adds`` are amends whose worst case once answered is within what the ledger
        holds for the side already: the step could not refuse them on a limit, and they go at
        once."""
        mp = self.market_pass
        # a step of this market on its way (the other side's release, the keeper's sync) may
        # lower what ``written`` says the ledger holds: not until it is answered
        if not self._vouched(meta) or mp.ledger.writing[ticker]:
            return False
        orders = amended(mp.working.counted(ticker), adds)
        if orders is None:
            return False
        values, event = mp.ledger_values(ticker, side, [], meta, orders=orders)
        if not within(values, mp.ledger.written):
            return False
        return event is None or within(event.parts, mp.ledger.written_events.get(ticker, {}))

    async def hold(
        self,
        ticker: str,
        side: Side,
        meta: MarketMeta | None,
        resting: dict[str, int],
        event: EventPart | None,
    ) -> bool:
        """Hold the room ahead of the side's resting orders (their worst case moved ``ticks``
        toward the market), checked as any reservation is, up to ``ahead_cap`` of the cap: True
        when the ledger holds it. ``resting``/``event``: the side's values as it rests now."""
        mp = self.market_pass
        ledger = mp.ledger
        if (
            meta is None
            or not self._vouched(meta)
            or (ticker, side) in mp.last_denials
            or not any(o.side is side for o in mp.working.live(ticker))
        ):
            return False
        # the other side's part of the event is written too unless its pass is working on it
        # (``MarketPass.ledger_values``): its room ahead with it
        busy = (ticker, side.opposite) in mp.safety.schedule.inflight
        orders = room_ahead(
            mp.working.counted(ticker),
            (side,) if busy else (side, side.opposite),
            meta,
            mp.markets.targets.get(ticker),
            self.ticks,
        )
        wanted, wanted_event = mp.ledger_values(ticker, side, [], meta, orders=orders)
        up, up_event = ledger.changed(wanted), ledger.event_changed(ticker, wanted_event)
        if not up and up_event is None:
            return True  # held already
        cap = ahead_cap(mp.configs.global_config.max_total_exposure)
        rise = sum(money - ledger.written.get(name, 0) for name, money in up.items())
        if ledger.total + rise > cap:
            return False  # near the cap the room goes to orders (Redis has the last word)
        if up_event is not None and event is not None:
            up_event = replace(up_event, before=event.parts)
        answer = await ledger.reserve(
            mp._ledger_step, ticker, up, cap, False, (), up_event, resting
        )
        return answer.ok
