from hypothesis import given
from hypothesis import strategies as st

from common.config import GlobalConfig, MarketConfig
from common.domain import Order, OrderStatus, Position, Side
from common.order_diff import Action, ActionKind
from common.risk import (
    RATE_LIMITED,
    AccountRisk,
    WriteBudget,
    approve_actions,
    check_action,
    total_pnl,
    worst_case_exposure,
)

CONFIG = MarketConfig(
    "KX", enabled=True, max_inventory_yes=1000, max_inventory_no=800, quote_size=100
)
GLOBAL = GlobalConfig(max_total_exposure=100_000_000, max_daily_loss=50_000_000)
OK = AccountRisk(False, "", 0, 0)


def place(side: Side, price: int, size: int) -> Action:
    return Action(ActionKind.PLACE, "KX", side, price, size)


def resting(side: Side, price: int, size: int) -> Order:
    return Order("KX", side, price, size, f"c{side}{price}", "o", OrderStatus.RESTING, 0, size)


def test_worst_case_counts_resting_same_side_orders() -> None:
    working = [resting(Side.BID, 4000, 600)]
    assert (
        check_action(place(Side.BID, 4100, 300), Position("KX", 100), working, CONFIG, GLOBAL, OK)
        is None
    )
    denial = check_action(
        place(Side.BID, 4100, 400), Position("KX", 100), working, CONFIG, GLOBAL, OK
    )
    assert denial is not None and denial.rule == "max_inventory_yes"
    denial = check_action(place(Side.ASK, 4100, 900), Position("KX"), [], CONFIG, GLOBAL, OK)
    assert denial is not None and denial.rule == "max_inventory_no"


def test_halt_loss_and_disabled_deny_adding_but_not_cancelling() -> None:
    cancel = Action(ActionKind.CANCEL, "KX", Side.BID, 4000, 0, resting(Side.BID, 4000, 1))
    for account, rule in [
        (AccountRisk(True, "operator", 0, 0), "halted"),
        (AccountRisk(False, "", -50_000_000, 0), "daily_loss"),
    ]:
        denial = check_action(
            place(Side.BID, 4000, 100), Position("KX"), [], CONFIG, GLOBAL, account
        )
        assert denial is not None and denial.rule == rule
        assert check_action(cancel, Position("KX"), [], CONFIG, GLOBAL, account) is None


def test_exposure_cap_only_for_opening_orders() -> None:
    tight = GlobalConfig(max_total_exposure=1_000_000)
    account = AccountRisk(False, "", 0, 900_000)
    denial = check_action(place(Side.BID, 5000, 100), Position("KX"), [], CONFIG, tight, account)
    assert denial is not None and denial.rule == "max_total_exposure"
    # selling YES while long reduces exposure: allowed even at the cap
    assert (
        check_action(
            place(Side.ASK, 5000, 100), Position("KX", 200, 200 * 4000), [], CONFIG, tight, account
        )
        is None
    )


@given(
    st.lists(
        st.tuples(st.sampled_from(Side), st.integers(1, 99), st.integers(1, 600)), max_size=30
    ),
    st.integers(-800, 1000),
)
def test_approved_orders_never_exceed_caps_in_the_worst_case(orders, position) -> None:  # type: ignore[no-untyped-def]
    working: list[Order] = []
    pos = Position("KX", position, position * 5000)
    for i, (side, price, size) in enumerate(orders):
        if check_action(place(side, price * 100, size), pos, working, CONFIG, GLOBAL, OK) is None:
            working.append(
                Order("KX", side, price * 100, size, f"c{i}", None, OrderStatus.PENDING, 0, size)
            )
    bids = sum(o.remaining for o in working if o.side is Side.BID)
    asks = sum(o.remaining for o in working if o.side is Side.ASK)
    assert position + bids <= max(CONFIG.max_inventory_yes, position)
    assert -position + asks <= max(CONFIG.max_inventory_no, -position)


COSTS = {ActionKind.PLACE: 10, ActionKind.AMEND: 10, ActionKind.DECREASE: 10, ActionKind.CANCEL: 2}


def cancel(order: Order) -> Action:
    return Action(ActionKind.CANCEL, "KX", order.side, order.price, 0, order)


def test_risk_reducing_actions_are_approved_first_and_count_as_done() -> None:
    """The cancel frees the room the place needs, whatever order the actions came in."""
    old = resting(Side.BID, 4000, 900)
    new = place(Side.BID, 4100, 900)
    approval = approve_actions([new, cancel(old)], Position("KX"), [old], CONFIG, GLOBAL, OK)
    assert approval.approved == (cancel(old), new) and approval.denied == ()


