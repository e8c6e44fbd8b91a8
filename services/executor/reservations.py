"""What this executor holds at risk per market, as the ledger keeps it (``common.ledger``).

For a market and some of its sides: the position's exposure and each side's worst case
(``pos:``, ``bid:``, ``ask:`` fields, for ``max_total_exposure``), and the market's part of its
event's worst loss (``common.event_loss``, for ``max_event_loss``): taken over the working orders
and the executions not yet in the position (``WorkingOrders.counted``), plus ``extra`` orders about
to rest. Pure over the executor's memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from common.domain import MarketMeta, Order, Position, Side
from common.event_loss import position_losses, reserved_orders_loss
from common.ledger import NO_CAP, EventPart, field
from common.risk import side_exposure

EVENT_SIDE_PART = {Side.BID: "b", Side.ASK: "a"}
# Money (1/1,000,000 $) added to a held position's parts: the exchange keeps its own cost basis
# (its rounding of each closing fill's share, a grain of its own when it reports it), which can be
# a few units above dora's; at 170 held markets of one event at its limit, those units passed it.
COST_ROUNDING = 200


def exposure_values(
    position: Position, sides: Iterable[Side], orders: list[Order]
) -> dict[str, int]:
    ticker = position.ticker
    values = {field("pos", position.ticker): position.exposure}
    for side in sides:
        values[field(side.value, ticker)] = side_exposure(side, position.position, orders)
    return values


def event_part(
    meta: MarketMeta | None,
    position: Position,
    sides: Iterable[Side],
    orders: list[Order],
    limit: int = NO_CAP,
    held: Mapping[str, int] | None = None,
) -> EventPart | None:
    """The market's part of its event (None when its event is not known).

    A side's part depends on the position too (an order that closes it counts its gain), so
    the position's parts are written with both sides' (``sides``). When a side is left out (its
    pass is between its reservation and its answers, and only it may write its part), its part
    was reserved against the position as it was then: ``held`` (the parts last written) keeps
    the position's parts from falling below those until that pass writes the market again. A
    lower loss if YES from a bid's fill, written beside an ask's part that does not count the
    gain it now closes at, freed room the ask takes back when it fills."""
    if meta is None or not meta.event_ticker:
        return None
    if_yes, if_no = position_losses(position.position, position.cost)
    if position.position:
        if_yes, if_no = if_yes + COST_ROUNDING, if_no + COST_ROUNDING
    if held is not None:
        if_yes, if_no = max(if_yes, held.get("py", if_yes)), max(if_no, held.get("pn", if_no))
    parts = {"py": if_yes, "pn": if_no}
    for side in sides:
        parts[EVENT_SIDE_PART[side]] = reserved_orders_loss(
            side, orders, position.position, position.cost
        )
    return EventPart(meta.event_ticker, meta.mutually_exclusive, parts, limit)
