"""The account-wide exposure ledger: one Redis hash every executor shard reserves from.

``dora:ledger`` holds, per market, the money at risk the market's owner (the executor holding
its shard's lease) last reserved: ``pos:{ticker}`` (the position's exposure), ``bid:{ticker}`` and
``ask:{ticker}`` (what the side's live orders add if they all fill, ``common.risk.side_exposure``)
and their sum, ``total``. Each value is written as ``money:token:seq``: the fencing token of the
writer's lease and its own sequence, so a write that arrives late (an older pipeline, a paused
process) never replaces a newer one.

It is changed only by the Lua scripts here, each one atomic step:

- ``reserve``: before an order that adds risk leaves, the side's new worst case replaces the old
  one if the total stays within ``max_total_exposure`` (a value that does not rise always
  passes); the same step checks the writer's fencing token, re-checks the market's book and status
  (the guard) and records the new order as ``pending`` in ``dora:orders:{ticker}``: one round trip
  before the request, and the order is in Redis before it leaves.
- ``sync``: the exact worst case after the answers (a cancel, a decrease, a fill): released,
  never checked against the cap (it is what rests at the exchange).
- ``rebuild``: at every start (and when Redis lost its data) the owner's markets are replaced by
  what it learned from the exchange, and ``total`` is summed again.

Every pass and every shard reserves from the one ``total``: a burst of passes, or two shards,
never reserve past the cap together. Releases are idempotent: a value is set, never subtracted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from common.keys import Keys

NO_CAP = -1  # ``sync``: the value is what rests at the exchange; it is set whatever the total
SIDES = ("pos", "bid", "ask")

_COMMON = """
local function fenced(lease_key, token)
  local lease = redis.call('GET', lease_key)
  if not lease then return 'no lease' end
  local held = string.match(lease, '^(%d+):')
  if held ~= token then return 'lease held by ' .. lease end
  return nil
end
local function parse(value)
  if not value then return 0, 0, 0 end
  local money, token, seq = string.match(value, '^(-?%d+):(%d+):(%d+)$')
  if not money then return 0, 0, 0 end
  return tonumber(money), tonumber(token), tonumber(seq)
end
"""

# KEYS: ledger, lease, book, market, orders. ARGV: cap, token, seq, guard ("1"/"0"),
# then the number of orders to record and (client order id, JSON) pairs, then (field, money) pairs.
_RESERVE = (
    _COMMON
    + """
local why = fenced(KEYS[2], ARGV[2])
if why then return {'fenced', why} end
if ARGV[4] == '1' then
  local market = redis.call('HMGET', KEYS[4], 'status', 'problem')
  if market[1] ~= 'active' or (market[2] and market[2] ~= '') then
    return {'guard', 'market_not_open'}
  end
  local book = redis.call('HMGET', KEYS[3], 'stale', 'seq')
  if not book[2] then return {'guard', 'no_book'} end
  if book[1] == '1' then return {'guard', 'book_stale'} end
