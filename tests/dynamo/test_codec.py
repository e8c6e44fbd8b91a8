from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.config import GlobalConfig, MarketConfig
from common.dynamo.codec import (
    FloatRefusedError,
    count_contracts,
    count_units,
    from_attrs,
    global_config_item,
    market_config_item,
    money_dollars,
    money_units,
    price_dollars,
    price_units,
    refuse_floats,
    to_attrs,
    whole_number,
)
from common.dynamo.config_store import validate_global_item, validate_market_item
from common.errors import StorageError
from common.numbers import MAX_COUNT, MAX_MONEY


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ({"price": 0.56}, "item.price"),
        ({"book": {"bids": [[1, 2.5]]}}, "item.book.bids[0][1]"),
        ({"tags": {1.5}}, "item.tags[0]"),
    ],
)
def test_a_float_anywhere_is_refused_with_its_path(item: dict, path: str) -> None:
    with pytest.raises(FloatRefusedError, match=path.replace("[", r"\[").replace("]", r"\]")):
        to_attrs(item)


def test_non_finite_decimals_are_refused() -> None:
    with pytest.raises(FloatRefusedError):
        refuse_floats({"x": Decimal("NaN")})


def test_values_round_trip_exactly() -> None:
    item = {
        "s": "text",
        "n": 12,
        "d": Decimal("0.5600"),
        "b": True,
        "none": None,
        "raw": b"\x00\x01",
        "m": {"inner": [1, Decimal("-2.25"), "x"]},
        "ss": {"a", "b"},
    }
    back = from_attrs(to_attrs(item))
    assert back["s"] == "text" and back["n"] == 12 and back["d"] == Decimal("0.56")
    assert back["b"] is True and back["none"] is None and back["raw"] == b"\x00\x01"
    assert back["m"] == {"inner": [1, Decimal("-2.25"), "x"]} and back["ss"] == {"a", "b"}


@given(
    st.integers(0, 10_000), st.integers(-MAX_COUNT, MAX_COUNT), st.integers(-MAX_MONEY, MAX_MONEY)
)
def test_units_survive_dynamodb_exactly(price: int, count: int, money: int) -> None:
    stored = from_attrs(
        to_attrs(
            {"p": price_dollars(price), "c": count_contracts(count), "m": money_dollars(money)}
        )
    )
    assert price_units(stored["p"]) == price
    assert count_units(stored["c"]) == count
    assert money_units(stored["m"]) == money


@pytest.mark.parametrize("value", [Decimal("0.00001"), "abc", True, [1], None])
def test_inexact_or_odd_stored_prices_are_errors_not_guesses(value: object) -> None:
    with pytest.raises(StorageError):
        price_units(value)


def test_whole_numbers_refuse_fractions() -> None:
    assert whole_number(Decimal("12"), "n") == 12
    with pytest.raises(StorageError):
        whole_number(Decimal("1.5"), "n")


def test_config_items_are_numbers_bools_and_strings_and_validate_back() -> None:
    config = MarketConfig("KXA", enabled=True, quote_size=500, updated_at="2026-01-01T00:00:00Z")
    item = market_config_item(config, 3)
    assert isinstance(item["min_spread"], Decimal) and item["enabled"] is True
    assert item["version"] == 3 and not any(isinstance(v, float) for v in item.values())
    stored = from_attrs(to_attrs(item))
    assert validate_market_item(stored) == (config, 3)
    glob = GlobalConfig(max_daily_loss=50_000_000, updated_at="2026-01-01T00:00:00Z")
    stored_global = from_attrs(to_attrs(global_config_item(glob, 7, "global_config")))
    assert validate_global_item(stored_global) == (glob, 7)
