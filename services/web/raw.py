"""The dashboard's reads: every Redis value of one tick, as it is (``read_raw``).

One ``SMEMBERS`` and one pipeline per tick. A key of the wrong type (a person's ``SET`` where dora
keeps a hash) answers WRONGTYPE: that value reads as ``None`` with ``"<key>: <why>"`` in
``errors``, and every other value is read as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.keys import SERVICES, Keys
from common.redis_reads import readable

RECENT_FILLS = 25
RECENT_ORDERS = 40
BOOK_FIELDS = ("best_bid", "best_bid_size", "best_ask", "best_ask_size", "stale", "stale_reason")
MARKET_FIELDS = ("status", "close_ms")


@dataclass(frozen=True, slots=True)
class RawState:
    """The Redis values of one tick, undecoded. A value Redis refused to read (a key of the
    wrong type) is ``None``, and ``"<key>: <why>"`` is in ``errors`` (a market's own in the
    seventh item of its values)."""

    now_ms: int
    tickers: Sequence[str]
    risk: Mapping[str, str] | None
    cfg_global: Mapping[str, str]
    cfg_invalid: Mapping[str, str]
    persister_lag: str | None
    exchange: Mapping[str, str]
    heartbeats: Mapping[str, str | None]
    # per ticker: cfg, book, market, pos, orders, targets, what of these could not be read
    markets: Sequence[Sequence[Any]]
    fills: Sequence[tuple[str, Mapping[str, Any]]] = field(default_factory=tuple)
    orders: Sequence[tuple[str, Mapping[str, Any]]] = field(default_factory=tuple)
    errors: Sequence[str] = field(default_factory=tuple)  # the account-level keys' ones
    risk_error: str = ""  # why ``dora:risk`` could not be read, when it could not
    heartbeat_errors: Mapping[str, str] = field(default_factory=dict)  # by process name


async def read_raw(
    redis: aioredis.Redis,
    keys: Keys,
    now_ms: int,
    slow: Mapping[str, tuple[Mapping[str, str], Sequence[str | None]]] | None = None,
) -> RawState:
    """Every value the view needs. ``slow``: each market's config and exchange facts as last
    read (they change rarely): those markets' two slow keys are not read again. A market not in
    it, or ``slow=None``, is read whole."""
    errors: list[str] = []
    try:
        tickers = sorted(await redis.smembers(keys.cfg_markets))
    except ResponseError as exc:  # a wrong type: no market list, the rest still worth seeing
        errors.append(f"{keys.cfg_markets}: {exc}")
        tickers = []
    known = slow or {}
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.risk)
    pipe.hgetall(keys.cfg_global)
    pipe.hgetall(keys.cfg_invalid)
    pipe.get(keys.persister_lag)
    pipe.hgetall(keys.exchange)
    # one heartbeat per shard of the sharded processes (``executor-0``, ...)
    beat_keys = [key for name in SERVICES for key in keys.hb_all(name)]
    for key in beat_keys:
        pipe.get(key)
    for ticker in tickers:
        if ticker not in known:
            pipe.hgetall(keys.cfg_market(ticker))
            pipe.hmget(keys.market(ticker), MARKET_FIELDS)
        pipe.hmget(keys.book(ticker), BOOK_FIELDS)
        pipe.hgetall(keys.pos(ticker))
        pipe.hgetall(keys.orders(ticker))
        pipe.hgetall(keys.targets(ticker))
    # the fills stream carries the order updates too: read enough entries to find the fills
    pipe.xrevrange(keys.stream("fills"), count=RECENT_FILLS * 3)
    order_streams = keys.streams("orders")  # one per shard in cluster mode
    for name in order_streams:
        pipe.xrevrange(name, count=RECENT_ORDERS)
    results = await pipe.execute(raise_on_error=False)  # one WRONGTYPE spoils only its own value
    shards = len(order_streams)
    streams = zip(order_streams, results[len(results) - shards :], strict=True)
    recent = [e for name, got in streams for e in readable(name, got, None, errors) or ()]
    if shards > 1:  # newest first across the shards' streams
        recent.sort(key=lambda e: tuple(int(p) for p in str(e[0]).split("-")), reverse=True)
    first = (keys.risk, keys.cfg_global, keys.cfg_invalid, keys.persister_lag, keys.exchange)
    risk, cfg_global, cfg_invalid, lag, exchange = (
        readable(key, value, None, errors) for key, value in zip(first, results[:5], strict=True)
    )
    risk_error = next((e for e in errors if e.startswith(f"{keys.risk}: ")), "")
    beats, beat_errors = {}, {}
    for key, value in zip(beat_keys, results[5 : 5 + len(beat_keys)], strict=True):
        name, problem = keys.ticker_of(key, "hb"), len(errors)
        beats[name] = readable(key, value, None, errors)
        if len(errors) > problem:
            beat_errors[name] = errors[-1]
    at = 5 + len(beat_keys)
    markets = []
    for ticker in tickers:
        unreadable: list[str] = []
        if ticker in known:
            cfg, market = known[ticker]
        else:
            cfg = readable(keys.cfg_market(ticker), results[at], None, unreadable)
            market = readable(keys.market(ticker), results[at + 1], None, unreadable)
            at += 2
        book, pos, orders, targets = (
            readable(key, value, None, unreadable)
            for key, value in zip(
                (keys.book(ticker), keys.pos(ticker), keys.orders(ticker), keys.targets(ticker)),
                results[at : at + 4],
                strict=True,
            )
        )
        at += 4
        markets.append((cfg, book, market, pos, orders, targets, tuple(unreadable)))
    return RawState(
        now_ms=now_ms,
        tickers=tickers,
        risk=risk,
        cfg_global=cfg_global or {},
        cfg_invalid=cfg_invalid or {},
        persister_lag=lag,
        exchange=exchange or {},
        heartbeats=beats,
        markets=markets,
        fills=readable(keys.stream("fills"), results[-1 - shards], None, errors) or (),
        orders=recent[:RECENT_ORDERS],
        errors=tuple(errors),
        risk_error=risk_error,
        heartbeat_errors=beat_errors,
    )
