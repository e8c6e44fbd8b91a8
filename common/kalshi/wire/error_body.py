"""Kalshi's error answers (API.md §1.2) -> ``ErrorBody``: code, message, details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.kalshi.wire import fields


@dataclass(frozen=True, slots=True)
class ErrorBody:
    code: str
    message: str
    details: str


def parse_error_body(body: object) -> ErrorBody:
    """Kalshi's error shapes: nested ``{"error": {code, message, details}}``, flat
    ``{code, message, details}``, the 429 ``{"error": "too many requests"}`` or anything else."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            source: Mapping[str, Any] = inner
        elif isinstance(inner, str):
            return ErrorBody("", inner, "")
        else:
            source = body
        code, message, details = source.get("code"), source.get("message"), source.get("details")
        return ErrorBody(
            "" if code is None else str(code),
            "" if message is None else str(message),
            "" if details is None else str(details),
        )
    if isinstance(body, str):
        return ErrorBody("", body[:500], "")
    return ErrorBody("", "" if body is None else fields.short(body), "")
