"""From working orders and target quotes to the fewest exchange actions (original plan §4 step 3).

Per side of one market:

- no target -> cancel what rests there;
- a target and no order -> place;
- the order at the target price or up to one tick behind it (a lower bid, a higher ask: safer
  than the target) -> keep it, or decrease it when the target size is smaller (a decrease keeps
  queue priority). A fill that left it smaller is not topped up: it is replaced once filled, or
  resized by the next price amend (a top-up write per partial fill cost more tokens than the
  fills it added);
- more aggressive than the target (a higher bid, a lower ask), even by one tick, or further
  behind -> amend price and size in place: one write instead of cancel + place. An order never
  rests at a price the targets consider too aggressive (backtests: keeping one tick too
  aggressive gave up ~8 % of the calm-market PnL);
- extra orders on one side (after a restart, say) -> cancel all but the best match.

Orders whose state is in flux (pending, or unknown after a transport error) are left alone: the
executor resolves them first. Pure and deterministic: the backtester uses it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.domain import Order, OrderStatus, Quote, Side, Targets
from common.grid import PriceGrid


class ActionKind(StrEnum):
    PLACE = "place"
    AMEND = "amend"
    DECREASE = "decrease"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    ticker: str
    side: Side
    price: int  # the price the order will rest at after the action
    size: int  # the remaining size it will rest with after the action (0 for a cancel)
    order: Order | None = None  # the working order acted on (None for a place)
    reason: str = ""

    @property
    def adds_risk(self) -> bool:
        """Could this action increase what we might end up holding? Cancels and decreases
        never do; they are always allowed, even while halted."""
        return self.kind not in (ActionKind.CANCEL, ActionKind.DECREASE)

    @property
    def moves_away(self) -> bool:
        """An amend that leaves less at risk in every outcome: its price away from the market
        (a bid lower, an ask higher) and its size no larger. The worst case, its event's loss
        either way and the inventory only fall. (Still ``adds_risk`` for approval: a halt or
        a pull denies it like any amend.)"""
        order = self.order
        if self.kind is not ActionKind.AMEND or order is None:
            return False
        if self.size > order.resting_size:
            return False
        return self.price < order.price if self.side is Side.BID else self.price > order.price


def diff_orders(working: list[Order], targets: Targets, grid: PriceGrid) -> list[Action]:
    actions: list[Action] = []
    for side, quote in ((Side.BID, targets.bid), (Side.ASK, targets.ask)):
        mine = [o for o in working if o.side is side and o.status.is_live]
        actions.extend(_diff_side(targets.ticker, side, mine, quote, grid))
    return actions


def _diff_side(
    ticker: str, side: Side, mine: list[Order], quote: Quote | None, grid: PriceGrid
) -> list[Action]:
    if any(o.status is not OrderStatus.RESTING for o in mine):
        # Something is pending or unknown on this side: act only on what is certain (cancel
        # resting orders we no longer want), never add until the unknown is resolved.
        if quote is None:
            return [_cancel(o, "no_target") for o in mine if o.status is OrderStatus.RESTING]
        return []
    if quote is None:
        return [_cancel(o, "no_target") for o in mine]
    if not mine:
        return [Action(ActionKind.PLACE, ticker, side, quote.price, quote.size, None, quote.reason)]
    keep = min(mine, key=lambda o: (abs(o.price - quote.price), -o.remaining))
    actions = [_cancel(o, "duplicate_side") for o in mine if o is not keep]
    # how far the order sits behind the target: > 0 safer (further from the touch), < 0 more
    # aggressive than the target wants
    behind = quote.price - keep.price if side is Side.BID else keep.price - quote.price
    if 0 <= behind <= grid.tick_at(quote.price):
        if keep.remaining > quote.size:
            actions.append(
                Action(ActionKind.DECREASE, ticker, side, keep.price, quote.size, keep, "size_down")
            )
        return actions
    actions.append(
        Action(ActionKind.AMEND, ticker, side, quote.price, quote.size, keep, quote.reason)
    )
    return actions


def _cancel(order: Order, reason: str) -> Action:
    return Action(ActionKind.CANCEL, order.ticker, order.side, order.price, 0, order, reason)
