"""The strategy's reads of the md and fills streams: always one outstanding, and each with the
state of every market it names, in one round trip.

**Always listening.** A task keeps a blocking ``XREAD`` outstanding at all times and hands what
it read to the step. Before, the strategy read, computed, published, and only then read again: a
book change published meanwhile waited for all of that and one more round trip (on the shared
bench box, three quarters of the book changes arrived while the strategy was not listening, and
waited 4 ms for it at the median). Now it is in the socket when the step wants it.

**The state comes with the read.** A book change used to cost two round trips before the
strategy could compute: the read of the streams, then the book, position, own orders (and market
facts) of each market the entries named. Here a script is pipelined right behind the blocking
``XREAD`` on the same connection. Redis runs a client's pipelined commands in order, so the script
runs the moment the read is answered: it reads the same entries again (``XRANGE`` from the same
ids, as many), takes each entry's ticker, and returns those markets' hashes. The state is as fresh
as the old second read or fresher (it is read after the entry that announced it). It returns the
entries too, and they are the batch: Redis answers a blocked ``XREAD`` at the first ``XADD`` that
feeds it, but runs the script after the rest of that writer's pipeline, so a burst of several
markets' books is heard in one read, not its first market alone.

Tickers are taken from the event's JSON text (``"ticker":"..."``, as ``encode_event`` writes it);
a market the script did not return, or whose facts it did not return when they are needed, is
read the old way. The script touches keys it does not declare, so it is for a single Redis node:
a sharded strategy (whose md stream names every shard's markets) and any strategy on a Redis
Cluster (``DORA_REDIS_CLUSTER``) keep the separate reads, and a Redis that refuses the script
turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.direct_redis import direct_for, run_pipeline
from common.keys import Keys
from common.redis_reads import refused
from common.runtime import Context
from common.stream_read import xread
from common.trace import now_us

ANSWER_WAIT_S = 0.02  # the longest the next read waits for the step's answer to the last
_MARK = "\x00"  # where the ticker goes in a key template
# what a hash that does not read is called in the log and, for the first three, in the targets
UNREADABLE = {
    "book": "bad_book",
    "pos": "bad_position",
    "orders": "bad_orders",
    "market": "bad_market_meta",
    "fv": "bad_fair_value",
}

# the targets' reasons of a market not quoted because a value of it does not read
UNREADABLE_REASONS = frozenset(("bad_book", "bad_position", "bad_orders", "no_market_info"))


class BadValueLog:
    """Says once that a market's value does not read (per market and kind, again when the reason
    changes or after the market read whole): the strategy computes a market at each book change
    and every second, and a line each time would bury everything else in the log."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.said: dict[tuple[str, str], str] = {}

    def warn(self, event: str, ticker: str, reason: str) -> None:
        if self.said.get((ticker, event)) != reason:
            self.said[(ticker, event)] = reason
            self.log.warning(event, market=ticker, reason=reason)

    def read_whole(self, ticker: str) -> None:
        if self.said:
            for key in [k for k in self.said if k[0] == ticker]:
                del self.said[key]


_SCRIPT = """
local n = #KEYS
local count = tonumber(ARGV[n + 1])
local seen, order, read = {}, {}, {}
for i = 1, n do
  local entries = redis.call('XRANGE', KEYS[i], '(' .. ARGV[i], '+', 'COUNT', count)
  read[i] = entries
  for _, entry in ipairs(entries) do
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
-- a key of the wrong type (a person's SET where dora keeps a hash) answers its error text in
-- its place: it spoils that market alone, not the script (which would be turned off)
local function hash(k, ticker)
  local fields = redis.pcall('HGETALL', key(k, ticker))
  if fields.err then return fields.err end
  return fields
end
local out = {}
for _, ticker in ipairs(order) do
  out[#out + 1] = ticker
  out[#out + 1] = hash(1, ticker)
  out[#out + 1] = hash(2, ticker)
  out[#out + 1] = hash(3, ticker)
  if seen[ticker] then
    out[#out + 1] = hash(4, ticker)
  else
    out[#out + 1] = false
  end
  -- the external fair value is the trader's own key: one of the wrong type reads as none
  local fv = redis.pcall('HGETALL', key(5, ticker))
  if fv.err then fv = {} end
  out[#out + 1] = fv
end
-- the entries themselves too: every one after the ids, not only those the XREAD was answered with
return {out, read}
"""


