"""Risk: pre-send checks on the worst case, exposure and daily PnL. Pure functions.

A check returns a ``Denial`` (a reason) or ``None``. The worst case counts every resting order on
the same side as filled: ``position + resting bids + new bid <= max_inventory_yes`` and likewise
for asks against ``max_inventory_no``. Exposure is the money at risk at settlement; an order adds
exposure only for the part that opens inventory. Cancels and decreases are never denied: they
only ever reduce risk.

``approve_actions`` is the one approval loop: the executor's pass and the backtester's decision
step both run a market's actions through it, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from common.config import GlobalConfig, MarketConfig
from common.domain import Order, OrderStatus, Position, Side
from common.numbers import ONE_DOLLAR
from common.order_diff import Action, ActionKind

RATE_LIMITED = "rate_limited"  # the rule of a denial for want of write tokens


@dataclass(frozen=True, slots=True)
class Denial:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """Account-wide facts the checks need, refreshed by the executor each pass."""

    halted: bool
    halt_reason: str
    daily_pnl: int
    total_exposure: int  # positions' exposure plus the worst case of every resting order


def resting_same_side(orders: Iterable[Order], side: Side, exclude: Order | None = None) -> int:
    """Remaining size of every live order on ``side`` (counting unknown/pending as resting)."""
    return sum(
        o.resting_size for o in orders if o.side is side and o.status.is_live and o is not exclude
    )


def opening_count(side: Side, position: int, resting: int, count: int) -> int:
    """The part of ``count`` that would add inventory, after the position and the resting
    same-side orders fill."""
    if side is Side.BID:
        before = position + resting
        return max(0, before + count) - max(0, before)
    before = -position + resting
    return max(0, before + count) - max(0, before)


def order_exposure(side: Side, price: int, count: int) -> int:
    """Money at risk if ``count`` opening contracts fill: YES cost for a bid, NO cost for an ask."""
    return (price if side is Side.BID else ONE_DOLLAR - price) * count


def side_exposure(side: Side, position: int, orders: Iterable[Order]) -> int:
    """Money at risk if every live ``side`` order of one market fills, given the signed
    ``position``: each order's opening part, cheapest first."""
    total = resting = 0
    for o in sorted((o for o in orders if o.side is side and o.status.is_live), key=_price):
        size = o.resting_size
        total += order_exposure(side, o.price, opening_count(side, position, resting, size))
        resting += size
    return total


def _price(order: Order) -> int:
    return order.price


def worst_case_exposure(positions: Iterable[Position], orders: Iterable[Order]) -> int:
    """Exposure of all positions plus each resting order's opening part, assuming they fill."""
    return worst_case_of({p.ticker: (p.position, p.exposure) for p in positions}, orders)


def worst_case_of(held: Mapping[str, tuple[int, int]], orders: Iterable[Order]) -> int:
    """``worst_case_exposure`` from each market's (signed position, its exposure), as the
    exchange reports them (its ``market_exposure``) or as dora holds them."""
    by_ticker: dict[str, list[Order]] = {}
    for order in orders:
        if order.status.is_live:
            by_ticker.setdefault(order.ticker, []).append(order)
    total = sum(exposure for _, exposure in held.values())
    for ticker, market_orders in by_ticker.items():
        pos = held[ticker][0] if ticker in held else 0
        for side in (Side.BID, Side.ASK):
            total += side_exposure(side, pos, market_orders)
    return total


