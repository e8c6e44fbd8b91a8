"""The account-wide exposure ledger: one Redis hash every executor shard reserves from.

``dora:ledger`` holds, per market, the money at risk the market's owner (the executor holding
its shard's lease) last reserved: ``pos:{ticker}`` (the position's exposure), ``bid:{ticker}`` and
``ask:{ticker}`` (what the side's live orders add if they all fill, ``common.risk.side_exposure``)
and their sum, ``total``. Each value is written as ``money:token:seq``: the fencing token of the
writer's lease and its own sequence, so a write that arrives late (an older pipeline, a paused
process) never replaces a newer one.

Each event's part (for ``max_event_loss``) is kept per market with the event's sums beside it,
so a step costs the same however many markets the event has (``common.ledger_scripts``).

It is changed only by the Lua scripts (``common.ledger_scripts``), each one atomic step:

- ``reserve``: before an order that adds risk leaves, the side's new worst case replaces the old
  one if the total stays within ``max_total_exposure`` (a value that does not rise always
  passes), and the market's part of its event if the event's worst stays within its
  ``max_event_loss`` (a part that raises neither outcome's loss always passes); the same step checks the writer's fencing token, re-checks the market's book and status
  (the guard) and records the new order as ``pending`` in ``dora:orders:{ticker}``: one round trip
  before the request, and the order is in Redis before it leaves.
- ``sync``: the exact worst case after the answers (a cancel, a decrease, a fill): released,
  never checked against the cap (it is what rests at the exchange).
- ``rebuild``: at every start (and when Redis lost its data) the owner's markets are replaced by
  what it learned from the exchange, and ``total`` is summed again.

Redis can also lose only its newest writes (a restart from an AOF written every second, a
failover to a replica that lagged). The writer's memory then says the ledger holds values it no
longer does, and the room they held would be given away. So each writer keeps a mark in the
ledger (``mark:{lease key}``: the newest of its steps applied) and sends with every step the
newest one Redis acknowledged: a mark below it means acknowledged writes were lost, and every
step of that writer is refused (``lost``) until it rebuilds its part from memory. The executor
also reads its mark with each risk refresh, so an idle writer finds out too.

Every pass and every shard reserves from the one ``total``: a burst of passes, or two shards,
never reserve past the cap together. Releases are idempotent: a value is set, never subtracted.

On a Redis Cluster (``Keys.cluster``) no script may take keys of two slots: the ledger is in the
account's ``{acct}`` slot, a market's lease, book, market and order keys in its shard's ``{gN}``.
``Ledger.reserve`` is then two steps and two round trips: the reservation in the account's slot
(the caps; the token only orders the writes), then the shard step in the shard's slot (the
lease's fence, the guard, the pending records); a shard step that refuses has the reservation
set back to what rests now (until then the ledger holds more than rests: never less). A release
(``sync``) is the account's step alone, ordered by the token; ``rebuild`` reads the lease in its
slot, then rebuilds in the account's. On one Redis nothing of this changes: one script.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson
import redis.asyncio as aioredis

from common import ledger_scripts as lua
from common.keys import Keys

NO_CAP = -1  # ``sync``: the value is what rests at the exchange; it is set whatever the total
SIDES = ("pos", "bid", "ask")


@dataclass(frozen=True, slots=True)
class EventPart:
    """One market's parts of its event's worst loss (``common.event_loss``): ``py``/``pn`` (the
    position's loss if YES / if NO), ``b`` (its bids), ``a`` (its asks), in money."""

    event: str
    exclusive: bool
    parts: Mapping[str, int]
    limit: int = NO_CAP
    before: Mapping[str, int] | None = None  # the parts before this step (None: ``parts``)


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
        self.written_events: dict[str, dict[str, int]] = {}  # ticker -> its event parts set
        # this writer's mark in the ledger (``common.ledger_scripts.MARK``): the newest of its
        # steps Redis acknowledged (``acked``) must still be there, or Redis lost writes
        self.mark = f"mark:{lease_key}"
        self.acked = 0
        self.lost = ""  # why this writer's part cannot be believed until it rebuilds ("": it can)
        self.total = 0  # the ledger's total as the last answer said
        # markets with a step of ours queued or on its way: until it is answered, ``written``
        # may say more than the ledger will hold (a release lowers values)
        self.writing: Counter[str] = Counter()
        self.cluster = keys.cluster  # two steps per reservation, one per slot (``reserve``)
        self._reserve: Any = redis.register_script(
            lua.RESERVE_ACCOUNT if self.cluster else lua.RESERVE
        )
        self._shard_step: Any = redis.register_script(lua.SHARD_STEP)
        self._rebuild: Any = redis.register_script(
            lua.REBUILD_ACCOUNT if self.cluster else lua.REBUILD
        )
        self.redis = redis

    @contextmanager
    def steps_for(self, tickers: Iterable[str]) -> Iterator[None]:
        """Mark ``tickers`` as written to (``writing``) while the block runs."""
        names = list(tickers)
        self.writing.update(names)
        try:
            yield
        finally:
            self.writing.subtract(names)
            for name in names:
                if self.writing[name] <= 0:
                    del self.writing[name]

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
        event: EventPart | None = None,
        before: Mapping[str, int] | None = None,
    ) -> None:
        """Queue in ``pipe`` the reservation of ``values`` (field -> money) for ``ticker``
        against ``cap`` (``NO_CAP``: a release) and of its ``event`` part against the event's
        limit, with the guard and the pending ``records``: one script, one slot. In cluster
        mode only a release is queued so (the account's slot alone, ordered by the token);
        a reservation there is ``reserve``'s two steps."""
        if self.cluster and (cap != NO_CAP or guard or records):
            raise ValueError("in cluster mode a reservation is two steps: Ledger.reserve")
        keys = self.keys
        names = [keys.ledger]
        if not self.cluster:
            names += [self.lease_key, keys.book(ticker), keys.market(ticker), keys.orders(ticker)]
        names.append(keys.ledger_event(event.event if event is not None else ""))
        args = self._args(ticker, values, cap, guard, records, event, before)
        self._queue_script(pipe, self._reserve, names, args)

    def _queue_script(self, pipe: Any, script: Any, names: list[str], args: list[Any]) -> None:
        # By its hash alone: a pipeline that carries a script asks Redis first whether it knows it
        # (one more round trip before every send). ``load`` loads it at start and whenever Redis
        # says NOSCRIPT (restarted, flushed): the caller loads it and tries again. A cluster
        # pipeline refuses EVALSHA (redis-py): there the text goes, routed by its keys' slot.
        if self.cluster:
            pipe.eval(script.script, len(names), *names, *args)
        else:
            pipe.evalsha(script.sha, len(names), *names, *args)

    def _args(
        self,
        ticker: str,
        values: Mapping[str, int],
        cap: int,
        guard: bool,
        records: tuple[Record, ...],
        event: EventPart | None,
        before: Mapping[str, int] | None,
    ) -> list[Any]:
        args: list[Any] = [cap, self.token(), self._next(), "1" if guard else "0", len(records)]
        if event is None:
            args += ["", NO_CAP, "0", "{}", ticker]
        else:
            now = event.before if event.before is not None else event.parts
            pairs = {k: [now.get(k, v), v] for k, v in event.parts.items()}
            parts = orjson.dumps(pairs).decode()
            args += [event.event, event.limit, "1" if event.exclusive else "0", parts, ticker]
        args += [self.mark, self.acked]
        for record in records:
            args += [record.client_order_id, record.encoded]
        for name, money in values.items():
            args += [name, (before or values).get(name, money), money]
        return args

    async def reserve(
        self,
        execute: Callable[[Callable[[Any], object]], Awaitable[Any]],
        ticker: str,
        values: Mapping[str, int],
        cap: int,
        guard: bool = False,
        records: tuple[Record, ...] = (),
        event: EventPart | None = None,
        before: Mapping[str, int] | None = None,
    ) -> Answer:
        """``queue_reserve`` sent through ``execute`` (which queues in a pipeline and returns
        the one reply), and its answer. On one Redis: one script, one round trip. In cluster
        mode: the reservation in the account's slot first; when it passes, the shard step in
        the market's shard's slot (the lease's fence, the guard, the pending records); when
        that refuses, the reservation is set back to what rests now (``before``), and the
        shard step's refusal is the answer."""
        with self.steps_for((ticker,)):
            if not self.cluster:
                reply = await execute(
                    lambda pipe: self.queue_reserve(
                        pipe, ticker, values, cap, guard, records, event, before
                    )
                )
                return self.answered(values, reply, ticker, event)
            reply = await execute(
                lambda pipe: self._queue_account(pipe, ticker, values, cap, event, before)
            )
            answer = self.answered(values, reply, ticker, event)
            if not answer.ok:
                return answer
            shard = await execute(lambda pipe: self._queue_shard(pipe, ticker, guard, records))
            if str(shard[0]) == "ok":
                return answer
            now = before or values
            back = {name: now.get(name, money) for name, money in values.items()}
            back_event = None
            if event is not None:
                now_parts = event.before if event.before is not None else event.parts
                back_event = replace(event, parts=now_parts, before=None)
            undo = await execute(
                lambda pipe: self._queue_account(pipe, ticker, back, NO_CAP, back_event)
            )
            self.answered(back, undo, ticker, back_event)
            return Answer(str(shard[0]), str(shard[1]))

    def _queue_account(
        self,
        pipe: Any,
        ticker: str,
        values: Mapping[str, int],
        cap: int,
        event: EventPart | None,
        before: Mapping[str, int] | None = None,
    ) -> None:
        """Cluster mode: the reservation alone, in the account's slot (KEYS: the ledger; the
        same ARGV as one Redis's, with no records)."""
        args = self._args(ticker, values, cap, False, (), event, before)
        names = [self.keys.ledger, self.keys.ledger_event(event.event if event else "")]
        self._queue_script(pipe, self._reserve, names, args)

    def _queue_shard(
        self, pipe: Any, ticker: str, guard: bool, records: tuple[Record, ...]
    ) -> None:
        """Cluster mode: the lease's fence, the guard and the pending records, in the shard's
        slot."""
        keys = self.keys
        names = [self.lease_key, keys.book(ticker), keys.market(ticker), keys.orders(ticker)]
        args: list[Any] = [self.token(), "1" if guard else "0"]
        for record in records:
            args += [record.client_order_id, record.encoded]
        self._queue_script(pipe, self._shard_step, names, args)

    async def load(self) -> None:
        """Load the scripts into Redis (at start, and after a NOSCRIPT answer)."""
        for script in (self._reserve, self._shard_step, self._rebuild):
            script.sha = await self.redis.script_load(script.script)

    def answered(
        self,
        values: Mapping[str, int],
        reply: list[Any],
        ticker: str = "",
        event: EventPart | None = None,
    ) -> Answer:
        """Read ``reserve``'s reply (and remember what was written when it passed)."""
        outcome = str(reply[0])
        if outcome == "ok":
            self.acked = max(self.acked, int(reply[2]))
            self.written.update(values)
            if event is not None:
                self.written_events.setdefault(ticker, {}).update(event.parts)
            for name in reply[3:]:  # a newer write of ours got there first: not ours to know
                self.written.pop(str(name), None)
            self.total = int(reply[1])
            return Answer("ok", "", self.total)
        if outcome == "denied":
            total, delta = int(reply[1]), int(reply[2])
            self.total = total
            return Answer("denied", f"ledger {total} + {delta}", total)
        if outcome == "event_denied":
            return Answer(outcome, f"event worst loss {reply[1]} > {reply[2]}", int(reply[1]))
        if outcome == "lost":
            self.lost = str(reply[1])
        return Answer(outcome, str(reply[1]))

    def check_mark(self, raw: str | None, acked: int) -> bool:
        """Whether the ledger still holds every step of ours Redis had acknowledged when our
        mark was read: ``raw`` its value (``HGET ledger mark``), ``acked`` what ``self.acked``
        was before that read was sent (a step answered while the read was on its way may have
        run after it: compared with it, a mark just read looked lost). When not, ``lost`` says
        so."""
        if acked == 0:
            return True
        token, _, seq = (raw or "0:0").partition(":")
        try:
            held = (int(token), int(seq))
        except ValueError:
            held = (0, 0)
        if held[0] > self.token() or held >= (self.token(), acked):
            return True
        self.lost = f"the ledger holds step {held[1]} of ours, Redis had acknowledged {acked}"
        return False

    def changed(self, values: Mapping[str, int]) -> dict[str, int]:
        """The part of ``values`` that differs from what this process last wrote."""
        return {k: v for k, v in values.items() if self.written.get(k) != v}

    def event_changed(self, ticker: str, event: EventPart | None) -> EventPart | None:
        """``event`` when any of its parts differs from what this process last wrote."""
        if event is None:
            return None
        written = self.written_events.get(ticker, {})
        return event if any(written.get(k) != v for k, v in event.parts.items()) else None

    async def rebuild(
        self,
        owned: Callable[[str], bool],
        values: Mapping[str, int],
        events: Mapping[str, EventPart] | None = None,
    ) -> Answer:
        """Replace every field of the markets this executor ``owned`` by ``values``, and their
        parts of every event by ``events`` (ticker -> its part)."""
        existing = await self.redis.hgetall(self.keys.ledger)
        dropped = [
            name
            for name in existing
            if (t := ticker_of(name)) is not None and owned(t) and name not in values
        ]
        mine = sorted(
            {t for name in existing if (t := event_ticker_of(name)) and owned(t)}
            | set(events or {})
        )
        by_event: dict[str, dict[str, Any]] = {}
        for ticker, part in (events or {}).items():
            entry = by_event.setdefault(part.event, {"x": part.exclusive, "m": {}})
            entry["m"][ticker] = dict(part.parts)
        seq = self._next()
        args: list[Any] = [self.token(), seq, len(dropped), *dropped]
        args += [orjson.dumps(mine).decode(), orjson.dumps(by_event).decode()]
        args.append(self.keys.ledger_event(""))  # the events' sorted sets: prefix + event
        args.append(self.mark)
        for name, money in values.items():
            args += [name, money]
        if self.cluster:  # the lease first, in its own slot; then the account's slot alone
            why = fence_problem(await self.redis.get(self.lease_key), self.token())
            if why:
                return Answer("fenced", why)
            reply = await self._rebuild(keys=[self.keys.ledger], args=args)
        else:
            reply = await self._rebuild(keys=[self.keys.ledger, self.lease_key], args=args)
        if str(reply[0]) != "ok":
            return Answer(str(reply[0]), str(reply[1]))
        self.written = dict(values)
        self.written_events = {t: dict(p.parts) for t, p in (events or {}).items()}
        self.acked, self.lost = max(self.acked, seq), ""
        return Answer("ok", "", int(reply[1]))


