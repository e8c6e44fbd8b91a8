"""Errors of the exchange boundary: what Kalshi (or the way to it) said, as types callers branch on.

``ExchangeError`` carries the HTTP status, Kalshi's error ``code``/``message``/``details`` and the
request (method and path, never headers or keys). Subclasses say what the caller should do:

- ``AuthError`` (401/403): fix the key; never retried.
- ``NotFound`` (404), ``Conflict`` (409, e.g. ``order_already_exists``).
- ``OrderRejected`` (other 4xx): the exchange refused the request; ``code`` says why.
- ``RateLimited`` (429) and ``ServerError`` (5xx): retried by the transport within its budget.
- ``TransportError``: no HTTP answer (connect, timeout, reset); whether a write happened is unknown.
- ``OutcomeUnknown``: a create whose result could not be established even by looking it up;
  ``client_order_id`` lets the caller resolve it later. Never treat it as "failed".
- ``WireError`` (from ``common.errors``): an answer that does not have the promised shape. It is
  an ``ExchangeError`` too, so a malformed answer is handled wherever a failed request is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.errors import ExchangeError, WireError

__all__ = [
    "AuthError",
    "Conflict",
    "ExchangeError",
    "NotFound",
    "OrderRejected",
    "OutcomeUnknown",
    "RateLimited",
    "ServerError",
    "TransportError",
    "WireError",
    "error_for_status",
    "error_from_body",
]

if TYPE_CHECKING:
    from common.kalshi.wire.error_body import ErrorBody


class AuthError(ExchangeError):
    """401/403: the key, its signature or its scope was refused."""


class NotFound(ExchangeError):
    """404: no such order, market or group."""


class Conflict(ExchangeError):
    """409: e.g. ``order_already_exists`` for a repeated ``client_order_id``."""


class OrderRejected(ExchangeError):
    """A 4xx refusal of a well-formed request (post-only cross, balance, market inactive...)."""


class RateLimited(ExchangeError):
    """429: the account's token bucket was empty."""


class ServerError(ExchangeError):
    """5xx from the exchange."""


class TransportError(ExchangeError):
    """No HTTP answer arrived (connect error, timeout, connection reset)."""


class OutcomeUnknown(ExchangeError):
    """A create whose outcome is not known even after looking it up: resolve it later by
    ``client_order_id``; the order may be resting."""

    def __init__(self, client_order_id: str, message: str, **kwargs: object) -> None:
        self.client_order_id = client_order_id
        super().__init__(f"{message} (client_order_id={client_order_id})", **kwargs)  # type: ignore[arg-type]


def error_for_status(status: int) -> type[ExchangeError]:
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return OrderRejected


def error_from_body(body: ErrorBody, status: int, method: str, path: str) -> ExchangeError:
    """The error one item of a batch answer names (``status`` 0: the item has none of its own)."""
    kind: type[ExchangeError] = OrderRejected
    if body.code == "order_already_exists":
        kind = Conflict
    elif status:
        kind = error_for_status(status)
    return kind(
        body.message or "refused",
        status=status,
        code=body.code,
        details=body.details,
        method=method,
        path=path,
    )
