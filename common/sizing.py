"""How much each side quotes (count units): ``quote_size`` (scaled in a benign market), the
inventory caps, and the wind-down before close (rule 6 of ``common.quoting``)."""

from __future__ import annotations

from common.config import MarketConfig
from common.domain import Side
from common.quoting_params import DEFAULT_PARAMS, QuotingParams


def largest_quote(config: MarketConfig, params: QuotingParams = DEFAULT_PARAMS) -> int:
    """The most one side may quote at once (count units): ``quote_size``, or
    ``benign_size_pct`` of it in a benign market (the executor's order-group limit allows
    for it)."""
    return config.quote_size * max(100, params.benign_size_pct) // 100


def capacity(side: Side, position: int, config: MarketConfig) -> int:
    """How many more contracts (count units) a side may add before hitting its cap."""
    if side is Side.BID:
        return max(0, config.max_inventory_yes - position)
    return max(0, config.max_inventory_no + position)


def quote_size(
    side: Side, position: int, config: MarketConfig, params: QuotingParams, size_pct: int = 100
) -> int:
    """``size_pct`` % of ``quote_size`` until ``full_size_pct`` of the side's cap is held, then
    scaled down linearly to nothing at the cap."""
    cap = config.max_inventory_yes if side is Side.BID else config.max_inventory_no
    room = capacity(side, position, config)
    if cap <= 0 or room <= 0:
        return 0
    held_same_way = max(0, position if side is Side.BID else -position)
    full_until = cap * params.full_size_pct // 100
    full = config.quote_size * size_pct // 100
    if held_same_way <= full_until:
        scaled = full
    else:
        scaled = full * (cap - held_same_way) // (cap - full_until)
    size = min(scaled, room)
    size -= size % params.size_step
    return size if size >= params.min_size else 0


def wind_down_limit(
    close_ms: int, now_ms: int, config: MarketConfig, params: QuotingParams
) -> int | None:
    """Inside the wind-down window, the most a side may leave held after a full fill (count
    units): the cap at ``wind_down_ms`` before close, shrinking linearly to 0 at
    ``pull_before_close_ms``. None outside the window (or with no close time)."""
    if not close_ms or now_ms < close_ms - params.wind_down_ms:
        return None
    taper_ms = params.wind_down_ms - params.pull_before_close_ms
    left_ms = close_ms - params.pull_before_close_ms - now_ms
    if taper_ms <= 0 or left_ms <= 0:
        return 0
    cap = max(config.max_inventory_yes, config.max_inventory_no)
    return cap * min(left_ms, taper_ms) // taper_ms


def side_size(
    side: Side,
    position: int,
    config: MarketConfig,
    params: QuotingParams,
    size_pct: int,
    wind_down: int | None,
) -> int:
    """What one side quotes: ``quote_size`` (``size_pct`` % of it) within the caps and, inside
    the wind-down (``wind_down`` from ``wind_down_limit``), no more than leaves ``wind_down``
    held after a full fill (a side that reduces what is held is not limited by it)."""
    size = quote_size(side, position, config, params, size_pct)
    if wind_down is not None:
        held_same_way = position if side is Side.BID else -position
        tapered = min(size, max(0, wind_down - held_same_way))
        tapered -= tapered % params.size_step
        size = tapered if tapered >= params.min_size else 0
    return size