@dataclass(frozen=True, slots=True)
class MarketState:
    """One market's hashes as the script read them; ``market`` is None when not read. A hash
    Redis refused to read (a key of the wrong type) is empty, and ``bad`` says why, by name
    (``book``, ``pos``, ``orders``, ``market``): that market is not quoted."""

    book: dict[str, str]
    pos: dict[str, str]
    orders: dict[str, str]
    market: dict[str, str] | None
    fv: dict[str, str]  # the external fair value (``dora:fv:{ticker}``), empty when none
    bad: Mapping[str, str] = field(default_factory=dict)


def state_of(book: Any, pos: Any, orders: Any, market: Any, fv: Any) -> MarketState:
    """A market's state from a pipeline run with ``raise_on_error=False``: an error answer (a
    key of the wrong type) is named in ``bad``; a dropped connection is raised. A fair value
    that does not read is none (``fv`` in ``bad``, for the log)."""
    bad: dict[str, str] = {}
    values = {"book": book, "pos": pos, "orders": orders, "market": market, "fv": fv}
    for name, value in values.items():
        why = refused(value)
        if why is not None:
            bad[name] = why
            values[name] = {}
    read = values["market"] if isinstance(values["market"], dict) and values["market"] else None
    return MarketState(values["book"], values["pos"], values["orders"], read, values["fv"], bad)


def _templates(keys: Keys) -> list[str]:
    out: list[str] = []
    for make in (keys.book, keys.pos, keys.orders, keys.market, keys.fv):
        before, after = make(_MARK).split(_MARK)
        out += [before, after]
    return out


def queue_read(
    pipe: Any, keys: Keys, stream_ids: dict[str, str], *, count: int, block_ms: int
) -> None:
    """Queue the blocking read of ``stream_ids`` and, behind it, the script (two results). The
    read only waits for the first entry (one is enough to wake the step); the script returns
    every entry, up to ``count`` per stream."""
    pipe.xread(stream_ids, count=1, block=block_ms)
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


def parse_entries(names: list[str], read: Any) -> list[Any]:
    """The script's entries as ``XREAD`` answers them: (stream, [(id, fields), ...]) per stream
    that has any."""
    out: list[Any] = []
    for name, entries in zip(names, read or (), strict=False):
        if entries:
            out.append((name, [(entry_id, _fields(flat)) for entry_id, flat in entries]))
    return out


def parse_states(raw: Any) -> dict[str, MarketState]:
    """The script's states: ticker -> its state. A hash that did not read is its error text."""
    out: dict[str, MarketState] = {}
    for i in range(0, len(raw or ()), 6):
        ticker, book, pos, orders, market, fv = raw[i : i + 6]
        bad: dict[str, str] = {}
        hashes = {"book": book, "pos": pos, "orders": orders, "market": market}
        for name, value in hashes.items():
            if isinstance(value, (str, bytes)):
                bad[name] = value.decode() if isinstance(value, bytes) else value
                hashes[name] = None
        out[ticker] = MarketState(
            _fields(hashes["book"]),
            _fields(hashes["pos"]),
            _fields(hashes["orders"]),
            None if not market or "market" in bad else _fields(market),
            _fields(fv),
            bad,
        )
    return out


@dataclass(frozen=True, slots=True)
class Batch:
    """One read: the entries per stream (as ``XREAD`` answers), the state of the markets they
    name (empty without the script), and when it was read (tracing)."""

    response: list[Any]
    states: dict[str, MarketState]
    read_us: int


