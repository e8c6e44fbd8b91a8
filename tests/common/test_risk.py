from hypothesis import given
from hypothesis import strategies as st

from common.config import GlobalConfig, MarketConfig
from common.domain import Order, OrderStatus, Position, Side
from common.order_diff import Action, ActionKind
from common.risk import AccountRisk, check_action, total_pnl, worst_case_exposure

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


def test_pnl_and_exposure() -> None:
    long = Position("A", 1000, 4_000_000, 0, 10_000)
    short = Position("B", -500, -3_000_000)
    assert total_pnl([long, short], {"A": 4500, "B": 6000}) == -10_000 + 500_000 + 0
    assert worst_case_exposure([long], [resting(Side.BID, 4000, 100)]) == 4_000_000 + 400_000
