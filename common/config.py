"""Trading config: per-market and global, validated (original plan §1 "Config Layer").

Config is stored and typed by people in human units: dollars for prices and money, contracts for
sizes, plain decimals for factors. Inside it becomes integers (prices in 1/10,000 $, counts in
1/100 contract, money in 1/1,000,000 $, factors in 1/10,000). ``from_item`` accepts what DynamoDB,
Redis, JSON or a command line hand over (str, int, Decimal) and raises ``ConfigError`` naming the
field, the value and the rule; ``to_item`` gives the canonical human form back (strings and bools,
never a float).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from common.errors import ConfigError
from common.numbers import (
    COUNT_SCALE,
    NumberError,
    format_count,
    format_money,
    format_price,
    parse_count,
    parse_fixed,
    parse_money,
    parse_price,
)

FACTOR_SCALE = 10_000  # factors (skew, toxicity) in 1/10,000
MAX_LOOP_INTERVAL_MS = 60_000


def _parse_bool(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str) and str(value).strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, int | str) and str(value).strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{field} must be true or false, was {value!r}")


def _parse_factor(field: str, value: object, low: int, high: int) -> int:
    try:
        units = parse_fixed(value, 4, field)
    except NumberError:
        raise ConfigError(f"{field} must be a decimal number, was {value!r}") from None
    if not low <= units <= high:
        raise ConfigError(
            f"{field} must be between {low / FACTOR_SCALE:g} and {high / FACTOR_SCALE:g}, "
            f"was {value!r}"
        )
    return units


def _format_factor(units: int) -> str:
    whole, frac = divmod(units, FACTOR_SCALE)
    text = f"{whole}.{frac:04d}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _parse_contracts(field: str, value: object, *, minimum: int) -> int:
    try:
        units = parse_count(value, what=field)
    except NumberError:
        raise ConfigError(f"{field} must be a number of contracts, was {value!r}") from None
    if units < minimum:
        raise ConfigError(f"{field} must be >= {format_count(minimum)} contracts, was {value!r}")
    return units


def _parse_dollar_price(field: str, value: object) -> int:
    try:
        units = parse_price(value, what=field)
    except NumberError:
        raise ConfigError(
            f"{field} must be a dollar amount between 0 and 1, was {value!r}"
        ) from None
    return units


def _parse_dollars(field: str, value: object, *, positive: bool) -> int:
    try:
        units = parse_money(value, what=field)
    except NumberError:
        raise ConfigError(f"{field} must be a dollar amount, was {value!r}") from None
    if positive and units <= 0:
        raise ConfigError(f"{field} must be > 0 dollars, was {value!r}")
    return units


def _parse_timestamp(field: str, value: object) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{field} must be an ISO-8601 timestamp, was {value!r}")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{field} must be an ISO-8601 timestamp, was {value!r}") from None
    return value


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """How one market is quoted. Prices in 1/10,000 $, sizes in 1/100 contract."""

    market_id: str
    enabled: bool = False
    max_inventory_yes: int = 100 * COUNT_SCALE
    max_inventory_no: int = 100 * COUNT_SCALE
    min_spread: int = 200  # $0.02
    quote_size: int = 10 * COUNT_SCALE
    inventory_skew_factor: int = 5_000  # 0.5
    toxicity_score: int = 0  # 0 .. 1
    updated_at: str = ""

    FIELDS = (
        "enabled",
        "max_inventory_yes",
        "max_inventory_no",
        "min_spread",
        "quote_size",
        "inventory_skew_factor",
        "toxicity_score",
        "updated_at",
    )

    @classmethod
    def from_item(cls, item: Mapping[str, Any], market_id: str | None = None) -> MarketConfig:
        """Validate a stored or typed item. Missing fields take their defaults."""
        ticker = market_id if market_id is not None else item.get("market_id")
        if not isinstance(ticker, str) or not ticker.strip():
            raise ConfigError(f"market_id must be a non-empty market ticker, was {ticker!r}")
        unknown = set(item) - set(cls.FIELDS) - {"market_id", "version"}
        if unknown:
            raise ConfigError(
                f"unknown market config field {sorted(unknown)[0]!r}; "
                f"known: {', '.join(cls.FIELDS)}"
            )
        config = cls(market_id=ticker)
        values: dict[str, Any] = {}
        for name, parse in _MARKET_PARSERS.items():
            if name in item and item[name] is not None:
                values[name] = parse(name, item[name])
        config = replace(config, **values)
        config.check()
        return config

    def check(self) -> None:
        """Rules between fields."""
        if self.quote_size > max(self.max_inventory_yes, self.max_inventory_no):
            raise ConfigError(
                f"quote_size must be <= the larger inventory cap "
                f"({format_count(max(self.max_inventory_yes, self.max_inventory_no))}), "
                f"was {format_count(self.quote_size)}"
            )

    def with_changes(self, changes: Mapping[str, Any]) -> MarketConfig:
        merged = {**self.to_item(), **changes}
        return MarketConfig.from_item(merged, self.market_id)

    def to_item(self) -> dict[str, Any]:
        """Human units, strings and bools only: safe for DynamoDB, Redis and JSON."""
        return {
            "market_id": self.market_id,
            "enabled": self.enabled,
            "max_inventory_yes": format_count(self.max_inventory_yes),
            "max_inventory_no": format_count(self.max_inventory_no),
            "min_spread": format_price(self.min_spread),
            "quote_size": format_count(self.quote_size),
            "inventory_skew_factor": _format_factor(self.inventory_skew_factor),
            "toxicity_score": _format_factor(self.toxicity_score),
            "updated_at": self.updated_at,
        }


_MARKET_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "enabled": _parse_bool,
    "max_inventory_yes": lambda f, v: _parse_contracts(f, v, minimum=0),
    "max_inventory_no": lambda f, v: _parse_contracts(f, v, minimum=0),
    "min_spread": _parse_dollar_price,
    "quote_size": lambda f, v: _parse_contracts(f, v, minimum=1),
    "inventory_skew_factor": lambda f, v: _parse_factor(f, v, 0, 10 * FACTOR_SCALE),
    "toxicity_score": lambda f, v: _parse_factor(f, v, 0, FACTOR_SCALE),
    "updated_at": _parse_timestamp,
}


@dataclass(frozen=True, slots=True)
class GlobalConfig:
    """Account-wide limits. Money in 1/1,000,000 $."""

    max_total_exposure: int = 1_000 * 1_000_000
    max_daily_loss: int = 100 * 1_000_000
    max_event_loss: int = 1_000 * 1_000_000  # the default of every event without its own
    loop_interval_ms: int = 500
    trading_enabled: bool = True
    updated_at: str = ""

    FIELDS = (
        "max_total_exposure",
        "max_daily_loss",
        "max_event_loss",
        "loop_interval_ms",
        "trading_enabled",
        "updated_at",
    )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> GlobalConfig:
        unknown = set(item) - set(cls.FIELDS) - {"key", "version"}
        if unknown:
            raise ConfigError(
                f"unknown global config field {sorted(unknown)[0]!r}; "
                f"known: {', '.join(cls.FIELDS)}"
            )
        values: dict[str, Any] = {}
        for name, parse in _GLOBAL_PARSERS.items():
            if name in item and item[name] is not None:
                values[name] = parse(name, item[name])
        return replace(cls(), **values)

    def with_changes(self, changes: Mapping[str, Any]) -> GlobalConfig:
        return GlobalConfig.from_item({**self.to_item(), **changes})

    def to_item(self) -> dict[str, Any]:
        return {
            "max_total_exposure": format_money(self.max_total_exposure, 2),
            "max_daily_loss": format_money(self.max_daily_loss, 2),
            "max_event_loss": format_money(self.max_event_loss, 2),
            "loop_interval_ms": str(self.loop_interval_ms),
            "trading_enabled": self.trading_enabled,
            "updated_at": self.updated_at,
        }


def _parse_interval(field: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{field} must be a whole number of milliseconds, was {value!r}")
    try:
        units = parse_fixed(value, 0, field)
    except NumberError:
        raise ConfigError(
            f"{field} must be a whole number of milliseconds, was {value!r}"
        ) from None
    if not 10 <= units <= MAX_LOOP_INTERVAL_MS:
        raise ConfigError(f"{field} must be between 10 and {MAX_LOOP_INTERVAL_MS}, was {value!r}")
    return units


_GLOBAL_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "max_total_exposure": lambda f, v: _parse_dollars(f, v, positive=True),
    "max_daily_loss": lambda f, v: _parse_dollars(f, v, positive=True),
    "max_event_loss": lambda f, v: _parse_dollars(f, v, positive=True),
    "loop_interval_ms": _parse_interval,
    "trading_enabled": _parse_bool,
    "updated_at": _parse_timestamp,
}


def check_value(name: str, value: object, *, market: bool) -> None:
    """One typed value on its own (``ConfigError`` naming the field and the rule), before any
    stored item is read: a bad value is told as such even when DynamoDB cannot be reached. The
    rules between fields still need the whole item (``MarketConfig.check``)."""
    parsers = _MARKET_PARSERS if market else _GLOBAL_PARSERS
    if name in parsers and value is not None:
        parsers[name](name, value)


MARKET_FIELD_NAMES = frozenset(f.name for f in fields(MarketConfig)) - {"market_id"}
GLOBAL_FIELD_NAMES = frozenset(f.name for f in fields(GlobalConfig))


EVENT_FIELDS = ("max_event_loss",)
EVENT_PREFIX = "max_event_loss#"  # a stored event override: ``max_event_loss#{event}`` -> dollars


def parse_event_loss(value: object) -> int:
    """An event's ``max_event_loss`` in dollars -> money (``ConfigError`` when not > 0)."""
    return _parse_dollars("max_event_loss", value, positive=True)


