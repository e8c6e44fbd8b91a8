from hypothesis import given
from hypothesis import strategies as st

from common.domain import Order, OrderStatus, Quote, Side, Targets
from common.grid import PriceGrid
from common.order_diff import Action, ActionKind, diff_orders

GRID = PriceGrid.linear_cent()


def order(
    side: Side,
    price: int,
    remaining: int,
    status: OrderStatus = OrderStatus.RESTING,
    filled: int = 0,
    coid: str = "c",
) -> Order:
    return Order(
        "KX",
        side,
        price,
        remaining + filled,
        coid + str(price) + side,
        "o" + coid + str(price),
        status,
        filled,
        remaining,
    )


def targets(bid: tuple[int, int] | None, ask: tuple[int, int] | None) -> Targets:
    return Targets(
        "KX", Quote(Side.BID, *bid) if bid else None, Quote(Side.ASK, *ask) if ask else None, "t", 0
    )


def kinds(actions: list[Action]) -> list[tuple[ActionKind, Side]]:
    return [(a.kind, a.side) for a in actions]


def test_place_both_sides_from_nothing() -> None:
    acts = diff_orders([], targets((4000, 500), (4500, 500)), GRID)
    assert kinds(acts) == [(ActionKind.PLACE, Side.BID), (ActionKind.PLACE, Side.ASK)]


def test_nothing_when_within_one_tick() -> None:
    working = [order(Side.BID, 4000, 500), order(Side.ASK, 4500, 500)]
    assert diff_orders(working, targets((4100, 500), (4400, 500)), GRID) == []


def test_more_aggressive_than_the_target_is_moved_back_at_once() -> None:
    # one tick too high a bid / too low an ask: the targets call it unsafe, so it moves
    working = [order(Side.BID, 4100, 500), order(Side.ASK, 4400, 500)]
    acts = diff_orders(working, targets((4000, 500), (4500, 500)), GRID)
    assert kinds(acts) == [(ActionKind.AMEND, Side.BID), (ActionKind.AMEND, Side.ASK)]
    assert [(a.price, a.size) for a in acts] == [(4000, 500), (4500, 500)]


def test_a_partial_fill_is_not_topped_up_but_the_next_amend_restores_the_size() -> None:
    working = [order(Side.BID, 4000, 100, filled=400)]
    assert diff_orders(working, targets((4000, 500), None), GRID) == []
    acts = diff_orders(working, targets((3800, 500), None), GRID)
    assert kinds(acts) == [(ActionKind.AMEND, Side.BID)] and (acts[0].price, acts[0].size) == (
        3800,
        500,
    )


def test_decrease_when_only_size_falls() -> None:
    acts = diff_orders([order(Side.BID, 4000, 500)], targets((4000, 300), None), GRID)
    assert kinds(acts) == [(ActionKind.DECREASE, Side.BID)] and acts[0].size == 300


def test_amend_when_price_moves_and_cancel_when_gone() -> None:
    working = [order(Side.BID, 4000, 500), order(Side.ASK, 4500, 500)]
    acts = diff_orders(working, targets((3700, 500), None), GRID)
    assert kinds(acts) == [(ActionKind.AMEND, Side.BID), (ActionKind.CANCEL, Side.ASK)]
    assert acts[0].price == 3700 and acts[0].size == 500


def test_duplicates_on_a_side_are_cancelled() -> None:
    working = [order(Side.BID, 4000, 500, coid="a"), order(Side.BID, 3000, 500, coid="b")]
    acts = diff_orders(working, targets((4000, 500), None), GRID)
    assert kinds(acts) == [(ActionKind.CANCEL, Side.BID)] and acts[0].order is working[1]


def test_unknown_orders_block_adding_on_that_side() -> None:
    working = [order(Side.BID, 4000, 500, OrderStatus.UNKNOWN)]
    assert diff_orders(working, targets((3000, 500), None), GRID) == []


@given(
    st.lists(st.tuples(st.sampled_from(Side), st.integers(1, 99), st.integers(1, 50)), max_size=4),
    st.one_of(st.none(), st.tuples(st.integers(1, 99), st.integers(1, 50))),
    st.one_of(st.none(), st.tuples(st.integers(1, 99), st.integers(1, 50))),
)
def test_after_the_actions_each_side_matches_its_target(working_spec, bid, ask) -> None:  # type: ignore[no-untyped-def]
    working = [order(s, p * 100, q * 100, coid=str(i)) for i, (s, p, q) in enumerate(working_spec)]
    t = targets(
        (bid[0] * 100, bid[1] * 100) if bid else None, (ask[0] * 100, ask[1] * 100) if ask else None
    )
    acts = diff_orders(working, t, GRID)
    # apply the actions
    book = {o.client_order_id: (o.side, o.price, o.remaining) for o in working}
    for a in acts:
        if a.kind is ActionKind.PLACE:
            book[f"new{a.side}"] = (a.side, a.price, a.size)
        elif a.kind is ActionKind.CANCEL:
            assert a.order is not None
            del book[a.order.client_order_id]
        else:
            assert a.order is not None
            book[a.order.client_order_id] = (a.side, a.price, a.size)
    for side, quote in ((Side.BID, t.bid), (Side.ASK, t.ask)):
        left = [v for v in book.values() if v[0] is side]
        if quote is None:
            assert left == []
        else:
            assert len(left) == 1
            _, price, size = left[0]
            # at the target or at most one tick behind it, never more aggressive
            behind = quote.price - price if side is Side.BID else price - quote.price
            assert 0 <= behind <= 100 and 0 < size <= quote.size
