"""Fixtures of the exchange adapter's tests."""

from tests.kalshi.rawhttp import serve

__all__ = ["serve"]
