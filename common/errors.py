"""Exception types, one per boundary. Messages say what was expected and what came."""

from __future__ import annotations


class DoraError(Exception):
    """Base of every error dora raises on purpose."""


class ConfigError(DoraError):
    """Settings or trading config that fail validation."""


class StorageError(DoraError):
    """Redis or DynamoDB did not do what was asked."""


class WireError(DoraError, ValueError):
    """An exchange payload that does not have the shape the API promises."""


class SchemaError(DoraError, ValueError):
    """A value in Redis or on the control channel that does not decode."""
