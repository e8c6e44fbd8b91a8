"""The simulator charges Kalshi's rounding fee (CHANGES-3.34.md "Fees"): a non-direct member's
balance moves in whole cents, a direct member's in $0.0001; fills report the trade fee."""

from __future__ import annotations

from common.fees import CENT, FeeType, maker_fee, taker_fee
from common.numbers import COUNT_SCALE
from sim.engine import OrderRequest
from sim.model import BookSide
from tests.sim.simtest_helpers import T0, make_exchange

BID, ASK = BookSide.BID, BookSide.ASK


def test_one_maker_contract_at_fifty_cents_takes_a_cent_from_a_non_direct_member() -> None:
    ex = make_exchange(accounts=("maker", "taker"), direct=False)
    market = next(m for m in ex.markets.values() if m.fee_type is FeeType.QUADRATIC_WITH_MAKER_FEES)
    maker, taker = ex.accounts["maker"], ex.accounts["taker"]
    maker_cash, taker_cash = maker.cash, taker.cash
    ex.create_order("maker", OrderRequest(market.ticker, BID, 5000, COUNT_SCALE), T0)
    ex.create_order("taker", OrderRequest(market.ticker, ASK, 5000, COUNT_SCALE), T0 + 1)
    (maker_fill,) = maker.fills
    trade_fee = maker_fee(market.fee_type, 5000, COUNT_SCALE, market.fee_multiplier_pct)
    assert maker_fill.fee == trade_fee == 4_400  # what fee_cost reports
    assert maker_cash - maker.cash == 5000 * COUNT_SCALE + CENT  # $0.50 + $0.01
    assert (maker_cash - maker.cash) % CENT == 0 and (taker_cash - taker.cash) % CENT == 0
    assert maker.rounding_fees == CENT - trade_fee
    assert ex.total_money() == ex.deposits


def test_a_direct_member_pays_only_the_trade_fee() -> None:
    ex = make_exchange(accounts=("maker", "taker"), direct=True)
    market = next(m for m in ex.markets.values() if m.fee_type is FeeType.QUADRATIC)
    taker = ex.accounts["taker"]
    before = taker.cash
    ex.create_order("maker", OrderRequest(market.ticker, BID, 5000, COUNT_SCALE), T0)
    ex.create_order("taker", OrderRequest(market.ticker, ASK, 5000, COUNT_SCALE), T0 + 1)
    fee = taker_fee(5000, COUNT_SCALE, market.fee_multiplier_pct)
    assert before - taker.cash == 5000 * COUNT_SCALE + fee and taker.rounding_fees == 0