class StreamReader:
    """Keeps one read of ``stream_ids`` outstanding (``run``, a task) and queues what it read
    for ``take``. ``stream_ids`` moves on as entries are read."""

    def __init__(
        self, ctx: Context, stream_ids: dict[str, str], *, fused: bool, count: int, block_ms: int
    ) -> None:
        self.ctx = ctx
        self.stream_ids = stream_ids
        self.fused = fused
        self.count = count
        self.block_ms = block_ms
        self.batches: list[Batch] = []
        self.arrived = asyncio.Event()
        self.taken = asyncio.Event()
        self.answering: asyncio.Future[None] | None = None  # until the step has answered
        # the fused read on a connection of its own, through hiredis (common.direct_redis)
        self.direct = direct_for(ctx.redis) if fused else None

    async def run(self) -> None:
        failures = 0
        task = asyncio.current_task()
        # redis-py can turn a cancellation inside a blocking read into an error of its own: the
        # loop checks for a pending cancel itself, or a stop would wait on it for ever
        while task is None or not task.cancelling():
            try:
                batch = await self.read_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the step sees nothing new meanwhile
                failures += 1
                self.ctx.log.warning("stream_read_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(min(0.05 * 2 ** min(failures, 7), 5.0))
                continue
            if batch.response:
                self.batches.append(batch)
                self.arrived.set()
                await self._wait_for_answer()
            if len(self.batches) > 1:
                # The step is busy: one read went out while it computed and came back. Reading
                # on before it takes them would only make more, smaller reads (CPU per entry)
                # and no fresher answers; the next read goes out when it takes them.
                self.taken.clear()
                await self.taken.wait()

    async def read_once(self) -> Batch:
        ctx = self.ctx
        states: dict[str, MarketState] = {}
        if self.fused:
            pipe = ctx.redis.pipeline(transaction=False)
            queue_read(pipe, ctx.keys, self.stream_ids, count=self.count, block_ms=self.block_ms)
            response, raw = await run_pipeline(
                pipe, self.direct, raise_on_error=False, block_s=self.block_ms / 1000
            )
            if isinstance(response, Exception):
                raise response
            if isinstance(raw, Exception):
                # e.g. a Redis that refuses the script: read the old way from now on
                ctx.log.warning("fused_read_off", reason=str(raw))
                self.fused = False
            else:
                states = parse_states(raw[0])
                # Redis answers a blocked XREAD at the first XADD that feeds it; the script runs
                # after the rest of that client's pipeline (a burst of several markets' books),
                # so its entries are the whole burst: the step hears them all at once, not the
                # first alone and the others after one more read
                response = parse_entries(list(self.stream_ids), raw[1]) or response
        else:
            response = await xread(
                ctx.redis,
                self.stream_ids,
                count=self.count,
                block=self.block_ms,
                cluster=ctx.keys.cluster,
            )
        read_us = now_us()
        for stream, entries in response or []:
            self.stream_ids[stream] = entries[-1][0]
        return Batch(response or [], states, read_us)

    async def _wait_for_answer(self) -> None:
        """The step answers first: its targets are written to Redis before the next read is
        built and sent (a fused read's pipeline is ~0.2 ms of this loop, which every tick's
        answer waited behind). Entries written meanwhile are answered at once by that next read.
        Not for ever: a step that does not say so within ``ANSWER_WAIT_S`` is not waited for."""
        loop = asyncio.get_running_loop()
        waiter = self.answering = loop.create_future()
        timer = loop.call_later(ANSWER_WAIT_S, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.answering = None

    async def aclose(self) -> None:
        if self.direct is not None:
            await self.direct.aclose()

    def answer(self) -> None:
        """The step has published its answer to what it took: the next read goes out at the
        loop's next turn (the step yields for it before anything else)."""
        if self.answering is not None:
            _resolve(self.answering)

    async def take(self, timeout_s: float) -> list[Batch]:
        """What was read since the last call, waiting up to ``timeout_s`` for something."""
        if not self.batches:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), timeout_s)
        self.arrived.clear()
        batches, self.batches = self.batches, []
        self.taken.set()
        return batches


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
