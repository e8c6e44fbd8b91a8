"""This executor's part of the account-wide exposure ledger (``common.ledger``), kept equal to
what it knows: released as orders and positions change (``sync``), replaced whole at every start
and after Redis lost its data (``rebuild``), and written again when Redis lost writes it had
acknowledged (``repair``: the writer's mark in the ledger is behind). A reservation itself is
the market pass's (``services.executor.market_pass``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from redis.exceptions import NoScriptError, ResponseError

from common.domain import Position
from common.errors import SchemaError
from common.ledger import NO_CAP, EventPart, Ledger
from common.redis_codec import decode_market
from common.runtime import Context
from services.executor.ahead import room_ahead
from services.executor.reservations import event_part, exposure_values
from services.executor.state import SIDES, Blocked, Markets, Schedule
from services.executor.working import WorkingOrders

SYNC_CHUNK = 10  # markets worked out and written per step of ``sync``


class LedgerKeeper:
    def __init__(
        self,
        ctx: Context,
        ledger: Ledger,
        working: WorkingOrders,
        markets: Markets,
        schedule: Schedule,
        blocked: Blocked,
        owned: Callable[[str], bool],
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.working = working
        self.markets = markets
        self.schedule = schedule
        self.blocked = blocked  # the trading gate's: whether Redis is without its data
        self.owned = owned
        self.lost_logged = ""  # the ledger's loss last logged (``repair``)

    def values(
        self, tickers: list[str], idle_only: bool = True, ahead: int = 0
    ) -> dict[str, tuple[dict[str, int], EventPart | None]]:
        """Each market's ledger values as this executor knows them: its position's exposure,
        each side's worst case and its part of its event; with ``idle_only``, only the sides no
        pass is working on (a pass between its reservation and its answers holds more than
        memory shows); with ``ahead``, the most a side may hold ahead of its orders (their
        worst case that many ticks toward the market, ``services.executor.ahead``)."""
        out: dict[str, tuple[dict[str, int], EventPart | None]] = {}
        for ticker in tickers:
            position = self.markets.positions.get(ticker) or Position(ticker)
            sides = [
                side
                for side in SIDES
                if not (idle_only and (ticker, side) in self.schedule.inflight)
            ]
            orders = self.working.counted(ticker)
            meta = self.markets.meta.get(ticker)
            if ahead and meta is not None:
                orders = room_ahead(orders, sides, meta, self.markets.targets.get(ticker), ahead)
            held = self.ledger.written_events.get(ticker, {}) if len(sides) < 2 else None
            out[ticker] = (
                exposure_values(position, sides, orders),
                event_part(meta, position, sides, orders, held=held),
            )
        return out

    async def sync(self, tickers: list[str]) -> None:
        """Release what no longer rests (fills, cancels by the exchange, a halt's cancel-all) in
        the sides no pass is working on; never checked against the caps. A few markets at a
        time: each chunk is worked out and sent in one stretch of the event loop (as a pass's
        step is), and the passes run between the chunks."""
        for start in range(0, len(tickers), SYNC_CHUNK):
            await self._sync(tickers[start : start + SYNC_CHUNK])

    async def _sync(self, tickers: list[str]) -> None:
        ledger = self.ledger
        changes = []
        ticks = self.ctx.settings.executor_ahead_ticks
        exact = self.values(tickers)
        most = self.values(tickers, ahead=ticks) if ticks else exact
        for ticker, (values, event) in exact.items():
            # a value between what rests and the most the room ahead holds stays (the pass
            # reserved it, checked); one outside is set to what rests
            high, high_event = most[ticker]
            changed = {k: v for k, v in values.items() if not held(v, ledger.written, k, high)}
            if event is not None:
                written = ledger.written_events.get(ticker, {})
                top = high_event.parts if high_event is not None else event.parts
                if all(held(v, written, k, top) for k, v in event.parts.items()):
                    event = None
            if changed or event is not None:
                changes.append((ticker, changed, event))
        if not changes:
            return
        with ledger.steps_for(ticker for ticker, _, _ in changes):
            for attempt in range(2):
                pipe = self.ctx.redis.pipeline(transaction=False)
                for ticker, changed, event in changes:
                    ledger.queue_reserve(pipe, ticker, changed, NO_CAP, event=event)
                try:
                    replies = await pipe.execute()
                    break
                except NoScriptError:
                    if attempt:
                        raise
                    await ledger.load()  # Redis lost the script (restarted, flushed)
        for (ticker, changed, event), reply in zip(changes, replies, strict=True):
            ledger.answered(changed, reply, ticker, event)

    async def rebuild(self) -> None:
        """Replace this shard's part of the ledger by what it learned from the exchange (its
        orders, reconciled) and positions (synced with the exchange by fills): at every start
        and when Redis lost its data, before the first order."""
        ctx = self.ctx
        positions = self.markets.positions
        held = [
            ctx.keys.ticker_of(key, "pos")
            async for key in ctx.redis.scan_iter(match=ctx.keys.pattern("pos"), count=500)
        ]
        held = [t for t in held if self.owned(t) and t not in positions and not t.startswith("_")]
        if held:
            pipe = ctx.redis.pipeline(transaction=False)
            for ticker in held:
                pipe.hgetall(ctx.keys.pos(ticker))
            # a key of the wrong type answers WRONGTYPE in its place: that market's alone
            for ticker, fields in zip(held, await pipe.execute(raise_on_error=False), strict=True):
                said = self.markets.bad_positions.get(ticker)  # logged once a reason
                read = self.markets.read_position(ticker, fields)
                if read is None:  # not quoted until it reads (market_pass)
                    why = self.markets.bad_positions[ticker]
                    if why != said:
                        ctx.log.warning("bad_position", market=ticker, reason=why)
                else:
                    positions[ticker] = read
        tickers = sorted({*self.markets.targets, *self.working.tickers(), *positions})
        # a market's event is in its market hash: one not read yet (a position it only holds,
        # found above) would drop out of its event, and the first wave quote on top of it
        unread = [t for t in tickers if t not in self.markets.meta]
        if unread:
            pipe = ctx.redis.pipeline(transaction=False)
            for ticker in unread:
                pipe.hgetall(ctx.keys.market(ticker))
            for ticker, fields in zip(
                unread, await pipe.execute(raise_on_error=False), strict=True
            ):
                if isinstance(fields, ResponseError):  # WRONGTYPE: its event is not known
                    ctx.log.warning("bad_market_meta", market=ticker, reason=str(fields))
                elif isinstance(fields, Exception):
                    raise fields
                elif fields:
                    with contextlib.suppress(SchemaError):
                        self.markets.meta[ticker] = decode_market(ticker, fields)
        known = self.values(tickers, False)
        values = {name: money for fields, _ in known.values() for name, money in fields.items()}
        events = {t: event for t, (_, event) in known.items() if event is not None}
        answer = await self.ledger.rebuild(self.owned, values, events)
        ctx.log.info(
            "ledger_rebuilt", outcome=answer.outcome, detail=answer.detail, total=answer.total
        )

    async def repair(self) -> None:
        """Redis lost writes it had acknowledged (``common.ledger``: this executor's mark is
        behind): its ledger part and its order records are written again from memory, and
        the exchange is asked, before anything adds risk (each reservation is refused until
        then). Not while Redis is without its data: the restore's own rewrite does it then
        (``TradingGate``)."""
        if not self.ledger.lost or self.blocked.reason.startswith("Redis lost"):
            return
        ctx = self.ctx
        if self.ledger.lost != self.lost_logged:  # once per loss, not at every round's try
            self.lost_logged = self.ledger.lost
            ctx.log.error("redis_lost_acknowledged_writes", detail=self.ledger.lost)
        saved = await self.working.save_all()
        await self.rebuild()
        if self.ledger.lost:  # not rebuilt (the lease went with the data, say): the next round
            return
        self.lost_logged = ""
        self.schedule.reconcile_soon()
        self.schedule.mark_all(self.markets.targets)
        ctx.log.warning("ledger_and_orders_written_again", orders=saved)


def held(value: int, written: Mapping[str, int], name: str, most: Mapping[str, int]) -> bool:
    """Whether what the ledger holds for ``name`` (``written``) is between ``value`` (what
    rests) and ``most`` (the room ahead at its most)."""
    return name in written and value <= written[name] <= most.get(name, value)
