"""What every wire module shares: typed structs converted with msgspec, and the checks of the
values msgspec cannot know (Kalshi's fixed-point strings, RFC3339 times, sides, statuses).

``convert`` turns a decoded JSON value into a frozen ``msgspec.Struct`` of the fields dora reads
(unknown fields are ignored, a wrong type or a missing field raises). Every failure is a
``WireError`` naming the field and what came: ``"order o-1.remaining_count_fp must be a decimal
number like '0.5600', was 'x'"``, ``"orders response.orders[2].ticker: expected `str`, got `int`,
was 5"``, ``"market.close_time is missing"``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, TypeVar

import msgspec

from common.domain import OrderStatus, Side
from common.errors import WireError
from common.numbers import NumberError, fast_count, fast_price, parse_money

S = TypeVar("S")

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Fixed = str | int | float  # a fixed-point number: a decimal string, sometimes a JSON number

_ORDER_STATUS = {
    "resting": OrderStatus.RESTING,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "executed": OrderStatus.EXECUTED,
    "pending": OrderStatus.PENDING,
}
_MISSING = re.compile(r"Object missing required field `([^`]*)`")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def short(value: object) -> str:
    """``repr`` cut to 120 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def convert(value: object, kind: type[S], what: str) -> S:
    """``value`` (decoded JSON) as the struct ``kind``, or ``WireError`` saying what was wrong."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise WireError(_explain(str(exc), value, what)) from None


def _explain(message: str, value: object, what: str) -> str:
    problem, _, at = message.partition(" - at `$")
    path = at[:-1] if at.endswith("`") else at
    where = what + path
    missing = _MISSING.match(problem)
    if missing:
        return f"{where}.{missing.group(1)} is missing"
    if " - at `key` in `$" in message:  # a non-string key
        return f"{what}{message.rpartition('`$')[2].rstrip('`')} has a key that is not a string"
    came = _at(value, path)
    text = problem[:1].lower() + problem[1:]
    if came is _NOWHERE or repr(came) in text:
        return f"{where}: {text}"
    return f"{where}: {text}, was {short(came)}"


_NOWHERE = object()


def _at(value: object, path: str) -> object:
    """The value at a msgspec path like ``.orders[2].ticker`` (``_NOWHERE`` if it cannot tell)."""
    for name, index in _STEP.findall(path):
        if name and isinstance(value, dict):
            value = value.get(name, _NOWHERE)
        elif index and isinstance(value, list | tuple) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _NOWHERE
    return value


def price(value: object, where: str) -> int:
    try:
        return fast_price(value, where)
    except NumberError as exc:
        raise WireError(str(exc)) from None


def count(value: object, where: str, *, signed: bool = False) -> int:
    try:
        return fast_count(value, where, signed=signed)
    except NumberError as exc:
        raise WireError(str(exc)) from None


def opt_count(value: object, where: str) -> int | None:
    return None if value is None else count(value, where)


def money(value: object, where: str, default: int | None = None) -> int:
    if value is None:
        if default is None:
            raise WireError(f"{where} is missing")
        return default
    try:
        return parse_money(value, what=where)
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


def time_ms(value: object, where: str, default: int | None = None) -> int:
    """``parse_time_ms``, or ``default`` for null or "" when there is one."""
    if (value is None or value == "") and default is not None:
        return default
    return parse_time_ms(value, where)


def book_side(side: object, outcome: object, what: str) -> Side:
    """``book_side`` (bid|ask), or ``outcome_side`` (yes = bid, no = ask) when it is absent."""
    if side is not None:
        if side == "bid":
            return Side.BID
        if side == "ask":
            return Side.ASK
        raise WireError(f"{what}.book_side must be 'bid' or 'ask', was {short(side)}")
    if outcome == "yes":
        return Side.BID
    if outcome == "no":
        return Side.ASK
    raise WireError(f"{what}.book_side is missing (and outcome_side is {short(outcome)})")


def order_status(value: object, what: str) -> OrderStatus:
    """Kalshi's order status. ``unknown`` (the exchange itself does not know yet, 3.34) and any
    value dora does not know are ``UNKNOWN``: the order may rest, and is looked up."""
    if isinstance(value, str) and value:
        return _ORDER_STATUS.get(value, OrderStatus.UNKNOWN)
    if value is None:
        raise WireError(f"{what}.status is missing")
    raise WireError(f"{what}.status must be a string, was {short(value)}")


def cursor(value: str | None) -> str | None:
    return value or None
