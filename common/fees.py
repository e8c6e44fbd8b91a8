"""Kalshi trading fees in exact integer money (API.md §8, CHANGES-3.34.md "Fees").

Per fill, the *trade fee* is ``rate x M x C x P x (1 - P)`` rounded up to $0.0001, where P is the
YES price (the product is symmetric), C the contracts and M the series fee multiplier. Takers pay
0.07; makers pay nothing on ``quadratic`` series, 0.0175 on ``quadratic_with_maker_fees`` and 0.035
on ``quadratic_with_combo_maker_fees``. Multipliers are carried as integer hundredths (1.0 -> 100).

A fee type dora does not know the rates of (``flat``, whose table is not published in the API
docs, ``margin_market_maker_program_fees``, or any value Kalshi adds later) is priced
conservatively: makers as takers, until the exchange says otherwise.

Then the *rounding fee*: the fill's balance change (revenue - trade fee) is floored to the
account's balance precision ($0.01 for non-direct members, $0.0001 for direct members); what the
floor took is the rounding fee. A per-order accumulator of those roundings refunds a whole cent
(a *rebate*) each time it exceeds $0.01, so an order's many small fills cost what one equivalent
fill would. ``RoundingFee.apply`` is that rule, the same in dora and in the simulator. (A rebate
can exceed its own fill's fees, a zero-fee maker fill at a subpenny price say; over an order the
rebates never exceed the roundings paid. The docs say the accumulator refunds once it *exceeds*
$0.01; an accumulator of exactly $0.01 waits for the next fill.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.numbers import COUNT_SCALE, MONEY_SCALE, PRICE_SCALE, ceil_div

FEE_ROUNDING = MONEY_SCALE // 10_000  # trade fees are rounded up to $0.0001
CENT = MONEY_SCALE // 100
NON_DIRECT_PRECISION = CENT  # a non-direct member's balance moves in whole cents
DIRECT_PRECISION = MONEY_SCALE // 10_000  # a direct member's in $0.0001
REBATE = CENT  # what the accumulator refunds each time it passes it


class FeeType(StrEnum):
    QUADRATIC = "quadratic"
    QUADRATIC_WITH_MAKER_FEES = "quadratic_with_maker_fees"
    QUADRATIC_WITH_COMBO_MAKER_FEES = "quadratic_with_combo_maker_fees"
    FLAT = "flat"
    MARGIN_MARKET_MAKER_PROGRAM_FEES = "margin_market_maker_program_fees"
    UNKNOWN = "unknown"  # a value dora does not know yet: priced conservatively

    @classmethod
    def parse(cls, value: object) -> FeeType:
        """Kalshi's fee type; a value dora does not know is ``UNKNOWN`` (never an error)."""
        if isinstance(value, str) and value in _FEE_TYPE_VALUES:
            return cls(value)
        return cls.UNKNOWN

    @property
    def rates_known(self) -> bool:
        """False when dora prices this type conservatively (makers pay the taker rate)."""
        return self in MAKER_RATE_BP


_FEE_TYPE_VALUES = frozenset(FeeType)

# rates in 1/10,000 (0.07 -> 700)
TAKER_RATE_BP = 700
MAKER_RATE_BP = {
    FeeType.QUADRATIC: 0,
    FeeType.QUADRATIC_WITH_MAKER_FEES: 175,
    FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES: 350,
}


def maker_rate_bp(fee_type: FeeType) -> int:
    """The maker rate of ``fee_type``; the taker rate where dora does not know it."""
    return MAKER_RATE_BP.get(fee_type, TAKER_RATE_BP)


def parse_fee_type(value: object) -> FeeType:
    return FeeType.parse(value)


def fee_for(rate_bp: int, multiplier_pct: int, price: int, count: int) -> int:
    """Fee in micro-dollars for ``count`` centi-contracts at YES ``price``, rounded up to $0.0001."""
    if rate_bp == 0 or multiplier_pct == 0 or count == 0:
        return 0
    # dollars = rate_bp/1e4 * mult/100 * count/COUNT_SCALE * price/PRICE_SCALE * (1-price)/PRICE_SCALE
    numerator = rate_bp * multiplier_pct * count * price * (PRICE_SCALE - price) * MONEY_SCALE
    denominator = 10_000 * 100 * COUNT_SCALE * PRICE_SCALE * PRICE_SCALE
    exact_micros_ceil = ceil_div(numerator, denominator)
    return ceil_div(exact_micros_ceil, FEE_ROUNDING) * FEE_ROUNDING


def taker_fee(price: int, count: int, multiplier_pct: int = 100) -> int:
    return fee_for(TAKER_RATE_BP, multiplier_pct, price, count)


def maker_fee(fee_type: FeeType, price: int, count: int, multiplier_pct: int = 100) -> int:
    return fee_for(maker_rate_bp(fee_type), multiplier_pct, price, count)


def balance_precision(direct_member: bool) -> int:
    """The step a member's balance moves in, in micro-dollars."""
    return DIRECT_PRECISION if direct_member else NON_DIRECT_PRECISION


def fill_revenue_residue(is_bid: bool, price: int, count: int) -> int:
    """The fill's revenue modulo $0.01 as money (buying YES pays p x C, buying NO (1 - p) x C).

    $1 x any count is a whole number of cents (counts have two decimals), so whether a fill opens
    or closes a position does not change its sub-cent part: ``-p x C`` for a bid, ``+p x C`` for
    an ask, up to whole cents. That is all the rounding rule needs."""
    money = price * count
    return -money if is_bid else money


@dataclass(frozen=True, slots=True)
class Rounded:
    """One fill's fees: the trade fee (as the exchange reports it), the rounding fee and the
    rebate; ``net`` is what the balance lost to fees. ``accumulator`` is the order's after it."""

    trade_fee: int
    rounding_fee: int
    rebate: int
    accumulator: int

    @property
    def net(self) -> int:
        return self.trade_fee + self.rounding_fee - self.rebate


@dataclass(frozen=True, slots=True)
class RoundingFee:
    """Kalshi's fee rounding for one account type (direct member or not)."""

    precision: int = NON_DIRECT_PRECISION

    @classmethod
    def for_member(cls, direct_member: bool) -> RoundingFee:
        return cls(balance_precision(direct_member))

    def apply(
        self, is_bid: bool, price: int, count: int, trade_fee: int, accumulator: int
    ) -> Rounded:
        """The fees of one fill of an order whose rounding accumulator holds ``accumulator``."""
        balance_change = fill_revenue_residue(is_bid, price, count) - trade_fee
        rounding = balance_change % self.precision  # floor toward -inf: what the floor took
        accumulator += rounding
        rebate = 0
        if accumulator > REBATE:
            rebate = REBATE
            accumulator -= REBATE
        return Rounded(trade_fee, rounding, rebate, accumulator)