def fence_problem(lease: str | None, token: int) -> str:
    """Why a writer with ``token`` is not the holder of ``lease`` ("" when it is): the
    scripts' ``fenced`` in Python."""
    if not lease:
        return "no lease"
    held = lease.split(":", 1)[0]
    return "" if held == str(token) else f"lease held by {lease}"


def event_ticker_of(name: str) -> str | None:
    """The market of an event part's field (``em:{event}|{ticker}``)."""
    if not name.startswith("em:"):
        return None
    return name.rpartition("|")[2] or None


async def read_event_worst(redis: aioredis.Redis, keys: Keys, event: str) -> int | None:
    """The event's worst loss as the ledger holds it (None: no part of it reserved)."""
    pipe = redis.pipeline(transaction=False)
    pipe.hget(keys.ledger, f"ea:{event}")
    pipe.zrevrange(keys.ledger_event(event), 0, 0, withscores=True)
    raw, top = await pipe.execute()
    if not raw:
        return None
    exclusive, all_no, larger = str(raw).split(":")
    if exclusive != "1":
        return int(larger)
    return int(all_no) + max(0, int(top[0][1]) if top else 0)


async def read_total(redis: aioredis.Redis, keys: Keys) -> int:
    value = await redis.hget(keys.ledger, "total")
    return int(value) if value else 0
