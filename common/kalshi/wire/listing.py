"""Listings read item by item: one malformed item is set aside, the rest are read (issue 19.3).

A page of orders, fills, settlements or positions is a list the exchange fills with items dora
parses one at a time. With a ``skipped`` list, an item that does not parse goes there as a
``Skipped`` (which listing, its id or ticker when that much can be read, and why) and the page
goes on; without one, the first bad item raises ``WireError`` as before. The page itself (not an
object, the list not a list) still raises: nothing of it can be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.errors import WireError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Skipped:
    """One item of a listing that could not be read."""

    what: str  # order, fill, settlement, position
    key: str  # its id or ticker when readable, else "[index]"
    reason: str


def item_key(item: object, names: Sequence[str], index: int) -> str:
    """The first of ``names`` that ``item`` holds as a non-empty string, else ``[index]``."""
    if isinstance(item, dict):
        for name in names:
            value = item.get(name)
            if isinstance(value, str) and value:
                return value[:200]
    return f"[{index}]"


def read_items(
    raw: list[Any] | None,
    parse: Callable[[Any], T],
    what: str,
    key_names: Sequence[str],
    skipped: list[Skipped] | None,
) -> list[T]:
    """Every item of ``raw`` parsed; the ones that fail go to ``skipped`` (or raise without it)."""
    out: list[T] = []
    for index, item in enumerate(raw or ()):
        try:
            out.append(parse(item))
        except WireError as exc:
            if skipped is None:
                raise
            skipped.append(Skipped(what, item_key(item, key_names, index), str(exc)[:300]))
    return out
