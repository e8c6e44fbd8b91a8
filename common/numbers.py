"""Exact integer fixed-point numbers (DESIGN.md §2).

Kalshi sends prices and counts as decimal strings; inside dora every price, count and amount of
money is an ``int``:

- price: 1/10,000 of a dollar (``"0.5600"`` -> 5600), ``PRICE_SCALE``
- count: 1/100 of a contract (``"10.00"`` -> 1000), ``COUNT_SCALE``
- money: 1/1,000,000 of a dollar (``"1.250000"`` -> 1_250_000), ``MONEY_SCALE``

so that ``price * count`` is exact money. Conversion happens only at the edges (exchange wire,
DynamoDB, display) through the functions here; none of them ever goes through a float.
"""

from __future__ import annotations

import re
from decimal import Decimal

PRICE_SCALE = 10_000
PRICE_DECIMALS = 4
COUNT_SCALE = 100
COUNT_DECIMALS = 2
MONEY_SCALE = 1_000_000
MONEY_DECIMALS = 6
assert PRICE_SCALE * COUNT_SCALE == MONEY_SCALE

ONE_DOLLAR = PRICE_SCALE  # a price of $1.00, the payout of a winning contract
MAX_COUNT = 1_000_000_000 * COUNT_SCALE  # a billion contracts: far above any real order
MAX_MONEY = 10**15 * MONEY_SCALE  # a quadrillion dollars: anything above is a corrupt value

_DECIMAL = re.compile(r"^(-?)(\d{1,18})(?:\.(\d*))?$")


class NumberError(ValueError):
    """A value from outside that is not a valid fixed-point number."""


def parse_fixed(value: object, decimals: int, what: str) -> int:
    """Parse a decimal string (or a JSON int/float, as Kalshi sometimes sends) exactly."""
    if isinstance(value, bool):
        raise NumberError(f"{what} must be a decimal string, was {value!r}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        # JSON numbers arrive as floats; repr gives the shortest string that round-trips,
        # which is the text the sender wrote. Exactness is then checked like any string.
        if value != value or value in (float("inf"), float("-inf")):
            raise NumberError(f"{what} must be a finite number, was {value!r}")
        text = repr(value)
        if "e" in text or "E" in text:
            text = f"{value:.{decimals + 1}f}".rstrip("0")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise NumberError(f"{what} must be a finite number, was {value!r}")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise NumberError(f"{what} must be a decimal string, was {value!r}")
    match = _DECIMAL.match(text)
    if match is None:
        raise NumberError(f"{what} must be a decimal number like '0.5600', was {value!r}")
    sign, whole, frac = match.group(1), match.group(2), match.group(3) or ""
    if len(frac.rstrip("0")) > decimals:
        raise NumberError(f"{what} has more than {decimals} decimal places, was {value!r}")
    frac = frac[:decimals].ljust(decimals, "0")
    magnitude: int = int(whole) * 10**decimals + int(frac or "0")
    return -magnitude if sign else magnitude


def _format_fixed(units: int, decimals: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def parse_price(value: object, *, what: str = "price") -> int:
    """A dollar price string -> price units; must lie in [0, 1] dollars."""
    units = parse_fixed(value, PRICE_DECIMALS, what)
    if not 0 <= units <= ONE_DOLLAR:
        raise NumberError(f"{what} must be between 0.0000 and 1.0000, was {value!r}")
    return units


def format_price(units: int) -> str:
    """Price units -> Kalshi's 4-decimal dollar string (5600 -> '0.5600')."""
    if not 0 <= units <= ONE_DOLLAR:
        raise NumberError(f"price must be between 0 and {ONE_DOLLAR} units, was {units}")
    return _format_fixed(units, PRICE_DECIMALS)


def parse_count(value: object, *, what: str = "count", signed: bool = False) -> int:
    """A fixed-point contract count ('10.00') -> centi-contracts; non-negative unless signed."""
    units = parse_fixed(value, COUNT_DECIMALS, what)
    if not signed and units < 0:
        raise NumberError(f"{what} must not be negative, was {value!r}")
    if abs(units) > MAX_COUNT:
        raise NumberError(f"{what} is out of range, was {value!r}")
    return units


def fast_price(value: object, what: str = "price") -> int:
    """``parse_price`` with a fast path for the 4-decimal strings Kalshi sends on the hot path
    (``"0.5600"``); anything else goes through the exact parser and its errors."""
    if (
        type(value) is str
        and len(value) == 6
        and value[1] == "."
        and value[0] in "01"
        and value[2:].isascii()
        and value[2:].isdigit()
    ):
        units = int(value[0]) * ONE_DOLLAR + int(value[2:])
        if units <= ONE_DOLLAR:
            return units
    return parse_price(value, what=what)


def fast_count(value: object, what: str = "count", *, signed: bool = False) -> int:
    """``parse_count`` with a fast path for plain 2-decimal strings (``"12.00"``, ``"-3.50"``)."""
    if type(value) is str and 4 <= len(value) <= 14 and value[-3] == ".":
        negative = signed and value[0] == "-"
        whole, frac = value[1 if negative else 0 : -3], value[-2:]
        if whole.isascii() and whole.isdigit() and frac.isascii() and frac.isdigit():
            units = int(whole) * 100 + int(frac)
            if units <= MAX_COUNT:
                return -units if negative else units
    return parse_count(value, what=what, signed=signed)


def format_count(units: int) -> str:
    """Centi-contracts -> Kalshi's 2-decimal count string (1000 -> '10.00')."""
    return _format_fixed(units, COUNT_DECIMALS)


def parse_money(value: object, *, what: str = "amount") -> int:
    """A signed dollar amount with up to 6 decimals -> micro-dollars."""
    units = parse_fixed(value, MONEY_DECIMALS, what)
    if abs(units) > MAX_MONEY:
        raise NumberError(f"{what} is out of range, was {value!r}")
    return units


def format_money(units: int, decimals: int = 4) -> str:
    """Micro-dollars -> a dollar string with ``decimals`` places, or 6 when that is not exact."""
    step = 10 ** (MONEY_DECIMALS - decimals)
    if units % step:
        return _format_fixed(units, MONEY_DECIMALS)
    return _format_fixed(units // step, decimals)


def money_to_dollars_display(units: int) -> str:
    """Micro-dollars for people: '$-12.34' (rounded to cents, display only)."""
    cents = (abs(units) + 5_000) // 10_000
    sign = "-" if units < 0 else ""
    return f"{sign}${cents // 100}.{cents % 100:02d}"


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding toward +infinity (denominator > 0)."""
    return -((-numerator) // denominator)
