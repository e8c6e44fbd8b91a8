import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from common.grid import GridError, PriceGrid

TAPERED = PriceGrid.from_price_ranges(
    [
        {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
        {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
        {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
    ]
)
GRIDS = [PriceGrid.linear_cent(), PriceGrid.uniform(10), TAPERED, PriceGrid.uniform(1)]


def test_linear_cent() -> None:
    grid = PriceGrid.linear_cent()
    assert grid.is_valid(5600)
    assert not grid.is_valid(5650)
    assert not grid.is_valid(0) and not grid.is_valid(10_000)
    assert grid.round_down(5650) == 5600
    assert grid.round_up(5650) == 5700
    assert grid.next_above(5600) == 5700
    assert grid.next_below(5600) == 5500
    assert grid.next_below(100) is None
    assert grid.next_above(9900) is None


def test_tapered_bands() -> None:
    assert TAPERED.is_valid(550)  # 0.055 in the fine band
    assert not TAPERED.is_valid(1550)  # 0.155 is off the cent band
    assert TAPERED.next_above(990) == 1000
    assert TAPERED.next_above(1000) == 1100
    assert TAPERED.next_below(9000) == 8900
    assert TAPERED.next_above(9000) == 9010
    assert TAPERED.tick_at(500) == 10 and TAPERED.tick_at(5000) == 100


@pytest.mark.parametrize(
    "ranges",
    [
        [],
        [{"start": "0.5", "end": "0.1", "step": "0.01"}],
        [{"start": "0", "end": "1", "step": "0"}],
        [{"start": "x", "end": "1", "step": "0.01"}],
        ["nope"],
    ],
)
def test_bad_price_ranges_are_rejected(ranges: list[object]) -> None:
    with pytest.raises(GridError):
        PriceGrid.from_price_ranges(ranges)  # type: ignore[arg-type]


@given(st.sampled_from(GRIDS), st.integers(min_value=-100, max_value=10_100))
def test_rounding_lands_on_the_grid_and_never_crosses_the_input(
    grid: PriceGrid, price: int
) -> None:
    down, up = grid.round_down(price), grid.round_up(price)
    if down is not None:
        assert grid.is_valid(down) and down <= price
    if up is not None:
        assert grid.is_valid(up) and up >= price
    if grid.is_valid(price):
        assert down == up == price


@given(st.sampled_from(GRIDS), st.integers(min_value=1, max_value=9_999))
def test_next_tick_is_adjacent(grid: PriceGrid, price: int) -> None:
    assume(grid.is_valid(price))
    above, below = grid.next_above(price), grid.next_below(price)
    if above is not None:
        assert above > price and grid.is_valid(above)
        assert all(not grid.is_valid(p) for p in range(price + 1, above))
    if below is not None:
        assert below < price and grid.is_valid(below)
        assert all(not grid.is_valid(p) for p in range(below + 1, price))


def test_round_trip_through_price_ranges() -> None:
    assert PriceGrid.from_price_ranges(TAPERED.to_price_ranges()) == TAPERED
