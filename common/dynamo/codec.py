"""DynamoDB values: exact numbers only, never a float (DESIGN.md §2, §4).

Everything dora writes to DynamoDB goes through ``to_attrs``, which walks the item and refuses a
float anywhere in it (a float cannot hold 0.56 exactly; DynamoDB numbers are decimal). Integers
in dora's units become human units at this edge, exactly, with ``Decimal.scaleb``:

- prices in dollars (``5600`` -> ``Decimal("0.5600")``)
- counts in contracts (``1000`` -> ``Decimal("10.00")``)
- money in dollars (``1_250_000`` -> ``Decimal("1.250000")``)
- times as integer milliseconds (``ts_ms``) plus an ISO-8601 string where people read them

and come back with ``common.numbers.parse_fixed``, which rejects anything that is not exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from common.config import GlobalConfig, MarketConfig
from common.errors import StorageError
from common.numbers import (
    COUNT_DECIMALS,
    MONEY_DECIMALS,
    PRICE_DECIMALS,
    NumberError,
    parse_fixed,
)

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class FloatRefusedError(StorageError, TypeError):
    """A float (or another type DynamoDB cannot hold exactly) was about to be written."""


def refuse_floats(value: object, path: str = "item") -> None:
    """Walk ``value`` and raise ``FloatRefusedError`` naming the first float found."""
    if isinstance(value, float):
        raise FloatRefusedError(f"{path} is a float ({value!r}); DynamoDB gets ints or Decimals")
    if isinstance(value, Decimal) and not value.is_finite():
        raise FloatRefusedError(f"{path} is not a finite number ({value!r})")
    if isinstance(value, Mapping):
        for key, inner in value.items():
            refuse_floats(inner, f"{path}.{key}")
    elif isinstance(value, list | tuple | set | frozenset):
        for index, inner in enumerate(value):
            refuse_floats(inner, f"{path}[{index}]")


def to_attrs(item: Mapping[str, Any]) -> dict[str, Any]:
    """A Python item (str, int, Decimal, bool, None, bytes, lists, maps, sets) -> AttributeValues."""
    refuse_floats(item)
    try:
        return {key: _SERIALIZER.serialize(value) for key, value in item.items()}
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise FloatRefusedError(f"item does not serialize for DynamoDB: {exc!r}") from None


def to_attr(value: object) -> dict[str, Any]:
    refuse_floats(value, "value")
    try:
        attr: dict[str, Any] = _SERIALIZER.serialize(value)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise FloatRefusedError(f"value does not serialize for DynamoDB: {exc!r}") from None
    return attr


def from_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """AttributeValues -> Python (numbers as ``Decimal``, binary as ``bytes``)."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        out[key] = _plain(_DESERIALIZER.deserialize(value))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ---- units ---------------------------------------------------------------------------------


def price_dollars(units: int) -> Decimal:
    return Decimal(units).scaleb(-PRICE_DECIMALS)


def count_contracts(units: int) -> Decimal:
    return Decimal(units).scaleb(-COUNT_DECIMALS)


def money_dollars(units: int) -> Decimal:
    return Decimal(units).scaleb(-MONEY_DECIMALS)


def _units(value: object, decimals: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise StorageError(f"{what} must be a number, was {value!r}")
    try:
        return parse_fixed(value, decimals, what)
    except NumberError as exc:
        raise StorageError(str(exc)) from None


def price_units(value: object, what: str = "price") -> int:
    return _units(value, PRICE_DECIMALS, what)


def count_units(value: object, what: str = "count") -> int:
    return _units(value, COUNT_DECIMALS, what)


def money_units(value: object, what: str = "amount") -> int:
    return _units(value, MONEY_DECIMALS, what)


def whole_number(value: object, what: str) -> int:
    """A stored integer (``Decimal("12")``, ``12`` or ``"12"``) -> int; exact or an error."""
    return _units(value, 0, what)


# ---- config items --------------------------------------------------------------------------

_TEXT_FIELDS = frozenset({"market_id", "updated_at", "key"})


def config_attrs(human: Mapping[str, Any], version: int) -> dict[str, Any]:
    """A config's ``to_item()`` (human strings and bools) -> a stored item: numbers as exact
    ``Decimal`` (DynamoDB Number, as the original plan's tables say), bools, strings."""
    out: dict[str, Any] = {}
    for name, value in human.items():
        if isinstance(value, bool) or name in _TEXT_FIELDS:
            out[name] = value
        else:
            out[name] = Decimal(str(value))
    out["version"] = version
    return out


def market_config_item(config: MarketConfig, version: int) -> dict[str, Any]:
    return config_attrs(config.to_item(), version)


def global_config_item(config: GlobalConfig, version: int, key: str) -> dict[str, Any]:
    return {"key": key, **config_attrs(config.to_item(), version)}
