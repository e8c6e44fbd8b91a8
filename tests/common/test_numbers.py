from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.numbers import (
    NumberError,
    fast_count,
    fast_price,
    format_count,
    format_money,
    format_price,
    parse_count,
    parse_money,
    parse_price,
)


@pytest.mark.parametrize(
    ("text", "units"),
    [("0.5600", 5600), ("0.56", 5600), ("0.0001", 1), ("1.0000", 10000), ("0", 0), ("0.5", 5000)],
)
def test_parse_price(text: str, units: int) -> None:
    assert parse_price(text) == units


@pytest.mark.parametrize(
    "bad", ["", "abc", "0.56001", "1.0001", "-0.01", "0,56", "1e-2", None, True, [], "0.5.6", " . "]
)
def test_parse_price_rejects_with_the_value_named(bad: object) -> None:
    with pytest.raises(NumberError) as info:
        parse_price(bad)
    assert repr(bad) in str(info.value)


def test_json_numbers_parse_exactly() -> None:
    assert parse_price(0.56) == 5600
    assert parse_count(10) == 1000
    assert parse_count(12.5) == 1250
    assert parse_money(Decimal("1E+1")) == 10_000_000
    with pytest.raises(NumberError):
        parse_price(float("nan"))


@pytest.mark.parametrize("bad", ["10.001", "-1.00", "1" * 30, "1e9"])
def test_parse_count_rejects(bad: str) -> None:
    with pytest.raises(NumberError):
        parse_count(bad)


def test_signed_counts_and_money() -> None:
    assert parse_count("-3.50", signed=True) == -350
    assert parse_money("-12.345678") == -12_345_678
    assert format_money(-12_345_678) == "-12.345678"
    assert format_money(1_250_000) == "1.2500"
    assert format_money(1_250_000, 2) == "1.25"


@given(st.integers(min_value=0, max_value=10_000))
def test_price_round_trip_is_exact(units: int) -> None:
    assert parse_price(format_price(units)) == units


@given(st.integers(min_value=0, max_value=10**11))
def test_count_round_trip_is_exact(units: int) -> None:
    assert parse_count(format_count(units)) == units


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_round_trip_is_exact(units: int) -> None:
    assert parse_money(format_money(units)) == units


@given(st.decimals(min_value=0, max_value=1, places=4))
def test_any_four_decimal_string_parses_to_its_value(value: Decimal) -> None:
    assert parse_price(str(value)) == int(value * 10_000)


@given(st.integers(0, 10_000))
def test_fast_price_equals_the_exact_parser(units: int) -> None:
    assert fast_price(format_price(units), "p") == units


@given(st.integers(-(10**9), 10**9))
def test_fast_count_equals_the_exact_parser(units: int) -> None:
    assert fast_count(format_count(units), "c", signed=True) == units
    if units < 0:
        with pytest.raises(NumberError):
            fast_count(format_count(units), "c")


@given(st.text(max_size=12))
def test_fast_price_never_accepts_junk_the_exact_parser_refuses(text: str) -> None:
    try:
        exact: int | None = parse_price(text)
    except NumberError:
        exact = None
    try:
        fast: int | None = fast_price(text, "p")
    except NumberError:
        fast = None
    assert fast == exact
