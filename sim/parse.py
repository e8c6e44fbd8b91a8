"""Kalshi request bodies and query strings -> engine values, with Kalshi's 400 errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from common.numbers import NumberError, parse_count, parse_price
from sim.engine import OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, SelfTradePrevention, TimeInForce

CREATE_REQUIRED = (
    "ticker",
    "side",
    "count",
    "price",
    "time_in_force",
    "self_trade_prevention_type",
)


def missing(*names: str) -> EngineError:
    return EngineError(400, "missing_parameters", "missing parameters", ", ".join(names))


def invalid(details: str) -> EngineError:
    return EngineError(400, "invalid_parameters", "invalid parameters", details)


def body_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise EngineError(400, "bad_request", "request body must be a JSON object")
    return body


def price_of(value: object, what: str = "price") -> int:
    try:
        return parse_price(value, what=what)
    except NumberError as exc:
        raise invalid(str(exc)) from None


def count_of(value: object, what: str = "count") -> int:
    try:
        return parse_count(value, what=what)
    except NumberError as exc:
        raise invalid(str(exc)) from None


def side_of(value: object) -> BookSide:
    try:
        return BookSide(str(value))
    except ValueError:
        raise invalid(f"side must be bid or ask, was {value!r}") from None


def _optional_bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"{key} must be a boolean, was {value!r}")
    return value


def optional_int(body: Mapping[str, Any], key: str) -> int | None:
    return _optional_int(body, key)


def _optional_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{key} must be an integer, was {value!r}")
    return value


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string, was {value!r}")
    return value


def create_request(raw: object) -> OrderRequest:
    body = body_object(raw)
    absent = [k for k in CREATE_REQUIRED if body.get(k) in (None, "")]
    if absent:
        raise missing(*absent)
    ticker = body["ticker"]
    if not isinstance(ticker, str):
        raise invalid("ticker must be a string")
    try:
        tif = TimeInForce(str(body["time_in_force"]))
    except ValueError:
        raise invalid(f"time_in_force must be one of {[t.value for t in TimeInForce]}") from None
    try:
        stp = SelfTradePrevention(str(body["self_trade_prevention_type"]))
    except ValueError:
        raise invalid("self_trade_prevention_type must be taker_at_cross or maker") from None
    expiration_s = _optional_int(body, "expiration_time")
    if expiration_s is None:
        expiration_s = _optional_int(body, "expiration_ts")
    subaccount = subaccount_of(_optional_int(body, "subaccount"))
    return OrderRequest(
        ticker=ticker,
        side=side_of(body["side"]),
        price=price_of(body["price"]),
        count=count_of(body["count"]),
        tif=tif,
        stp=stp,
        client_order_id=_optional_str(body, "client_order_id") or "",
        expiration_ms=expiration_s * 1000 if expiration_s is not None else None,
        post_only=_optional_bool(body, "post_only"),
        reduce_only=_optional_bool(body, "reduce_only"),
        cancel_on_pause=_optional_bool(body, "cancel_order_on_pause"),
        order_group_id=_optional_str(body, "order_group_id"),
        subaccount=subaccount,
    )


def limit_of(query: Mapping[str, str], default: int, maximum: int) -> int:
    raw = query.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise invalid(f"limit must be an integer 1-{maximum}, was {raw!r}")
    return int(raw)


def subaccount_of(value: object) -> int:
    """A subaccount number 0-63 (absent: 0)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise invalid(f"subaccount must be 0-63, was {value!r}")
    return value


def int_query(query: Mapping[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"{key} must be an integer, was {raw!r}") from None


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("cursor is not valid") from None
