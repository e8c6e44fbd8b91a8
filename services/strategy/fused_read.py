"""The strategy's stream read, with the state of every market it names, in one round trip.

A book change used to cost the strategy two round trips before it could compute: the blocking
read of the md and fills streams, then the book, position, own orders (and market facts) of each
market the entries named. Here a script is pipelined right behind the blocking ``XREAD`` on the
same connection. Redis runs a client's pipelined commands in order, so the script runs the moment
the read is answered: it reads the same entries again (``XRANGE`` from the same ids, as many),
takes each entry's ticker, and returns those markets' hashes. The state is as fresh as the old
second read or fresher (it is read after the entry that announced it), one round trip earlier.

Tickers are taken from the event's JSON text (``"ticker":"..."``, as ``encode_event`` writes it);
a market the script did not return, or whose facts it did not return when they are needed, is
read the old way. The script touches keys it does not declare, so it is for a single Redis node:
a sharded strategy (whose md stream names every shard's markets) and Redis Cluster keep the two
round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.keys import Keys

_MARK = "\x00"  # where the ticker goes in a key template

_SCRIPT = """
local n = #KEYS
local count = tonumber(ARGV[n + 1])
local seen, order = {}, {}
for i = 1, n do
  for _, entry in ipairs(redis.call('XRANGE', KEYS[i], '(' .. ARGV[i], '+', 'COUNT', count)) do
    local fields, kind, ticker = entry[2], nil, nil
    for j = 1, #fields, 2 do
      if fields[j] == 'type' then
        kind = fields[j + 1]
      elseif fields[j] == 'data' then
        ticker = string.match(fields[j + 1], '"ticker":"([^"]+)"')
      end
    end
    if ticker then
      if seen[ticker] == nil then
        seen[ticker] = false
        order[#order + 1] = ticker
      end
      if kind == 'market' then seen[ticker] = true end
    end
  end
end
local function key(k, ticker)
  return ARGV[n + 2 * k] .. ticker .. ARGV[n + 2 * k + 1]
end
local out = {}
for _, ticker in ipairs(order) do
  out[#out + 1] = ticker
  out[#out + 1] = redis.call('HGETALL', key(1, ticker))
  out[#out + 1] = redis.call('HGETALL', key(2, ticker))
  out[#out + 1] = redis.call('HGETALL', key(3, ticker))
  if seen[ticker] then
    out[#out + 1] = redis.call('HGETALL', key(4, ticker))
  else
    out[#out + 1] = false
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class MarketState:
    """One market's hashes as the script read them; ``market`` is None when not read."""

    book: dict[str, str]
    pos: dict[str, str]
    orders: dict[str, str]
    market: dict[str, str] | None


def _templates(keys: Keys) -> list[str]:
    out: list[str] = []
    for make in (keys.book, keys.pos, keys.orders, keys.market):
        before, after = make(_MARK).split(_MARK)
        out += [before, after]
    return out


def queue_read(
    pipe: Any, keys: Keys, stream_ids: dict[str, str], *, count: int, block_ms: int
) -> None:
    """Queue the blocking read of ``stream_ids`` and, behind it, the script (two results)."""
    pipe.xread(stream_ids, count=count, block=block_ms)
    names = list(stream_ids)
    # EVAL with the text, not EVALSHA: see common/streams.py (a pipeline would ask SCRIPT
    # EXISTS first, one more round trip)
    pipe.eval(
        _SCRIPT,
        len(names),
        *names,
        *(stream_ids[name] for name in names),
        count,
        *_templates(keys),
    )


def _fields(flat: Any) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}


def parse_states(raw: Any) -> dict[str, MarketState]:
    """The script's answer: ticker -> its state."""
    out: dict[str, MarketState] = {}
    for i in range(0, len(raw or ()), 5):
        ticker, book, pos, orders, market = raw[i : i + 5]
        out[ticker] = MarketState(
            _fields(book), _fields(pos), _fields(orders), None if not market else _fields(market)
        )
    return out