def check_action(
    action: Action,
    position: Position,
    working: list[Order],
    config: MarketConfig,
    global_config: GlobalConfig,
    account: AccountRisk,
) -> Denial | None:
    """May this action be sent? ``working`` holds this market's live orders."""
    if not action.adds_risk:
        return None
    if account.halted:
        return Denial("halted", account.halt_reason or "trading is halted")
    if not global_config.trading_enabled:
        return Denial("trading_disabled", "global trading_enabled is false")
    if not config.enabled:
        return Denial("market_disabled", f"{config.market_id} is disabled")
    if account.daily_pnl <= -global_config.max_daily_loss:
        return Denial(
            "daily_loss", f"daily PnL {account.daily_pnl} <= -{global_config.max_daily_loss}"
        )
    side = action.side
    resting = resting_same_side(working, side, exclude=action.order)
    pos = position.position
    if side is Side.BID:
        worst = pos + resting + action.size
        if worst > config.max_inventory_yes:
            return Denial(
                "max_inventory_yes",
                f"position {pos} + resting bids {resting} + {action.size} > {config.max_inventory_yes}",
            )
    else:
        worst = -pos + resting + action.size
        if worst > config.max_inventory_no:
            return Denial(
                "max_inventory_no",
                f"-position {-pos} + resting asks {resting} + {action.size} > {config.max_inventory_no}",
            )
    opening = opening_count(side, pos, resting, action.size)
    added = order_exposure(side, action.price, opening)
    if action.order is not None:
        # An amend replaces the order: its old worst case is released.
        old = action.order
        old_size = old.resting_size
        added -= order_exposure(side, old.price, opening_count(side, pos, resting, old_size))
    if added > 0 and account.total_exposure + added > global_config.max_total_exposure:
        return Denial(
            "max_total_exposure",
            f"exposure {account.total_exposure} + {added} > {global_config.max_total_exposure}",
        )
    return None


@dataclass(frozen=True, slots=True)
class WriteBudget:
    """Write tokens the actions may spend and what each kind of action costs. The backtester
    passes its rate bucket's; the live executor none (its requests wait for tokens instead)."""

    tokens: int
    costs: Mapping[ActionKind, int]


@dataclass(frozen=True, slots=True)
class Approval:
    """The decisions on one market's actions: the approved ones in the order to send them
    (risk-reducing first), each denied one with its reason, and the write tokens spent."""

    approved: tuple[Action, ...]
    denied: tuple[tuple[Action, Denial], ...]
    tokens_spent: int = 0


def approve_actions(
    actions: Sequence[Action],
    position: Position,
    working: Sequence[Order],
    config: MarketConfig,
    global_config: GlobalConfig,
    account: AccountRisk,
    budget: WriteBudget | None = None,
) -> Approval:
    """Check ``actions`` of one market, risk-reducing ones first, each against ``working``
    (the market's live orders) with every action approved before it counted as done: a cancelled
    order no longer rests, a placed, amended or decreased one rests at its new price and size.
    An action the ``budget`` cannot pay for is denied and counts as not done (the order it would
    have cancelled still rests), so the worst case of what is sent is never understated."""
    ordered = [a for a in actions if not a.adds_risk] + [a for a in actions if a.adds_risk]
    resting = list(working)
    approved: list[Action] = []
    denied: list[tuple[Action, Denial]] = []
    spent = 0
    for action in ordered:
        denial = check_action(action, position, resting, config, global_config, account)
        if denial is None and budget is not None:
            cost = budget.costs[action.kind]
            if spent + cost > budget.tokens:
                denial = Denial(
                    RATE_LIMITED,
                    f"{action.kind.value} costs {cost} write tokens, {budget.tokens - spent} left",
                )
            else:
                spent += cost
        if denial is not None:
            denied.append((action, denial))
            continue
        approved.append(action)
        resting = [o for o in resting if o is not action.order]
        if action.kind is not ActionKind.CANCEL:
            resting.append(_as_resting(action))
    return Approval(tuple(approved), tuple(denied), spent)


def _as_resting(action: Action) -> Order:
    """The order an approved place, amend or decrease leaves resting, for the next checks."""
    return Order(
        action.ticker,
        action.side,
        action.price,
        action.size,
        "virtual",
        status=OrderStatus.PENDING,
        remaining=action.size,
    )


def total_pnl(positions: Iterable[Position], marks: Mapping[str, int]) -> int:
    """Net realized PnL (after fees) plus open positions valued at ``marks`` (YES prices).
    A market without a mark is valued at its cost (no unrealized PnL)."""
    total = 0
    for p in positions:
        total += p.net_realized_pnl
        mark = marks.get(p.ticker)
        if mark is not None and p.position:
            total += p.unrealized_pnl(mark)
    return total


def unrealized_pnl(positions: Iterable[Position], marks: Mapping[str, int]) -> int:
    return sum(
        p.unrealized_pnl(marks[p.ticker]) for p in positions if p.position and p.ticker in marks
    )