@dataclass(frozen=True, slots=True)
class EventLimits:
    """Per-event overrides of ``max_event_loss`` (money), by event ticker."""

    max_event_loss: Mapping[str, int]
    updated_at: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> EventLimits:
        """A stored item (``max_event_loss#{event}`` -> dollars), validated."""
        limits: dict[str, int] = {}
        for name, value in item.items():
            if name in ("key", "version", "updated_at"):
                continue
            if not name.startswith(EVENT_PREFIX) or not name[len(EVENT_PREFIX) :]:
                raise ConfigError(
                    f"unknown event config field {name!r}; known: {EVENT_PREFIX}EVENT"
                )
            event = name[len(EVENT_PREFIX) :]
            limits[event] = _parse_dollars(f"{event} max_event_loss", value, positive=True)
        return cls(limits, _parse_timestamp("updated_at", item.get("updated_at")))

    def with_event(self, event: str, changes: Mapping[str, Any], now_iso: str) -> EventLimits:
        unknown = set(changes) - set(EVENT_FIELDS)
        if unknown:
            raise ConfigError(
                f"unknown event config field {sorted(unknown)[0]!r}; known: "
                f"{', '.join(EVENT_FIELDS)}"
            )
        limits = dict(self.max_event_loss)
        if "max_event_loss" in changes:
            limits[event] = parse_event_loss(changes["max_event_loss"])
        return EventLimits(limits, now_iso)

    def to_item(self) -> dict[str, Any]:
        """Human units: ``max_event_loss#{event}`` -> dollars (strings)."""
        out: dict[str, Any] = {
            f"{EVENT_PREFIX}{e}": format_money(v, 2) for e, v in sorted(self.max_event_loss.items())
        }
        out["updated_at"] = self.updated_at
        return out
