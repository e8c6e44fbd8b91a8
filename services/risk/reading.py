"""What one risk check reads from Redis, item by item: one bad item is skipped and reported.

A corrupt ``dora:pos:*`` hash (or order, book, market) must never take the whole check down
while the heartbeat keeps beating: each item that does not decode becomes a problem of the check
(the check is then marked failing, and the executor adds no risk) and the rest is read. Three
round trips whatever the number of markets: the key scans, then one pipeline for positions and
orders, one for the books and markets of the positions held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from common.book import BookState
from common.domain import MarketStatus, Order, Position
from common.errors import SchemaError
from common.keys import Keys
from common.marks import Mark
from common.redis_codec import decode_book, decode_mark, decode_order, decode_position

SCAN_COUNT = 500


@dataclass(slots=True)
class Snapshot:
    positions: list[Position] = field(default_factory=list)
    orders: dict[str, list[Order]] = field(default_factory=dict)  # every working order, by market
    books: dict[str, BookState | None] = field(default_factory=dict)  # markets with a position
    # their status (None: not known) and close time: all a mark needs of dora:market
    closes: dict[str, tuple[MarketStatus | None, int]] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # markets whose position did not decode
    problems: list[str] = field(default_factory=list)

    def problem(self, what: str) -> None:
        self.problems.append(what)

    @property
    def all_orders(self) -> list[Order]:
        return [o for orders in self.orders.values() for o in orders]


async def read_snapshot(redis: aioredis.Redis, keys: Keys) -> Snapshot:
    snap = Snapshot()
    pos_keys = [k async for k in redis.scan_iter(match=keys.pattern("pos"), count=SCAN_COUNT)]
    order_keys = [k async for k in redis.scan_iter(match=keys.pattern("orders"), count=SCAN_COUNT)]
    pipe = redis.pipeline(transaction=False)
    for key in (*pos_keys, *order_keys):
        pipe.hgetall(key)
    results = await pipe.execute(raise_on_error=False)
    for key, fields in zip(pos_keys, results[: len(pos_keys)], strict=True):
        ticker = keys.ticker_of(key, "pos")
        try:
            snap.positions.append(decode_position(ticker, _fields(fields)))
        except SchemaError as exc:
            snap.unreadable.add(ticker)
            snap.problem(f"{key} skipped: {exc}")
    for key, fields in zip(order_keys, results[len(pos_keys) :], strict=True):
        ticker = keys.ticker_of(key, "orders")
        try:
            values = _fields(fields).values()
        except SchemaError as exc:
            snap.problem(f"{key} skipped: {exc}")
            continue
        for value in values:
            try:
                snap.orders.setdefault(ticker, []).append(decode_order(value))
            except SchemaError as exc:
                snap.problem(f"an order in {key} skipped: {exc}")
    held = [p.ticker for p in snap.positions if p.position]
    if held:
        pipe = redis.pipeline(transaction=False)
        for ticker in held:
            pipe.hgetall(keys.book(ticker))
            pipe.hmget(keys.market(ticker), "status", "close_ms")
        results = await pipe.execute(raise_on_error=False)
        for i, ticker in enumerate(held):
            snap.books[ticker] = _decoded(
                snap, keys.book(ticker), ticker, results[2 * i], decode_book
            )
            snap.closes[ticker] = _close(snap, keys.market(ticker), results[2 * i + 1])
    return snap


async def read_marks(redis: aioredis.Redis, keys: Keys) -> dict[str, Mark]:
    """The marks the last risk process left (``dora:marks``); one that does not decode is
    dropped (the market is marked afresh from its book)."""
    marks: dict[str, Mark] = {}
    for ticker, value in (await redis.hgetall(keys.marks)).items():
        try:
            marks[ticker] = decode_mark(value)
        except SchemaError:
            continue
    return marks


def _fields(result: Any) -> dict[str, Any]:
    """A pipeline's HGETALL answer, or the error it carries (a key of the wrong type)."""
    if isinstance(result, Exception):
        raise SchemaError(f"{type(result).__name__}: {result}")
    return dict(result)


def _close(snap: Snapshot, key: str, result: Any) -> tuple[MarketStatus | None, int]:
    """(status, close time) from ``HMGET status close_ms``; a bad one is a problem."""
    if isinstance(result, Exception):
        snap.problem(f"{key} skipped: {type(result).__name__}: {result}")
        return None, 0
    status, close_ms = result
    try:
        close = int(close_ms or 0)
    except ValueError:
        snap.problem(f"{key} skipped: close_ms must be an integer, was {close_ms!r}")
        close = 0
    return (MarketStatus.parse(status) if status else None), close


def _decoded(snap: Snapshot, key: str, ticker: str, result: Any, decode: Any) -> Any:
    """``decode(ticker, fields)``, None for a missing hash; a bad one is a problem and None."""
    try:
        fields = _fields(result)
        if not fields:
            return None
        return decode(ticker, fields)
    except SchemaError as exc:
        snap.problem(f"{key} skipped: {exc}")
        return None