def test_an_approved_order_counts_as_resting_for_the_next() -> None:
    first, second = place(Side.BID, 4000, 600), place(Side.BID, 3900, 600)
    approval = approve_actions([first, second], Position("KX"), [], CONFIG, GLOBAL, OK)
    assert approval.approved == (first,)
    [(denied, denial)] = approval.denied
    assert denied == second and denial.rule == "max_inventory_yes"
    assert "resting bids 600" in denial.detail


def test_an_action_the_budget_cannot_pay_for_is_denied_and_counts_as_not_done() -> None:
    old = resting(Side.BID, 4000, 900)
    new = place(Side.BID, 4100, 900)
    paid = approve_actions(
        [cancel(old), new], Position("KX"), [old], CONFIG, GLOBAL, OK, WriteBudget(10, COSTS)
    )
    assert paid.approved == (cancel(old),) and paid.tokens_spent == 2
    assert [d.rule for _, d in paid.denied] == [RATE_LIMITED]
    # the cancel cannot be paid for: the old bid still rests, so the place breaks the cap
    unpaid = approve_actions(
        [cancel(old), new], Position("KX"), [old], CONFIG, GLOBAL, OK, WriteBudget(1, COSTS)
    )
    assert unpaid.approved == () and unpaid.tokens_spent == 0
    assert [d.rule for _, d in unpaid.denied] == [RATE_LIMITED, "max_inventory_yes"]


@given(
    st.lists(st.tuples(st.sampled_from(Side), st.integers(1, 99), st.integers(1, 600)), max_size=6),
    st.lists(
        st.tuples(
            st.sampled_from(ActionKind),
            st.sampled_from(Side),
            st.integers(1, 99),
            st.integers(1, 600),
        ),
        max_size=8,
    ),
    st.integers(-800, 1000),
    st.one_of(st.none(), st.integers(0, 60)),
)
def test_what_is_approved_never_rests_past_a_cap(  # type: ignore[no-untyped-def]
    orders, wanted, position, tokens
) -> None:
    """Whatever the working orders, the actions and the budget: once the approved actions are
    done, each side that got an order added or moved stays within its cap."""
    working = [
        Order("KX", side, price * 100, size, f"w{i}", f"o{i}", OrderStatus.RESTING, 0, size)
        for i, (side, price, size) in enumerate(orders)
    ]
    free = list(working)  # each working order is acted on at most once, as the diff does
    actions = []
    for kind, side, price, size in wanted:
        if kind is ActionKind.PLACE:
            actions.append(place(side, price * 100, size))
        elif free:
            order = free.pop()
            size = 0 if kind is ActionKind.CANCEL else min(size, order.remaining)
            price = order.price if kind is not ActionKind.AMEND else price * 100
            actions.append(Action(kind, "KX", order.side, price, size, order))
    budget = None if tokens is None else WriteBudget(tokens, COSTS)
    pos = Position("KX", position, position * 5000)
    approval = approve_actions(actions, pos, working, CONFIG, GLOBAL, OK, budget)
    final = list(working)
    for action in approval.approved:
        final = [o for o in final if o is not action.order]
        if action.kind is not ActionKind.CANCEL:
            final.append(resting_after(action))
    added = {a.side for a in approval.approved if a.adds_risk}
    bids = sum(o.remaining for o in final if o.side is Side.BID)
    asks = sum(o.remaining for o in final if o.side is Side.ASK)
    if Side.BID in added:
        assert position + bids <= CONFIG.max_inventory_yes
    if Side.ASK in added:
        assert -position + asks <= CONFIG.max_inventory_no
    assert approval.tokens_spent <= (tokens if tokens is not None else 0)
    assert len(approval.approved) + len(approval.denied) == len(actions)


def resting_after(action: Action) -> Order:
    return Order(
        "KX", action.side, action.price, action.size, "a", None, OrderStatus.PENDING, 0, action.size
    )


def test_pnl_and_exposure() -> None:
    long = Position("A", 1000, 4_000_000, 0, 10_000)
    short = Position("B", -500, -3_000_000)
    assert total_pnl([long, short], {"A": 4500, "B": 6000}) == -10_000 + 500_000 + 0
    assert worst_case_exposure([long], [resting(Side.BID, 4000, 100)]) == 4_000_000 + 400_000
