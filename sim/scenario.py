"""Scenarios: how the simulated markets behave, loaded from JSON (``sim/scenarios/*.json``).

A scenario is found by name (a file shipped in ``sim/scenarios``) or by path (any file with the
same shape). Top-level fields are the defaults for every market; ``per_market`` is an optional
list of partial overrides applied to market i from entry ``i % len(per_market)``, so one file can
mix calm and jumpy, liquid and thin markets. Unknown keys and bad values are rejected with the
path of the offending field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from common.errors import ConfigError

SCENARIO_DIR = Path(__file__).parent / "scenarios"


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Per-market behaviour. Probabilities and rates are model quantities (floats); every
    price an agent sends is rounded onto the market's integer grid first."""

    fair_min: float = 0.02  # initial fair values spread over [fair_min, fair_max] (logit space)
    fair_max: float = 0.98
    volatility_per_sqrt_hour: float = 0.3  # std of the logit walk over one hour
    drift_per_hour: float = 0.0  # logit drift (trending scenarios)
    jump_rate_per_hour: float = 0.0  # Poisson rate of news jumps
    jump_size: float = 1.0  # std of a jump in logit units
    maker_count: int = 2  # background makers quoting this market
    maker_levels: int = 3  # price levels per side per maker
    maker_half_spread_ticks: int = 1  # distance of the first level from fair value
    maker_level_gap_ticks: int = 1
    maker_size_min: int = 5  # contracts per level
    maker_size_max: int = 40
    maker_size_growth_pct: int = 0  # each level behind the first is this much larger (% of it)
    maker_refresh_ms: int = 2_000  # how often a maker re-centres its quotes (staleness)
    maker_error: float = 0.05  # std of a maker's fair-value error, logit units
    maker_error_halflife_s: float = 60.0  # how long a maker's error persists
    maker_skew_contracts: int = 15  # quotes move a tick against each this many held (0: never)
    maker_max_position: int = 100  # contracts a maker holds at most per market (0: no cap)
    noise_rate_per_min: float = 6.0
    noise_size_min: int = 1
    noise_size_max: int = 10
    noise_sweep_ticks: int = 1  # a noise order's limit: this many ticks through the touch
    longshot_tilt: float = 0.3  # noise buys the cheaper side w.p. 0.5 + tilt * |2 mid - 1|
    informed_rate_per_min: float = 2.0
    informed_edge_ticks: int = 1  # trade when a quote is this far through fair value + fee
    informed_size_max: int = 25
    informed_jump_takers: int = 0  # informed takers that trade in the tick of a jump


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    market_lifetime_s: int = 86_400
    open_delay_s: int = 0
    determination_delay_s: int = 5
    settlement_timer_s: int = 60
    tick_ms: int = 250
    event_size: int = 1  # markets per mutually exclusive event (1: independent markets)
    defaults: MarketParams = MarketParams()
    per_market: tuple[dict[str, Any], ...] = ()

    def market_params(self, index: int) -> MarketParams:
        if not self.per_market:
            return self.defaults
        return replace(self.defaults, **self.per_market[index % len(self.per_market)])


_PARAM_TYPES = {f.name: f.type for f in fields(MarketParams)}
_TOP_KEYS = {
    "name",
    "description",
    "market_lifetime_s",
    "open_delay_s",
    "determination_delay_s",
    "settlement_timer_s",
    "tick_ms",
    "event_size",
    "per_market",
}


def _check_params(raw: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _PARAM_TYPES.get(key)
        if kind is None:
            raise ConfigError(f"{where}.{key}: unknown field")
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where}.{key} must be an integer >= 0, was {value!r}")
        else:
            negative_ok = key == "drift_per_hour"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (value < 0 and not negative_ok)
                or value != value  # NaN
            ):
                raise ConfigError(f"{where}.{key} must be a number >= 0, was {value!r}")
            value = float(value)
        out[key] = value
    return out


def _validate_params(params: MarketParams, where: str) -> None:
    if not 0.0 < params.fair_min <= params.fair_max < 1.0:
        raise ConfigError(
            f"{where}: need 0 < fair_min <= fair_max < 1, was {params.fair_min}, {params.fair_max}"
        )
    if params.maker_size_min < 1 or params.maker_size_max < params.maker_size_min:
        raise ConfigError(f"{where}: need 1 <= maker_size_min <= maker_size_max")
    if params.noise_size_min < 1 or params.noise_size_max < params.noise_size_min:
        raise ConfigError(f"{where}: need 1 <= noise_size_min <= noise_size_max")
    if params.longshot_tilt > 0.5:
        raise ConfigError(f"{where}.longshot_tilt must be <= 0.5, was {params.longshot_tilt}")
    if params.maker_refresh_ms < 50:
        raise ConfigError(f"{where}.maker_refresh_ms must be >= 50, was {params.maker_refresh_ms}")


def parse_scenario(raw: object, *, source: str = "scenario") -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a JSON object, was {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}.name must be a non-empty string, was {name!r}")
    top = {k: v for k, v in raw.items() if k in _TOP_KEYS}
    param_raw = {k: v for k, v in raw.items() if k not in _TOP_KEYS}
    defaults = replace(MarketParams(), **_check_params(param_raw, source))
    _validate_params(defaults, source)
    base = Scenario(name=name)
    ints = {
        key: _int(top, key, source, minimum=minimum, default=getattr(base, key))
        for key, minimum in (
            ("market_lifetime_s", 10),
            ("open_delay_s", 0),
            ("determination_delay_s", 0),
            ("settlement_timer_s", 0),
            ("tick_ms", 10),
            ("event_size", 1),
        )
    }
    per_market_raw = top.get("per_market", [])
    if not isinstance(per_market_raw, list):
        raise ConfigError(f"{source}.per_market must be a list of objects")
    per_market = []
    for i, item in enumerate(per_market_raw):
        where = f"{source}.per_market[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be an object")
        checked = _check_params(item, where)
        _validate_params(replace(defaults, **checked), where)
        per_market.append(checked)
    description = top.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{source}.description must be a string")
    return Scenario(
        name=name,
        description=description,
        defaults=defaults,
        per_market=tuple(per_market),
        **ints,
    )


def _int(top: dict[str, Any], key: str, source: str, *, minimum: int, default: int) -> int:
    value = top.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{source}.{key} must be an integer >= {minimum}, was {value!r}")
    return value


def available_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_scenario(name_or_path: str) -> Scenario:
    """A scenario by name (``calm``) or by path to a JSON file."""
    path = Path(name_or_path)
    if not (path.suffix == ".json" or "/" in name_or_path) and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.json"
        if not path.exists():
            known = ", ".join(available_scenarios())
            raise ConfigError(f"unknown scenario {name_or_path!r}; known: {known} (or a path)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {path}: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_scenario(raw, source=str(path))
