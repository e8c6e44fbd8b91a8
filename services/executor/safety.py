"""What stops the executor adding risk: the halt, pulled quotes, cancel-all, the risk refresh.

- A ``halt`` (control channel or ``dora:risk``) stops every new order at once and cancels
  everything resting; only ``dora resume`` lifts it.
- When marketdata, strategy, fills or risk stop heartbeating, quotes are pulled: a quote nobody
  maintains is a stale quote. Nothing is placed after a start until every feed has been seen
  alive (and, when a predecessor may have died with a create in flight, the start fence passed).
- The risk refresh reads the halt and daily PnL every round and, less often, the positions, the
  config and the worst-case exposure the passes check against. The daily PnL is believed only
  while the risk state is fresh: older than ``risk_stale_ms`` (risk down, stuck, or unable to
  write), or marked failing by risk itself, and the quotes are pulled as for a silent feed
  (nothing that adds risk is sent; cancels and decreases still go) until a check passes again.
- The exchange's calendar (``dora:exchange``, ``common.calendar``): from ``pause_lead_s`` before
  a scheduled pause, and while the exchange says trading is inactive, quotes are pulled the same
  way (cancels only); quoting resumes by itself when trading is active again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from redis.exceptions import ResponseError

from common.config_cache import ConfigCache
from common.domain import OrderStatus
from common.errors import SchemaError
from common.halt import record_heard_halt
from common.kalshi.errors import ExchangeError
from common.ledger import Ledger, field
from common.messages import ControlCommand
from common.redis_codec import decode_exchange, decode_risk
from common.risk import AccountRisk, worst_case_exposure
from common.runtime import Context
from common.sharding import strategy_name
from services.executor.gateway import Gateway
from services.executor.journal import OrderJournal
from services.executor.lease import Lease
from services.executor.ledger_keeper import LedgerKeeper
from services.executor.reconcile import Reconciler
from services.executor.state import (
    Blocked,
    Exposure,
    Halt,
    Markets,
    Pulled,
    RiskSeen,
    Schedule,
    account_risk,
)
from services.executor.working import WorkingOrders

WATCHED_HEARTBEATS = ("marketdata", "strategy", "fills", "risk")  # strategy: this shard's
CONFIG_REFRESH_MS = 5_000
# Markets read per round trip by the full risk refresh. Each chunk's answers are parsed and
# decoded in one stretch of the event loop, which a targets read arriving meanwhile waits behind:
# 20 markets were a ~1.5 ms stretch five times a second (docs/performance.md "Session 21"); 5
# keep each stretch short.
REFRESH_CHUNK = 5


class Safety:
    def __init__(
        self,
        ctx: Context,
        gateway: Gateway,
        working: WorkingOrders,
        journal: OrderJournal,
        reconciler: Reconciler,
        configs: ConfigCache,
        schedule: Schedule,
        markets: Markets,
        pulled: Pulled,
        ledger: Ledger,
        lease: Lease,
        owned: Callable[[str], bool],
    ) -> None:
        self.ctx = ctx
        self.owned = owned
        self.ledger = ledger
        self.lease = lease
        self.gateway = gateway
        self.working = working
        self.journal = journal
        self.reconciler = reconciler
        self.configs = configs
        self.schedule = schedule
        self.markets = markets
        self.halt = Halt()
        self.pulled = pulled  # shared with the gateway's BlindGate
        self.exposure = Exposure()
        self.risk_seen = RiskSeen()
        self.blocked = Blocked()  # set by the trading gate (services/executor/gate.py)
        self.keeper = LedgerKeeper(ctx, ledger, working, markets, schedule, self.blocked, owned)
        self.cancel_all_task: asyncio.Task[None] | None = None  # None: none has run yet
        self.cancel_own_only = False  # the scope of cancel_all_task
        self.start_wait = ""  # why quoting has not started yet, as last logged

    def account_risk(self) -> AccountRisk:
        return account_risk(self.halt, self.pulled, self.exposure, self.blocked, self.lease.lost)

    async def on_control(self, command: ControlCommand) -> None:
        ctx, halt = self.ctx, self.halt
        if command.cmd == "halt":
            halt.halted, halt.reason = True, command.reason or "halt via control channel"
            halt.heard_ms = ctx.clock.now_ms()
            ctx.log.warning("halt_received", reason=halt.reason)
            self.start_cancel_all("halt")
            await record_heard_halt(ctx.redis, ctx.keys, halt.reason, halt.heard_ms)
        elif command.cmd == "resume":
            await self.refresh_risk()
            if halt.halted:  # a bare PUBLISH: the halt is lifted by a resume recorded, not heard
                ctx.log.warning(
                    "resume_not_recorded",
                    reason=halt.reason,
                    detail="still halted: 'dora resume' records the resume and lifts the halt",
                )
            self.schedule.mark_all(self.markets.targets)
        elif command.cmd == "reload" and await self.configs.refresh(ctx.redis, ctx.clock.now_ms()):
            self.schedule.mark_all(self.markets.targets)

    def start_cancel_all(self, why: str, own_only: bool = False) -> None:
        """Cancel at the exchange in the background: every resting order of the subaccount (a
        kill switch: halt), or with ``own_only`` only dora's (quotes pulled: a silent feed, a
        risk state that cannot be believed, the exchange's calendar), so an order the trader
        placed by hand is never touched outside the kill switches (DESIGN.md §5). A kill switch
        starts even while a pull's cancel runs."""
        running = self.cancel_all_task is not None and not self.cancel_all_task.done()
        if not running or (self.cancel_own_only and not own_only):
            self.cancel_own_only = own_only
            self.cancel_all_task = asyncio.create_task(self.cancel_all(why, own_only))

    async def cancel_all(self, why: str, own_only: bool = False) -> None:
        ctx = self.ctx
        cancel = self.gateway.cancel_own if own_only else self.gateway.cancel_all
        for attempt in range(10):
            try:
                sent_ms = ctx.clock.now_ms()
                await cancel()
                in_flight = self.schedule.running()
                if in_flight:
                    # Creates already sent can land after the cancel-all: let them finish (no new
                    # ones start: adds are denied now), then cancel once more.
                    await asyncio.wait(in_flight, timeout=2.0)
                    await cancel()
                now = ctx.clock.now_ms()
                for listed in self.working.all_live():
                    # As it is now (the exchange's update may have come during a write below).
                    # Only what was known to rest before the cancel-all left: a create that was in
                    # flight may have landed after it and still rest (reconcile will tell).
                    order = self.working.get(listed.ticker, listed.client_order_id)
                    if order is None:
                        continue
                    if order.status is OrderStatus.RESTING and order.updated_ms < sent_ms:
                        gone = replace(
                            order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now
                        )
                        # what it had resting may have executed just before: held until told
                        self.working.in_flight.doubt(replace(order, updated_ms=now))
                        await self.journal.record(gone, "canceled", why)
                ctx.log.warning("cancelled_all", reason=why)
                self.schedule.reconcile_soon()  # learn whatever still rests
                return
            except ExchangeError as exc:
                ctx.log.error("cancel_all_failed", reason=why, error=str(exc), attempt=attempt)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def refresh_risk(self, full: bool = True) -> None:
        """The halt and daily PnL (one read); with ``full``, also positions (kept current between
        refreshes by the fill events), exposure and config, which cost a read per market."""
        ctx, halt = self.ctx, self.halt
        pipe = ctx.redis.pipeline(transaction=False)
        pipe.hgetall(ctx.keys.risk)
        pipe.hget(ctx.keys.ledger, self.ledger.mark)
        acked = self.ledger.acked  # before the read: what it must find applied
        fields, mark = await pipe.execute(raise_on_error=False)
        if isinstance(mark, Exception):
            raise mark
        self.ledger.check_mark(mark, acked)  # an idle writer learns of lost writes too (repair)
        try:
            if isinstance(fields, ResponseError):  # dora:risk of the wrong type (WRONGTYPE)
                raise SchemaError(str(fields))
            if isinstance(fields, Exception):
                raise fields
            state = decode_risk(fields)
        except SchemaError as exc:  # nothing in it can be believed: stop adding risk
            self.risk_seen.last_check_ms, self.risk_seen.error = 0, f"risk state unreadable: {exc}"
            return
        if state.halted and not halt.halted:
            halt.halted, halt.reason = True, state.reason or "halted"
            halt.heard_ms = state.halted_ms
            self.start_cancel_all("halt")
        elif not state.halted and halt.halted and state.resumed_ms >= halt.heard_ms:
            # a resume recorded after the halt we acted on (never just a missing record, nor a
            # flag edited by hand: decode_risk reads that as the halt still in force)
            halt.halted, halt.reason = False, ""
            ctx.log.info("resumed")
            self.schedule.mark_all(self.markets.targets)
        self.exposure.daily_pnl = state.daily_pnl
        self._judge_risk_state(state.last_check_ms, state.check_failures, state.check_error)
        if not full:
            return
        if ctx.clock.now_ms() - self.configs.loaded_ms > CONFIG_REFRESH_MS and (
            await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        ):
            # a change made without a reload message (written to Redis or DynamoDB directly):
            # every market is decided again (trading_enabled=false pulls the quotes at once)
            self.schedule.mark_all(self.markets.targets)
        positions = self.markets.positions
        # every market it holds a position in too: one that settled releases its ledger value
        tickers = sorted({*self.markets.targets, *self.working.tickers(), *positions})
        # A pipeline per few markets, not one for all: the passes run between them (answering
        # the targets read meanwhile) instead of waiting while every market's replies are parsed
        # and decoded in one go.
        for start in range(0, len(tickers), REFRESH_CHUNK):
            chunk = tickers[start : start + REFRESH_CHUNK]
            pipe = ctx.redis.pipeline(transaction=False)
            for ticker in chunk:
                pipe.hgetall(ctx.keys.pos(ticker))
                pipe.hgetall(ctx.keys.market(ticker))
            asked_at = self.markets.fills_read
            # a key of the wrong type answers WRONGTYPE in its place: that market's alone
            replies = iter(await pipe.execute(raise_on_error=False))
            for ticker in chunk:
                fields, market = next(replies), next(replies)
                said = self.markets.bad_positions.get(ticker)  # logged once a reason
                read = self.markets.read_position(ticker, fields)
                if read is None:  # the one known before is kept; no quote rests there
                    why = self.markets.bad_positions[ticker]
                    if why != said:
                        ctx.log.warning("bad_position", market=ticker, reason=why)
                # A fill read from the stream while this read was on its way is newer than it:
                # its hash may not have existed yet (a market's first fill), and taking the
                # empty answer as "closed" dropped the position from the worst case. Otherwise
                # the read wins; a hash gone means the position closed (its market settled).
                if read is not None and not self.markets.newer_than(ticker, asked_at):
                    positions[ticker] = read
                if isinstance(market, ResponseError):
                    ctx.log.warning("bad_market_meta", market=ticker, reason=str(market))
                elif isinstance(market, Exception):
                    raise market
                elif market:  # the passes check the status themselves; this keeps the grid fresh
                    self.markets.note_meta(ticker, market)
        live_ids = {o.order_id for o in self.working.all_live() if o.order_id}
        for order, unposted in self.working.in_flight.expire(ctx.clock.now_ms(), live_ids):
            ctx.log.warning(
                "fills_never_posted", market=order.ticker, order_id=order.order_id, count=unposted
            )
        self.exposure.worst_case = worst_case_exposure(positions.values(), self.working.counted())
        await self.keeper.sync(tickers)
        active = {*self.markets.targets, *self.working.tickers()}
        for ticker in [t for t, p in positions.items() if not p.position and t not in active]:
            if self.ledger.written.get(field("pos", ticker), 0) == 0:
                del positions[ticker]  # flat, quoted no more, released: nothing left to watch

    def _judge_risk_state(self, last_check_ms: int, failures: int, error: str) -> None:
        """Note what was read of the risk state; ``risk_problem`` judges it when asked."""
        seen = self.risk_seen
        if last_check_ms != seen.last_check_ms or not seen.changed_mono_ms:
            seen.last_check_ms, seen.changed_mono_ms = last_check_ms, self.ctx.clock.monotonic_ms()
        seen.failures, seen.error = failures, error

    def risk_problem(self) -> str:
        """Can the daily PnL last read be believed now? Not when the last check is older than
        ``risk_stale_ms`` by its own stamp or by how long it has not changed (a stuck risk
        process, one whose clock runs ahead, or refreshes that stopped reading it), nor when
        risk says its checks fail. Why not; "" when it can."""
        clock = self.ctx.clock
        return self.risk_seen.problem(
            clock.now_ms(), clock.monotonic_ms(), self.ctx.settings.risk_stale_ms
        )

    def exchange_closed(self, fields: dict[str, str]) -> str:
        """Why the exchange's calendar says not to quote now ("" when it may)."""
        state = decode_exchange(fields)
        if state is None:
            return ""  # marketdata has not said yet: its heartbeat is watched above
        lead_ms = self.ctx.settings.pause_lead_s * 1000
        quoting = state.quoting(self.ctx.clock.now_ms(), lead_ms)
        return "" if quoting.may_quote else f"exchange: {quoting.reason}"

    def heartbeat_of(self, service: str) -> str:
        """The heartbeat to watch for ``service``: the strategy of this executor's own shard."""
        if service == "strategy":
            settings = self.ctx.settings
            return strategy_name(settings.shard_index, settings.shard_count)
        return service

    async def check_feeds(self) -> None:
        """Pull quotes while a watched process is silent or the risk state cannot be trusted;
        restore when all is well again."""
        ctx, pulled = self.ctx, self.pulled
        pipe = ctx.redis.pipeline(transaction=False)
        for service in WATCHED_HEARTBEATS:
            pipe.exists(ctx.keys.hb(self.heartbeat_of(service)))
        pipe.hgetall(ctx.keys.exchange)
        *alive, exchange_fields = await pipe.execute()
        silent = [s for s, ok in zip(WATCHED_HEARTBEATS, alive, strict=True) if not ok]
        reasons = [f"{','.join(silent)} silent"] if silent else []
        risk_problem = self.risk_problem()
        if risk_problem:
            reasons.append(risk_problem)
        closed = self.exchange_closed(exchange_fields)
        if closed:
            reasons.append(closed)
        reason = "; ".join(reasons)
        if pulled.reason == "starting":
            if reason and reason != self.start_wait:
                ctx.log.warning("waiting_to_quote", reason=reason)  # one line each new why
            self.start_wait = reason
            if not reason and ctx.clock.now_ms() >= pulled.started_ms + pulled.fence_ms:
                if pulled.fence_ms:
                    # A create sent by the process before us (killed mid-request, or slowed by
                    # the exchange) can land after our first look: reconcile once more, then quote.
                    await self.reconciler.reconcile()
                ctx.log.info("feeds_alive")
                pulled.reason = ""
                self.schedule.mark_all(self.markets.targets)
            return
        if reason and not pulled.reason:
            ctx.log.warning("pulling_quotes", reason=reason)
            self.start_cancel_all(reason, own_only=True)
        elif not reason and pulled.reason:
            ctx.log.info("quotes_restored")
            self.schedule.mark_all(self.markets.targets)
        pulled.reason = reason
