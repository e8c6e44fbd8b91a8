"""Appending to the event streams without ever trimming what the persister has not stored.

Every producer calls ``append`` (or ``queue_append`` inside its own pipeline). Streams are capped
at ``STREAM_MAXLEN`` so Redis memory stays bounded, with one rule for the streams the persister
consumes (``PERSISTED_STREAMS``):

    An entry is trimmed only when it is both beyond the cap and acknowledged by the
    ``persister`` consumer group (older than its oldest pending entry and not after its
    last-delivered id).

So while DynamoDB is down the backlog simply grows (watch ``dora:persister:lag``) and nothing is
lost; once the persister has drained it, the next appends trim back to the cap. It is one Lua
script, one round trip: XADD and XLEN always, and only when the stream is over the cap by a slack
(1% or 64 entries) does it look at the group (XINFO GROUPS, XPENDING summary) and trim with
XTRIM MINID up to the last trimmable entry, at most ``TRIM_CHUNK`` entries per append. Before the
persister has created its group (it does so before it marks Redis restored, so before anyone
trades) the stream is capped by plain approximate MAXLEN. The other streams (``md``, ``targets``)
are capped by plain approximate MAXLEN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from common.keys import Keys
from common.messages import encode_event

# Streams are capped (approximately) so Redis memory stays bounded. The persister's streams are
# never trimmed below what its consumer group has not acknowledged (see above).
STREAM_MAXLEN = {
    "md": 50_000,
    "fills": 200_000,
    "targets": 50_000,
    "orders": 200_000,
    "decisions": 200_000,
    "pnl": 50_000,
}

PERSISTER_GROUP = "persister"
PERSISTED_STREAMS = ("orders", "fills", "decisions", "pnl")
TRIM_CHUNK = 1_000

_APPEND_LUA = b"""
local id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[3], 'data', ARGV[4])
local maxlen = tonumber(ARGV[2])
local len = redis.call('XLEN', KEYS[1])
if len <= maxlen + math.max(64, math.floor(maxlen / 100)) then
  return id
end
local bound = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  if name == ARGV[1] then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
    if pending[1] > 0 then bound = '(' .. pending[2] else bound = last end
  end
end
if bound == nil then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen)
  return id
end
local over = math.min(len - maxlen, tonumber(ARGV[5]))
local old = redis.call('XRANGE', KEYS[1], '-', bound, 'COUNT', over)
if #old > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', old[#old][1])
end
return id
"""
# The script object only carries the text and its SHA; the client is passed at each call.
_APPEND = AsyncScript(cast(Any, None), _APPEND_LUA)
_APPEND_TEXT = _APPEND_LUA.decode()


def _args(
    keys: Keys, stream: str, kind: str, payload: Mapping[str, Any], maxlen: int | None
) -> tuple[str, int, dict[str, bytes]]:
    cap = STREAM_MAXLEN[stream] if maxlen is None else maxlen
    if cap < 1:
        raise ValueError(f"maxlen must be >= 1, was {cap}")
    # in cluster mode the per-shard streams go to the ticker's shard (common/keys.py)
    ticker = payload.get("ticker")
    name = keys.stream(stream, ticker if isinstance(ticker, str) else None)
    return name, cap, encode_event(kind, payload)


async def append(
    redis: aioredis.Redis,
    keys: Keys,
    stream: str,
    kind: str,
    payload: Mapping[str, Any],
    *,
    maxlen: int | None = None,
) -> str:
    """XADD one event (``type`` + JSON ``data``) and keep the stream capped; returns its id."""
    name, cap, fields = _args(keys, stream, kind, payload, maxlen)
    if stream not in PERSISTED_STREAMS:
        entry_id = await redis.xadd(name, fields, maxlen=cap, approximate=True)  # type: ignore[arg-type]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    entry_id = await _APPEND(
        keys=[name],
        args=[PERSISTER_GROUP, cap, fields["type"], fields["data"], TRIM_CHUNK],
        client=redis,
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def queue_append(
    pipe: aioredis.client.Pipeline,
    keys: Keys,
    stream: str,
    kind: str,
    payload: Mapping[str, Any],
    *,
    maxlen: int | None = None,
) -> None:
    """The same as ``append``, queued in a pipeline or MULTI transaction (for producers that
    update a hash and append its event atomically). The entry id is in the pipeline's results."""
    name, cap, fields = _args(keys, stream, kind, payload, maxlen)
    if stream not in PERSISTED_STREAMS:
        pipe.xadd(name, fields, maxlen=cap, approximate=True)  # type: ignore[arg-type]
        return
    # EVAL with the text, not EVALSHA: a pipeline holding a registered script asks SCRIPT
    # EXISTS first, one more round trip per execute on the executor's hot path. Redis caches
    # the compiled script by its hash, so the text costs ~1 KB on the wire and nothing else.
    pipe.eval(
        _APPEND_TEXT, 1, name, PERSISTER_GROUP, cap, fields["type"], fields["data"], TRIM_CHUNK
    )


def entry_ms(entry_id: str | bytes) -> int:
    """When Redis added a stream entry: the milliseconds part of its id (``ValueError`` if
    ``entry_id`` is no entry id)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.split("-", 1)[0])