end
local cap, token, seq = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local records = tonumber(ARGV[5])
local first = 6 + 2 * records
local delta, sets, stale = 0, {}, {}
for i = first, #ARGV, 2 do
  local money = tonumber(ARGV[i + 1])
  local old, old_token, old_seq = parse(redis.call('HGET', KEYS[1], ARGV[i]))
  if old_token < token or (old_token == token and old_seq < seq) then
    delta = delta + money - old
    sets[#sets + 1] = ARGV[i]
    sets[#sets + 1] = ARGV[i + 1] .. ':' .. ARGV[2] .. ':' .. ARGV[3]
  else
    stale[#stale + 1] = ARGV[i]
  end
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if cap >= 0 and delta > 0 and total + delta > cap then
  return {'denied', string.format('%d', total), string.format('%d', delta)}
end
if #sets > 0 then
  redis.call('HSET', KEYS[1], unpack(sets))
  total = redis.call('HINCRBY', KEYS[1], 'total', string.format('%d', delta))
end
for i = 6, first - 1, 2 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
end
local reply = {'ok', string.format('%d', total)}
for _, name in ipairs(stale) do reply[#reply + 1] = name end
return reply
"""
)

# KEYS: ledger, lease. ARGV: token, seq, the number of fields to drop, those fields, then
# (field, money) pairs. The total is summed again from every field.
_REBUILD = (
    _COMMON
    + """
local why = fenced(KEYS[2], ARGV[1])
if why then return {'fenced', why} end
local dropped = tonumber(ARGV[3])
for i = 4, 3 + dropped do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 4 + dropped, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. ':' .. ARGV[1] .. ':' .. ARGV[2])
end
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if fields[i] ~= 'total' then total = total + parse(fields[i + 1]) end
end
redis.call('HSET', KEYS[1], 'total', string.format('%d', total))
return {'ok', string.format('%d', total)}
"""
)


def field(kind: str, ticker: str) -> str:
    """``pos``, ``bid`` or ``ask`` of ``ticker``."""
    return f"{kind}:{ticker}"


def ticker_of(name: str) -> str | None:
    kind, _, ticker = name.partition(":")
    return ticker if kind in SIDES and ticker else None


def parse_value(value: str) -> int:
    """The money of one ledger value (``money:token:seq``)."""
    return int(value.split(":", 1)[0])


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``reserve`` said: ``ok``, ``denied`` (the cap), ``guard`` (book or market: why in
    ``detail``) or ``fenced`` (another executor holds the lease)."""

    outcome: str
    detail: str = ""
    total: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class Record:
    """An order to record as pending in the same step (before its request leaves)."""

    client_order_id: str
    encoded: str


class Ledger:
    """One executor's writes to the ledger; ``token`` is its lease's fencing token."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, lease_key: str, token: Callable[[], int]
    ) -> None:
        self.keys = keys
        self.lease_key = lease_key
        self.token = token  # the lease's fencing token now
        self.seq = 0
        self.written: dict[str, int] = {}  # field -> money this process last set
        self._reserve: Any = redis.register_script(_RESERVE)
        self._rebuild: Any = redis.register_script(_REBUILD)
        self.redis = redis

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def queue_reserve(
        self,
        pipe: Any,
        ticker: str,
        values: Mapping[str, int],
        cap: int,
        guard: bool = False,
        records: tuple[Record, ...] = (),
    ) -> None:
        """Queue in ``pipe`` the reservation of ``values`` (field -> money) for ``ticker``
        against ``cap`` (``NO_CAP``: a release), with the guard and the pending ``records``."""
        keys = self.keys
        args: list[Any] = [cap, self.token(), self._next(), "1" if guard else "0", len(records)]
        for record in records:
            args += [record.client_order_id, record.encoded]
        for name, money in values.items():
            args += [name, money]
        names = [keys.ledger, self.lease_key, keys.book(ticker), keys.market(ticker)]
        names.append(keys.orders(ticker))
        pipe.scripts.add(self._reserve)  # loaded by the pipeline if Redis does not know it
        pipe.evalsha(self._reserve.sha, len(names), *names, *args)

    def answered(self, values: Mapping[str, int], reply: list[Any]) -> Answer:
        """Read ``reserve``'s reply (and remember what was written when it passed)."""
        outcome = str(reply[0])
        if outcome == "ok":
            self.written.update(values)
            for name in reply[2:]:  # a newer write of ours got there first: not ours to know
                self.written.pop(str(name), None)
            return Answer("ok", "", int(reply[1]))
        if outcome == "denied":
            total, delta = int(reply[1]), int(reply[2])
            return Answer("denied", f"ledger {total} + {delta}", total)
        return Answer(outcome, str(reply[1]))

    def changed(self, values: Mapping[str, int]) -> dict[str, int]:
        """The part of ``values`` that differs from what this process last wrote."""
        return {k: v for k, v in values.items() if self.written.get(k) != v}

    async def rebuild(self, owned: Callable[[str], bool], values: Mapping[str, int]) -> Answer:
        """Replace every field of the markets this executor ``owned`` by ``values``."""
        existing = await self.redis.hkeys(self.keys.ledger)
        dropped = [
            name
            for name in existing
            if (t := ticker_of(name)) is not None and owned(t) and name not in values
        ]
        args: list[Any] = [self.token(), self._next(), len(dropped), *dropped]
        for name, money in values.items():
            args += [name, money]
        reply = await self._rebuild(keys=[self.keys.ledger, self.lease_key], args=args)
        if str(reply[0]) != "ok":
            return Answer(str(reply[0]), str(reply[1]))
        self.written = dict(values)
        return Answer("ok", "", int(reply[1]))


async def read_total(redis: aioredis.Redis, keys: Keys) -> int:
    value = await redis.hget(keys.ledger, "total")
    return int(value) if value else 0
