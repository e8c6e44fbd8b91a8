"""An execution not in the position yet stands in the worst case at the worst price its order
rested at (``services.executor.fills_in_flight``): pure, over the executor's memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from common.domain import Order, OrderStatus, Position, Side
from common.event_loss import market_loss
from common.keys import Keys
from common.log import get_logger
from services.executor.working import WorkingOrders


def _working() -> WorkingOrders:
    return WorkingOrders(None, Keys(), get_logger("executor"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("side", "first", "amended"), [(Side.BID, 4900, 4000), (Side.ASK, 4000, 4900)]
)
def test_an_execution_before_an_amend_stands_at_the_price_it_executed_at(
    side: Side, first: int, amended: int
) -> None:
    """2 of 5 executed at $0.49 (a bid), then the order was amended down to $0.40; the amend's
    answer says 2 executed, their fill events are not read yet. The stand-in used the order's
    new price: 2 x $0.40 lost if NO instead of 2 x $0.49, $0.18 under what the exchange holds
    (the ask the same way, amended up): one way for the exchange to hold an event past
    max_event_loss while the ledger holds it at the limit (the short chaos run once saw $0.45
    past it, under a latency spike)."""
    working = _working()
    order = Order("KX", side, first, 500, "c1", "ex-1", OrderStatus.RESTING, 0, 500)
    working.apply(order)
    working.apply(replace(order, price=amended, filled=200, remaining=300))
    counted = working.counted("KX")
    # at the exchange: 2 held at the first price, 3 resting at the amended one
    held = (
        Position("KX", 200, first * 200) if side is Side.BID else Position("KX", -200, -first * 200)
    )
    resting = [replace(order, price=amended, filled=200, remaining=300)]
    truth = market_loss(held.position, held.cost, resting)
    mine = market_loss(0, 0, counted)
    assert mine.if_no >= truth.if_no and mine.if_yes >= truth.if_yes
