"""What the simulated exchange refuses: Kalshi's error code and HTTP status (API.md §8).

Its own module so that the engine and the functions over it (order groups, lifecycle, the REST
layer) share it without importing each other.
"""

from __future__ import annotations


class EngineError(Exception):
    """An order operation the exchange refuses; carries Kalshi's error code and HTTP status."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(f"{code}: {message}{' (' + details + ')' if details else ''}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def not_found(what: str) -> EngineError:
    return EngineError(404, "not_found", f"{what} not found")


def market_inactive(ticker: str) -> EngineError:
    return EngineError(400, "MARKET_INACTIVE", "market is not open for trading", ticker)


def paused(what: str) -> EngineError:
    """During the exchange's pause: ``trading`` refuses creates and amends, ``exchange`` all
    order operations (the code is the simulator's: Kalshi's own is not documented)."""
    return EngineError(400, "trading_paused", f"{what} is paused", "exchange maintenance")
