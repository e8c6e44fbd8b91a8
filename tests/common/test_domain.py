import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain import Fill, MarketMeta, MarketStatus, Position, Side, make_client_order_id
from common.grid import PriceGrid


def fill(side: Side, price: int, count: int, fee: int = 0, n: int = 0) -> Fill:
    return Fill(f"t{n}", "o1", "MKT", side, price, count, fee, False, 1000 + n)


def test_long_round_trip_realizes_spread_minus_fees() -> None:
    pos = Position("MKT").apply_fill(fill(Side.BID, 4000, 1000, fee=70_000))
    assert pos.position == 1000 and pos.cost == 4_000_000 and pos.exposure == 4_000_000
    pos = pos.apply_fill(fill(Side.ASK, 4500, 1000, n=1))
    assert pos.position == 0 and pos.cost == 0
    assert pos.realized_pnl == 500_000  # $0.05 x 10 contracts
    assert pos.net_realized_pnl == 430_000


def test_short_yes_is_long_no() -> None:
    pos = Position("MKT").apply_fill(fill(Side.ASK, 7000, 200))  # buy 2 NO at 0.30
    assert pos.position == -200 and pos.exposure == 600_000  # $0.60 of NO at risk
    pos = pos.apply_fill(fill(Side.BID, 6000, 200, n=1))  # buy back YES cheaper
    assert pos.position == 0 and pos.realized_pnl == 200_000


def test_flip_through_zero_opens_the_rest_at_the_fill_price() -> None:
    pos = Position("MKT").apply_fill(fill(Side.BID, 5000, 100))
    pos = pos.apply_fill(fill(Side.ASK, 5200, 300, n=1))
    assert pos.position == -200 and pos.cost == -5200 * 200
    assert pos.realized_pnl == 200 * 100


def test_wrong_market_is_refused() -> None:
    with pytest.raises(ValueError):
        Position("OTHER").apply_fill(fill(Side.BID, 5000, 1))


trade = st.tuples(
    st.sampled_from(Side), st.integers(1, 9_999), st.integers(1, 10_000), st.integers(0, 5_000)
)


@given(st.lists(trade, max_size=40))
def test_pnl_is_exact_cash_accounting(trades: list[tuple[Side, int, int, int]]) -> None:
    """Realized + unrealized at any mark equals the cash flows valued at that mark."""
    pos = Position("MKT")
    cash = 0
    for n, (side, price, count, fee) in enumerate(trades):
        pos = pos.apply_fill(fill(side, price, count, fee, n))
        cash += -side.sign * price * count - fee
    assert pos.position == sum(s.sign * c for s, _, c, _ in trades)
    for mark in (0, 5_000, 10_000):
        assert pos.net_realized_pnl + pos.unrealized_pnl(mark) == cash + mark * pos.position
    assert pos.exposure >= 0


@pytest.mark.parametrize("status", list(MarketStatus))
def test_every_known_market_status_parses_to_itself(status: MarketStatus) -> None:
    assert MarketStatus.parse(status.value) is status


@pytest.mark.parametrize("value", ["suspended", "", "ACTIVE", None, 7, ["active"]])
def test_a_market_status_dora_does_not_know_is_unknown_and_not_open(value: object) -> None:
    status = MarketStatus.parse(value)
    assert status is MarketStatus.UNKNOWN
    assert not MarketMeta("KX", status, 0, PriceGrid.linear_cent()).is_open


def test_only_an_active_market_is_open() -> None:
    grid = PriceGrid.linear_cent()
    assert [s for s in MarketStatus if MarketMeta("KX", s, 0, grid).is_open] == [
        MarketStatus.ACTIVE
    ]


def test_client_order_id_is_deterministic_uuid() -> None:
    first = make_client_order_id("exec", "KX", Side.BID, 7)
    assert first == make_client_order_id("exec", "KX", "bid", 7)
    assert first != make_client_order_id("exec", "KX", Side.BID, 8)
    assert len(first) == 36 and first.count("-") == 4
