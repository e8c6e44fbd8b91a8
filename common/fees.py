"""Kalshi trading fees in exact integer money (API.md §8).

Per fill: ``rate x M x C x P x (1 - P)``, rounded up to $0.0001, where P is the YES price (the
product is symmetric), C the contracts and M the series fee multiplier. Takers pay 0.07; makers pay
nothing on ``quadratic`` series, 0.0175 on ``quadratic_with_maker_fees`` and 0.035 on
``quadratic_with_combo_maker_fees``. Multipliers are carried as integer hundredths (1.0 -> 100).
"""

from __future__ import annotations

from enum import StrEnum

from common.numbers import COUNT_SCALE, MONEY_SCALE, PRICE_SCALE, ceil_div

FEE_ROUNDING = MONEY_SCALE // 10_000  # fees are rounded up to $0.0001


class FeeType(StrEnum):
    QUADRATIC = "quadratic"
    QUADRATIC_WITH_MAKER_FEES = "quadratic_with_maker_fees"
    QUADRATIC_WITH_COMBO_MAKER_FEES = "quadratic_with_combo_maker_fees"
    FLAT = "flat"


# rates in 1/10,000 (0.07 -> 700)
TAKER_RATE_BP = 700
MAKER_RATE_BP = {
    FeeType.QUADRATIC: 0,
    FeeType.QUADRATIC_WITH_MAKER_FEES: 175,
    FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES: 350,
    FeeType.FLAT: 0,
}


def parse_fee_type(value: object) -> FeeType:
    try:
        return FeeType(str(value))
    except ValueError:
        known = ", ".join(t.value for t in FeeType)
        raise ValueError(f"fee_type must be one of {known}, was {value!r}") from None


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
    return fee_for(MAKER_RATE_BP[fee_type], multiplier_pct, price, count)
