"""Replies of a pipeline run with ``raise_on_error=False``, where one key a person replaced with
a value of the wrong type answers WRONGTYPE in its place: that read alone is refused, and every
other reply stands. A failed connection is still raised."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError


def refused(value: Any) -> str | None:
    """Why Redis refused this one read (a key of the wrong type), or None when it read. Any
    other error (the connection failed) is raised."""
    if isinstance(value, ResponseError):
        return str(value)
    if isinstance(value, Exception):
        raise value
    return None


def readable(key: str, value: Any, empty: Any, errors: list[str]) -> Any:
    """``value`` as read, or ``empty`` with ``"<key>: <why>"`` in ``errors`` when Redis refused
    the read."""
    why = refused(value)
    if why is not None:
        errors.append(f"{key}: {why}")
        return empty
    return value
