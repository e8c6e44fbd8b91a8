"""Exception types, one per boundary. Messages say what was expected and what came."""

from __future__ import annotations


class DoraError(Exception):
    """Base of every error dora raises on purpose."""


class ConfigError(DoraError):
    """Settings or trading config that fail validation."""


class StorageError(DoraError):
    """Redis or DynamoDB did not do what was asked."""


class ExchangeError(DoraError):
    """An exchange request that did not succeed (``common.kalshi.errors`` has its subclasses)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        details: str = "",
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        status_text = f"HTTP {status} " if status else ""
        code_text = f"[{code}] " if code else ""
        detail_text = f" ({details})" if details else ""
        super().__init__(f"{where}{status_text}{code_text}{message}{detail_text}")


class WireError(ExchangeError, ValueError):
    """An exchange payload that does not have the shape the API promises. An exchange error
    like any other: a request whose answer cannot be read did not succeed, so every safety path
    that handles ``ExchangeError`` handles this one too (issue 19.3)."""


class SchemaError(DoraError, ValueError):
    """A value in Redis or on the control channel that does not decode."""
