"""Readers of one field of a decoded Kalshi JSON object, shared by every wire module.

Each takes the object, the field's name and ``what`` (where the object sits, for the message)
and returns a checked value or raises ``WireError`` naming the field and what came:
``"order o-1.remaining_count_fp must be a decimal number like '0.5600', was 'x'"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from common.domain import Side
from common.errors import WireError
from common.numbers import NumberError, parse_count, parse_money, parse_price

_T = TypeVar("_T")


def short(value: object) -> str:
    """``repr`` cut to 120 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"{what} must be a JSON object, was {short(value)}")
    return value


def array(value: object, what: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise WireError(f"{what} must be a JSON array, was {short(value)}")
    return value


def required(data: Mapping[str, Any], name: str, what: str) -> Any:
    value = data.get(name)
    if value is None:
        raise WireError(f"{what}.{name} is missing")
    return value


def string(data: Mapping[str, Any], name: str, what: str) -> str:
    value = required(data, name, what)
    if not isinstance(value, str) or not value:
        raise WireError(f"{what}.{name} must be a non-empty string, was {short(value)}")
    return value


def opt_string(data: Mapping[str, Any], name: str, what: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WireError(f"{what}.{name} must be a string, was {short(value)}")
    return value


def boolean(data: Mapping[str, Any], name: str, what: str, default: bool | None = None) -> bool:
    value = data.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise WireError(f"{what}.{name} must be true or false, was {short(value)}")
    return value


def integer(data: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = data.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{what}.{name} must be an integer, was {short(value)}")
    return value


def price(data: Mapping[str, Any], name: str, what: str) -> int:
    value = required(data, name, what)
    try:
        return parse_price(value, what=f"{what}.{name}")
    except NumberError as exc:
        raise WireError(str(exc)) from None


def count(data: Mapping[str, Any], name: str, what: str, *, signed: bool = False) -> int:
    value = required(data, name, what)
    try:
        return parse_count(value, what=f"{what}.{name}", signed=signed)
    except NumberError as exc:
        raise WireError(str(exc)) from None


def opt_count(data: Mapping[str, Any], name: str, what: str) -> int | None:
    return None if data.get(name) is None else count(data, name, what)


def money(data: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = data.get(name)
    if value is None and default is not None:
        return default
    if value is None:
        raise WireError(f"{what}.{name} is missing")
    try:
        return parse_money(value, what=f"{what}.{name}")
    except NumberError as exc:
        raise WireError(str(exc)) from None


def parse_time_ms(value: object, what: str) -> int:
    """An RFC3339 time ('2026-01-01T00:00:00Z', fractions and offsets allowed) -> Unix ms."""
    if not isinstance(value, str) or not value:
        raise WireError(f"{what} must be an RFC3339 time string, was {short(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WireError(f"{what} must be an RFC3339 time string, was {short(value)}") from None
    if moment.tzinfo is None:
        raise WireError(f"{what} must carry a time zone, was {short(value)}")
    return int(moment.timestamp() * 1000)


def time_ms(data: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = data.get(name)
    if (value is None or value == "") and default is not None:
        return default
    return parse_time_ms(value, f"{what}.{name}")


def book_side(data: Mapping[str, Any], what: str) -> Side:
    """``book_side`` (bid|ask), or ``outcome_side`` (yes = bid, no = ask) when it is absent."""
    side = data.get("book_side")
    if side is not None:
        if side == "bid":
            return Side.BID
        if side == "ask":
            return Side.ASK
        raise WireError(f"{what}.book_side must be 'bid' or 'ask', was {short(side)}")
    outcome = data.get("outcome_side")
    if outcome == "yes":
        return Side.BID
    if outcome == "no":
        return Side.ASK
    raise WireError(f"{what}.book_side is missing (and outcome_side is {short(outcome)})")


def cursor(data: Mapping[str, Any]) -> str | None:
    value = data.get("cursor")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WireError(f"cursor must be a string, was {short(value)}")
    return value


def page(
    body: object, what: str, items_field: str, parse_item: Callable[[object], _T]
) -> tuple[list[_T], str | None]:
    """One page of a paginated list: its items (``body[items_field]``, absent = none), each
    through ``parse_item``, and the cursor of the next page."""
    data = obj(body, what)
    items = [parse_item(i) for i in array(data.get(items_field) or [], items_field)]
    return items, cursor(data)
