"""The executor: the only process that sends orders.

For each market it owns, whenever the strategy publishes new targets: diff the working orders
against them (``common.order_diff``), check every action that could add risk against the worst
case (``common.risk``), record each new order under its deterministic client order id before
sending it, and send. Each side of a market has at most one pass at a time (two requests about
one order must not race), but the bid never waits for the ask's answer: the worst case is per
side. Around that:

- fills and exchange order updates (the fills stream) keep the working orders current;
- every few seconds the working orders are reconciled with the exchange (the exchange wins) and
  orders whose outcome is unknown are resolved by lookup;
- a ``halt`` (control channel or ``dora:risk``) stops every new order at once and cancels
  everything resting; only ``dora resume`` lifts it;
- when marketdata or strategy stop heartbeating, quotes are pulled: a quote nobody maintains is a
  stale quote.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

from common.batching import Batcher
from common.config_cache import ConfigCache
from common.control import ControlListener
from common.domain import MarketMeta, Order, OrderStatus, Position, Side, Targets
from common.errors import SchemaError
from common.events import decision_event, order_event
from common.halt import record_heard_halt
from common.kalshi.errors import ExchangeError, NotFound, OrderRejected, OutcomeUnknown
from common.kalshi.wire import OrderRequest, make_client_order_id
from common.keys import Keys
from common.messages import ControlCommand, decode_event
from common.order_diff import Action, ActionKind, diff_orders
from common.redis_codec import (
    decode_book,
    decode_market,
    decode_position,
    decode_risk,
    decode_targets,
)
from common.restore import wait_until_restored
from common.risk import AccountRisk, Denial, check_action, worst_case_exposure
from common.runtime import Context, note_lag, service_main, stop_tasks
from common.settings import Settings
from common.sharding import owns
from common.streams import append, queue_append
from common.trace import STAMPS, TickToOrder, now_us
from services.executor.gateway import Gateway
from services.executor.kalshi_gateway import KalshiGateway
from services.executor.working import WorkingOrders

READ_BLOCK_MS = 50
RECONCILE_EVERY_MS = 2_000
POSITIONS_REFRESH_MS = 1_000  # a read per market: not on every 250 ms risk refresh
# A predecessor's last create may still land: when one may have died with a create in flight,
# look again this long after starting before quoting. A first start, or one after a clean stop with
# every create answered, has nothing in flight and quotes as soon as the feeds are alive.
START_FENCE_MS = 1_500
RISK_REFRESH_MS = 250
UNKNOWN_GIVE_UP_MS = 15_000
PENDING_GRACE_MS = 5_000
GROUP_COOLDOWN_MS = 30_000


def GROUPS_KEY(keys: Keys) -> str:
    return f"{keys.prefix}groups"


# a create older than this without an answer is looked up
MAX_CONCURRENT_MARKETS = 64
WATCHED_HEARTBEATS = ("marketdata", "strategy", "fills")
SIDES = (Side.BID, Side.ASK)
PassKey = tuple[str, Side]  # one side of one market: at most one pass at a time


class ExecutorService:
    name = "executor"

    def __init__(self, settings: Settings, gateway: Gateway | None = None) -> None:
        self.settings = settings
        self.gateway = gateway
        if settings.shard_count > 1:
            self.name = f"executor-{settings.shard_index}"
        self.cancel_on_start = settings.executor_cancel_on_start
        self.configs: ConfigCache | None = None
        self.working: WorkingOrders | None = None
        self.batch: Batcher | None = None  # the passes' Redis commands, one pipeline per turn
        self.positions: dict[str, Position] = {}
        self.meta: dict[str, MarketMeta] = {}
        self.latest: dict[str, Targets] = {}
        self.trace: dict[PassKey, tuple[int, ...]] = {}  # stamps of the oldest unanswered tick
        self.tracer: TickToOrder | None = None
        self.groups: dict[str, str] = {}  # ticker -> order group id (also in dora:groups)
        self.group_cooldown_ms: dict[str, int] = {}  # ticker -> when its triggered group resets
        self.group_locks: dict[str, asyncio.Lock] = {}
        self.last_decision_ms: dict[str, int] = {}
        self.inflight: dict[PassKey, asyncio.Task[None]] = {}
        self.dirty: set[str] = set()  # markets to look at again (both sides)
        self.due: set[PassKey] = set()  # sides to look at again once their pass is done
        self.to_resolve: dict[str, dict[str, Order]] = {}  # fills say done: ask at the next pass
        self.unlogged: dict[str, list[dict[str, Any]]] = {}  # order events for the next pass
        self.stream_ids: dict[str, str] = {}
        self.closing = False  # stop() has begun: no new passes
        self.halted = False
        self.halt_reason = ""
        self.halt_heard_ms = 0
        self.started_ms = 0
        self.fence_ms = START_FENCE_MS
        self.pulled_reason = "starting"  # nothing is placed until every feed has been seen alive
        self.daily_pnl = 0
        self.exposure = 0
        self.last_denials: dict[tuple[str, Side], str] = {}
        self.seq = 0
        self.namespace = ""
        self.tasks: list[asyncio.Task[None]] = []
        self.limiter = asyncio.Semaphore(MAX_CONCURRENT_MARKETS)
        self.last_reconcile_ms = 0.0
        self.last_risk_ms = 0.0
        self.last_positions_ms = 0.0
        self.reconciling: asyncio.Task[None] | None = None
        self.housekeeping: asyncio.Task[None] | None = None
        self.cancel_all_task: asyncio.Task[None] | None = None
        self.counts = {
            "placed": 0,
            "amended": 0,
            "decreased": 0,
            "canceled": 0,
            "rejected": 0,
            "denied": 0,
        }

    # ---- lifecycle ---------------------------------------------------------------------------

    def owned(self, ticker: str) -> bool:
        return owns(ticker, self.settings.shard_index, self.settings.shard_count)

    async def start(self, ctx: Context) -> None:
        # Read before our own heartbeat exists: a predecessor killed uncleanly leaves its key for
        # the heartbeat TTL (a clean stop drains its passes and deletes the key).
        predecessor_alive = bool(await ctx.redis.exists(ctx.keys.hb(ctx.name)))
        if self.gateway is None:
            self.gateway = await KalshiGateway.connect(self.settings, ctx.redis, ctx.clock)
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        if self.settings.trace_latency and isinstance(self.gateway, KalshiGateway):
            self.tracer = TickToOrder()
            self.gateway.client.transport.add_request_hook(self.tracer.on_request)
        self.configs = ConfigCache(ctx.keys, ctx.log)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        self.working = WorkingOrders(ctx.redis, ctx.keys, ctx.log)
        self.batch = Batcher(ctx.redis)
        loaded = await self.working.load(self.owned)
        in_doubt = sum(o.status is not OrderStatus.RESTING for o in self.working.all_live())
        self.fence_ms = START_FENCE_MS if predecessor_alive or in_doubt else 0
        self.started_ms = ctx.clock.now_ms()
        self.namespace = (
            f"{ctx.settings.kalshi_key_id}:{self.settings.shard_index}:{ctx.clock.now_ms()}"
        )
        await self._refresh_risk(ctx)
        for stream in ("targets", "fills"):
            key = ctx.keys.stream(stream)
            last = await ctx.redis.xrevrange(key, count=1)
            self.stream_ids[key] = last[0][0] if last else "0-0"
        if self.cancel_on_start:
            await self.gateway.cancel_all()
            ctx.log.info("cancelled_all_at_start")
        await self._reconcile(ctx)
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, lambda c: self._on_control(ctx, c))
        self.tasks.append(asyncio.create_task(listener.run(), name="control"))
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        # Targets already published before we started: act on the latest of each market.
        async for key in ctx.redis.scan_iter(match=ctx.keys.pattern("targets"), count=500):
            ticker = ctx.keys.ticker_of(key, "targets")
            if self.owned(ticker):
                with contextlib.suppress(SchemaError):
                    self.latest[ticker] = decode_targets(ticker, await ctx.redis.hgetall(key))
                    self.dirty.add(ticker)
        ctx.log.info(
            "executor_ready",
            restored_orders=loaded,
            creates_in_doubt=in_doubt,
            predecessor_alive=predecessor_alive,
            start_fence_ms=self.fence_ms,
            halted=self.halted,
        )

    async def stop(self, ctx: Context) -> None:
        self.closing = True
        await stop_tasks(
            [*self.tasks, *self.inflight.values(), *[t for t in [self.housekeeping] if t]]
        )
        if self.batch is not None:
            await self.batch.aclose()
        if self.working is not None:
            with contextlib.suppress(Exception):  # best effort: reconciliation repairs the rest
                await asyncio.wait_for(self._settle_writes(ctx), 2)
        if self.cancel_all_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.cancel_all_task, 5)
        if self.gateway is not None:
            await self.gateway.aclose()

    # ---- the loop ----------------------------------------------------------------------------

    async def step(self, ctx: Context) -> None:
        assert self.configs is not None
        now = ctx.clock.monotonic_ms()
        if now - self.last_risk_ms >= RISK_REFRESH_MS and (
            self.housekeeping is None or self.housekeeping.done()
        ):
            # Beside the read loop, not in it: targets arriving meanwhile are read at once.
            self.last_risk_ms = now
            full = now - self.last_positions_ms >= POSITIONS_REFRESH_MS
            if full:
                self.last_positions_ms = now
            self.housekeeping = asyncio.create_task(self._housekeeping(ctx, full))
        if now - self.last_reconcile_ms >= RECONCILE_EVERY_MS and self.reconciling is None:
            self.last_reconcile_ms = now
            self.reconciling = asyncio.create_task(self._reconcile_safely(ctx))
        response = await ctx.redis.xread(self.stream_ids, count=2_000, block=READ_BLOCK_MS)
        for stream, entries in response or []:
            note_lag(
                ctx,
                "targets_lag_ms" if stream.endswith(":targets") else "fills_lag_ms",
                entries[0][0],
            )
            for entry_id, fields in entries:
                self.stream_ids[stream] = entry_id
                try:
                    kind, payload = decode_event(fields)
                    self._on_event(ctx, kind, payload)
                except (SchemaError, KeyError, TypeError, ValueError) as exc:
                    ctx.log.warning("bad_stream_entry", stream=stream, reason=str(exc))
        self._start_passes(ctx)
        ctx.status.update(self.counts, halted=self.halted)

    def _start_passes(self, ctx: Context) -> None:
        """A pass for every side that is due and not already in one; a side whose pass is
        running stays due and starts again the moment that pass ends."""
        for ticker in self.dirty:
            self.due.update((ticker, side) for side in SIDES)
        self.dirty.clear()
        for key in [k for k in self.due if k not in self.inflight]:
            self.due.discard(key)
            self.inflight[key] = asyncio.create_task(self._market_pass(ctx, key))

    async def _housekeeping(self, ctx: Context, full: bool) -> None:
        # the heartbeat's count of working orders: a walk over every order, so not per step
        ctx.status["working"] = len(self.working.all_live()) if self.working else 0
        try:
            await self._refresh_risk(ctx, full)
            await self._check_feeds(ctx)
            if self.tracer is not None:
                await self.tracer.flush(ctx.redis, ctx.keys)
        except Exception as exc:  # Redis away: the next round tries again
            ctx.log.warning("housekeeping_failed", error=f"{type(exc).__name__}: {exc}")

    def _on_event(self, ctx: Context, kind: str, payload: dict[str, Any]) -> None:
        """One stream entry, in memory only: the read loop never waits on a round trip per
        entry (a burst of fills must not hold up the targets behind it). What has to be written
        or asked is left to the market's next pass, which runs it before deciding."""
        ticker = payload.get("ticker")
        if not isinstance(ticker, str) or not self.owned(ticker):
            return
        if kind == "targets":
            self.latest[ticker] = decode_targets(ticker, payload)
            self.dirty.add(ticker)
            trace = payload.get("trace")
            if self.tracer is not None and isinstance(trace, list):
                stamps = (*map(int, trace), now_us())
                for side in SIDES:
                    self.trace.setdefault((ticker, side), stamps)
        elif kind == "fill":
            self._on_fill(ctx, ticker, payload)
        elif kind == "user_order":
            self._on_user_order(ctx, ticker, payload)

    def _on_fill(self, ctx: Context, ticker: str, payload: dict[str, Any]) -> None:
        assert self.working is not None
        pos = self.positions.get(ticker) or Position(ticker)
        self.positions[ticker] = replace(pos, position=int(payload["position_after"]))
        order = self.working.find(payload.get("order_id"), payload.get("client_order_id"), ticker)
        if order is not None:
            count, now = int(payload["count"]), ctx.clock.now_ms()
            filled = replace(order, filled=order.filled + count, updated_ms=now)
            if order.remaining > count:
                self.working.apply(replace(filled, remaining=order.remaining - count))
            else:
                # By our arithmetic it is done; but an amend's answer may already have counted
                # this fill. Never forget an order on arithmetic alone: ask the exchange (the
                # market's next pass does, before it decides anything).
                self.to_resolve.setdefault(ticker, {})[order.client_order_id] = filled
        self.dirty.add(ticker)  # position changed: sizes may need to shrink

    def _on_user_order(self, ctx: Context, ticker: str, payload: dict[str, Any]) -> None:
        """The exchange says an order changed (cancelled by a pause, filled, decreased)."""
        assert self.working is not None
        order = self.working.find(payload.get("order_id"), payload.get("client_order_id"), ticker)
        if order is None or order.status is OrderStatus.PENDING:
            return
        status = OrderStatus(payload["status"])
        updated = self.working.apply(
            replace(
                order,
                status=status,
                remaining=int(payload["remaining"]),
                filled=int(payload.get("filled", order.filled)),
                updated_ms=ctx.clock.now_ms(),
            )
        )
        self.to_resolve.get(ticker, {}).pop(order.client_order_id, None)  # the exchange said
        if not status.is_live:
            event = "canceled" if status is OrderStatus.CANCELED else "filled"
            self.unlogged.setdefault(ticker, []).append(
                order_event(updated, event, ctx.clock.now_ms(), "exchange")
            )
        self.dirty.add(ticker)

    async def _settle(self, ctx: Context, ticker: str, side: Side) -> None:
        """Before a side's pass: write what the read loop changed in memory, then ask the
        exchange about the side's orders that fills say are done."""
        await self._settle_writes(ctx, ticker, side)
        waiting = self.to_resolve.get(ticker, {})
        for coid in [c for c, o in waiting.items() if o.side is side]:
            order = waiting.pop(coid, None)
            if order is not None:
                await self._resolve(ctx, order)

    async def _settle_writes(
        self, ctx: Context, ticker: str | None = None, side: Side | None = None
    ) -> None:
        """Mirror the read loop's in-memory changes of ``ticker``'s ``side`` orders (every
        market's with None; only the side's pass writes its orders, so one order's writes stay
        in order) and the market's order events to Redis, one round trip."""
        assert self.working is not None and self.batch is not None
        working = self.working

        def queue(pipe: Any) -> None:
            working.queue(pipe, ticker, side)
            for t in [ticker] if ticker is not None else list(self.unlogged):
                for event in self.unlogged.pop(t, []):
                    queue_append(pipe, ctx.keys, "orders", "order", event)

        await self.batch.execute(queue)

    # ---- one market --------------------------------------------------------------------------

    async def _market_pass(self, ctx: Context, key: PassKey) -> None:
        ticker, side = key
        STAMPS.set(self.trace.pop(key, None))  # this task's requests carry them
        cancelled = False
        try:
            async with self.limiter:
                started = ctx.clock.monotonic_ms()
                await self._settle(ctx, ticker, side)
                if await self._run_market(ctx, ticker, side):
                    ctx.metrics.observe_ms("loop_latency_ms", ctx.clock.monotonic_ms() - started)
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception:
            ctx.log.exception("market_pass_failed", market=ticker, side=side.value)
        finally:
            self.inflight.pop(key, None)
            if key in self.due and not (cancelled or self.closing):
                # Targets or fills read while this pass ran are answered now, not at the next
                # read. (What the pass itself marked, a refused amend say, waits for that read:
                # no tight loop against the exchange.) Only this side: every other due side is
                # in a pass of its own, which does the same when it ends.
                self.due.discard(key)
                self.inflight[key] = asyncio.create_task(self._market_pass(ctx, key))

    async def _run_market(self, ctx: Context, ticker: str, side: Side) -> bool:
        """One pass over one side of one market; True when it sent anything."""
        assert self.configs is not None and self.working is not None
        targets = self.latest.get(ticker)
        if targets is None:
            return False
        working = self.working.live(ticker)
        meta = self.meta.get(ticker)
        actions = [] if meta is None else _side_actions(working, targets, meta, side)
        if meta is None or any(a.adds_risk for a in actions):
            # Anything that could rest a quote first re-checks the book and the market itself
            # (one round trip); passes that only cancel or shrink need no such check.
            targets = await self._guard(ctx, ticker, targets)
            meta = self.meta.get(ticker)
            if meta is None:
                return False
            actions = _side_actions(working, targets, meta, side)
        if not actions:
            return False
        config = self.configs.market(ticker)
        position = self.positions.get(ticker) or Position(ticker)
        account = AccountRisk(
            self.halted or bool(self.pulled_reason),
            self.halt_reason or self.pulled_reason,
            self.daily_pnl,
            self.exposure,
        )
        approved: list[Action] = []
        denials: list[dict[str, Any]] = []
        virtual = list(working)
        for action in actions:
            denial = check_action(
                action, position, virtual, config, self.configs.global_config, account
            )
            if denial is not None:
                self._note_denial(ctx, ticker, action, denial, denials)
                continue
            approved.append(action)
            virtual = [o for o in virtual if o is not action.order]
            if action.kind is not ActionKind.CANCEL:
                virtual.append(
                    Order(
                        ticker,
                        action.side,
                        action.price,
                        action.size,
                        "virtual",
                        status=OrderStatus.PENDING,
                        remaining=action.size,
                    )
                )
        cancels = [a for a in approved if a.kind in (ActionKind.CANCEL, ActionKind.DECREASE)]
        adds = [a for a in approved if a not in cancels]
        # Risk-reducing actions first, then the rest, each group concurrently.
        for group in (cancels, adds):
            if group:
                await asyncio.gather(*(self._execute(ctx, a) for a in group))
        now = ctx.clock.now_ms()
        every_ms = self.settings.decision_log_every_ms
        if denials or (
            approved and every_ms and now - self.last_decision_ms.get(ticker, 0) >= every_ms
        ):
            # The decision log is for debugging (every order is in the trade log): at most one
            # per market per decision_log_every_ms (1 s by default), and every new denial.
            self.last_decision_ms[ticker] = now
            assert self.batch is not None
            decision = decision_event(
                ticker,
                ctx.clock.now_ms(),
                _book_summary(targets),
                position.position,
                {
                    "bid": _quote(targets, Side.BID),
                    "ask": _quote(targets, Side.ASK),
                    "reason": targets.reason,
                },
                [
                    {
                        "kind": a.kind.value,
                        "side": a.side.value,
                        "price": a.price,
                        "size": a.size,
                        "reason": a.reason,
                    }
                    for a in approved
                ],
                denials,
            )
            await self.batch.execute(
                lambda pipe: queue_append(pipe, ctx.keys, "decisions", "decision", decision)
            )
        return bool(approved)

    async def _guard(self, ctx: Context, ticker: str, targets: Targets) -> Targets:
        """Never rest a quote on a stale book or a market that is not open, whatever the targets
        say (the strategy checks too; this is the second lock)."""
        assert self.batch is not None
        book_fields, market_fields = await self.batch.execute(
            lambda pipe: (
                pipe.hgetall(ctx.keys.book(ticker)),
                pipe.hgetall(ctx.keys.market(ticker)),
            )
        )
        if market_fields:
            with contextlib.suppress(SchemaError):
                self.meta[ticker] = decode_market(ticker, market_fields)
        meta = self.meta.get(ticker)
        reason = ""
        if meta is None or not meta.is_open:
            reason = "market_not_open"
        elif not book_fields:
            reason = "no_book"
        else:
            try:
                if decode_book(ticker, book_fields).stale:
                    reason = "book_stale"
            except SchemaError:
                reason = "bad_book"
        if reason and (targets.bid or targets.ask):
            return Targets(ticker, None, None, reason, targets.computed_ms, targets.book_ms)
        return targets

    def _note_denial(
        self,
        ctx: Context,
        ticker: str,
        action: Action,
        denial: Denial,
        denials: list[dict[str, Any]],
    ) -> None:
        self.counts["denied"] += 1
        key = (ticker, action.side)
        if self.last_denials.get(key) == denial.rule:
            return  # the same denial again: recorded once, not on every book update
        self.last_denials[key] = denial.rule
        denials.append(
            {
                "side": action.side.value,
                "kind": action.kind.value,
                "price": action.price,
                "size": action.size,
                "rule": denial.rule,
                "detail": denial.detail,
            }
        )
        ctx.log.info(
            "denied", market=ticker, side=action.side.value, rule=denial.rule, detail=denial.detail
        )

    async def _execute(self, ctx: Context, action: Action) -> None:
        assert self.working is not None and self.gateway is not None
        now = ctx.clock.now_ms()
        try:
            if action.kind is ActionKind.PLACE:
                await self._place(ctx, action)
            elif action.kind is ActionKind.CANCEL:
                assert action.order is not None
                await self.gateway.cancel(action.order)
                gone = replace(
                    action.order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now
                )
                self.counts["canceled"] += 1
                ctx.metrics.count("orders_cancelled")
                await self._record(ctx, gone, "canceled", action.reason)
            elif action.kind is ActionKind.DECREASE:
                assert action.order is not None
                updated = await self.gateway.decrease(action.order, action.size)
                self.counts["decreased"] += 1
                await self._record(
                    ctx, _merge(action.order, updated, now), "decreased", action.reason, updated
                )
            else:
                assert action.order is not None
                updated = await self.gateway.amend(action.order, action.price, action.size)
                self.counts["amended"] += 1
                await self._record(
                    ctx, _merge(action.order, updated, now), "amended", action.reason, updated
                )
            self.last_denials.pop((action.ticker, action.side), None)
        except NotFound:
            if action.order is not None:  # it is gone at the exchange: stop tracking it
                gone = replace(
                    action.order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now
                )
                await self._record(ctx, gone, "canceled", "not_found_at_exchange")
        except OrderRejected as exc:
            self.counts["rejected"] += 1
            ctx.log.info(
                "rejected",
                market=action.ticker,
                kind=action.kind.value,
                side=action.side.value,
                price=action.price,
                reason=str(exc),
            )
            if action.order is not None:
                self.dirty.add(action.ticker)  # an amend/decrease refused: look again next pass
                await self._resolve(ctx, action.order)
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning(
                "action_failed",
                market=action.ticker,
                kind=action.kind.value,
                side=action.side.value,
                error=f"{type(exc).__name__}: {exc}",
            )
            if action.order is not None:
                await self._resolve(ctx, action.order)

    async def _place(self, ctx: Context, action: Action) -> None:
        assert self.working is not None and self.gateway is not None and self.batch is not None
        working = self.working
        self.seq += 1
        coid = make_client_order_id(self.namespace, action.ticker, action.side, self.seq)
        now = ctx.clock.now_ms()
        pending = Order(
            action.ticker,
            action.side,
            action.price,
            action.size,
            coid,
            status=OrderStatus.PENDING,
            remaining=action.size,
            created_ms=now,
            updated_ms=now,
        )
        await self.batch.execute(lambda pipe: working.queue_save(pipe, pending))  # before sending
        group_id = await self._order_group(ctx, action.ticker)
        if group_id == "":
            return  # the market's order group fired: it cools down before quoting again
        request = OrderRequest(
            action.ticker,
            action.side,
            action.price,
            action.size,
            coid,
            post_only=True,
            cancel_order_on_pause=True,
            order_group_id=group_id,
        )
        try:
            placed = await self.gateway.place(request)
        except OutcomeUnknown as exc:
            unknown = replace(pending, status=OrderStatus.UNKNOWN, updated_ms=ctx.clock.now_ms())
            await self._record(ctx, unknown, "unknown", str(exc))
            return
        except OrderRejected as exc:
            if group_id and "group" in f"{exc.details} {exc}".lower():
                self.group_cooldown_ms[action.ticker] = ctx.clock.now_ms() + GROUP_COOLDOWN_MS
                ctx.log.warning(
                    "order_group_triggered",
                    market=action.ticker,
                    group=group_id,
                    cooldown_ms=GROUP_COOLDOWN_MS,
                )
            rejected = replace(
                pending, status=OrderStatus.REJECTED, remaining=0, updated_ms=ctx.clock.now_ms()
            )
            self.counts["rejected"] += 1
            await self._record(ctx, rejected, "rejected", str(exc))
            return
        except ExchangeError as exc:
            # Any other failure of a create: the outcome is not known until the exchange says.
            ctx.metrics.count("api_errors")
            unknown = replace(pending, status=OrderStatus.UNKNOWN, updated_ms=ctx.clock.now_ms())
            await self._record(ctx, unknown, "unknown", f"{type(exc).__name__}: {exc}")
            return
        self.counts["placed"] += 1
        ctx.metrics.count("orders_placed")
        await self._record(
            ctx, _merge(pending, placed, ctx.clock.now_ms()), "placed", action.reason
        )

    async def _order_group(self, ctx: Context, ticker: str) -> str | None:
        """The market's order group id (created once and kept in ``dora:groups``); None when
        groups are off; "" while a triggered group cools down."""
        assert self.gateway is not None
        limit = self.settings.executor_order_group_contracts * 100
        if not limit:
            return None
        lock = self.group_locks.setdefault(ticker, asyncio.Lock())
        async with lock:  # the bid and the ask of one pass must not each create a group
            return await self._order_group_locked(ctx, ticker, limit)

    async def _order_group_locked(self, ctx: Context, ticker: str, limit: int) -> str:
        assert self.gateway is not None
        until = self.group_cooldown_ms.get(ticker)
        group_id = self.groups.get(ticker) or await ctx.redis.hget(ctx.keys.order_groups, ticker)
        if until is not None:
            if ctx.clock.now_ms() < until:
                return ""
            del self.group_cooldown_ms[ticker]
            if group_id:
                await self.gateway.reset_group(group_id)
                ctx.log.info("order_group_reset", market=ticker, group=group_id)
        if not group_id:
            group_id = await self.gateway.create_group(limit)
            await ctx.redis.hset(ctx.keys.order_groups, ticker, group_id)
        self.groups[ticker] = group_id
        return group_id

    async def _record(
        self,
        ctx: Context,
        order: Order,
        event: str,
        reason: str = "",
        logged: Order | None = None,
    ) -> None:
        """Save ``order`` and append its trade-log event (of ``logged``, the exchange's answer,
        when given) in one round trip."""
        assert self.working is not None and self.batch is not None
        working = self.working
        payload = order_event(logged or order, event, ctx.clock.now_ms(), reason)

        def queue(pipe: Any) -> None:
            working.queue_save(pipe, order)
            queue_append(pipe, ctx.keys, "orders", "order", payload)

        await self.batch.execute(queue)

    async def _order_event(self, ctx: Context, order: Order, event: str, reason: str = "") -> None:
        await append(
            ctx.redis,
            ctx.keys,
            "orders",
            "order",
            order_event(order, event, ctx.clock.now_ms(), reason),
        )

    # ---- safety ------------------------------------------------------------------------------

    async def _on_control(self, ctx: Context, command: ControlCommand) -> None:
        if command.cmd == "halt":
            self.halted, self.halt_reason = True, command.reason or "halt via control channel"
            self.halt_heard_ms = ctx.clock.now_ms()
            ctx.log.warning("halt_received", reason=self.halt_reason)
            self._start_cancel_all(ctx, "halt")
            await record_heard_halt(ctx.redis, ctx.keys, self.halt_reason, self.halt_heard_ms)
        elif command.cmd == "resume":
            await self._refresh_risk(ctx)
            for ticker in self.latest:
                self.dirty.add(ticker)
        elif (
            command.cmd == "reload"
            and self.configs is not None
            and await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        ):
            self.dirty.update(self.latest)

    def _start_cancel_all(self, ctx: Context, why: str) -> None:
        if self.cancel_all_task is None or self.cancel_all_task.done():
            self.cancel_all_task = asyncio.create_task(self._cancel_all(ctx, why))

    async def _cancel_all(self, ctx: Context, why: str) -> None:
        assert self.gateway is not None and self.working is not None
        for attempt in range(10):
            try:
                sent_ms = ctx.clock.now_ms()
                await self.gateway.cancel_all()
                in_flight = [t for t in self.inflight.values() if not t.done()]
                if in_flight:
                    # Creates already sent can land after the cancel-all: let them finish (no new
                    # ones start: adds are denied now), then cancel once more.
                    await asyncio.wait(in_flight, timeout=2.0)
                    await self.gateway.cancel_all()
                now = ctx.clock.now_ms()
                for order in self.working.all_live():
                    # Only what was known to rest before the cancel-all left: a create that was in
                    # flight may have landed after it and still rest (reconcile will tell).
                    if order.status is OrderStatus.RESTING and order.updated_ms < sent_ms:
                        gone = replace(
                            order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now
                        )
                        await self._record(ctx, gone, "canceled", why)
                ctx.log.warning("cancelled_all", reason=why)
                self.last_reconcile_ms = 0.0  # reconcile at once: learn whatever still rests
                return
            except ExchangeError as exc:
                ctx.log.error("cancel_all_failed", reason=why, error=str(exc), attempt=attempt)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def _refresh_risk(self, ctx: Context, full: bool = True) -> None:
        """The halt and daily PnL (one read); with ``full``, also positions (kept current between
        refreshes by the fill events), exposure and config, which cost a read per market."""
        assert self.configs is not None
        state = decode_risk(await ctx.redis.hgetall(ctx.keys.risk))
        if state.halted and not self.halted:
            self.halted, self.halt_reason = True, state.reason or "halted"
            self.halt_heard_ms = state.halted_ms
            self._start_cancel_all(ctx, "halt")
        elif not state.halted and self.halted and state.halted_ms >= self.halt_heard_ms:
            # a resume recorded after the halt we acted on (never just a missing record)
            self.halted, self.halt_reason = False, ""
            ctx.log.info("resumed")
            self.dirty.update(self.latest)
        self.daily_pnl = state.daily_pnl
        if not full:
            return
        if ctx.clock.now_ms() - self.configs.loaded_ms > 5_000:
            await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        tickers = sorted({*self.latest, *(self.working.tickers() if self.working else [])})
        if tickers:
            pipe = ctx.redis.pipeline(transaction=False)
            for ticker in tickers:
                pipe.hgetall(ctx.keys.pos(ticker))
            for ticker, fields in zip(tickers, await pipe.execute(), strict=True):
                self.positions[ticker] = decode_position(ticker, fields)
        orders = self.working.all_live() if self.working else []
        self.exposure = worst_case_exposure(self.positions.values(), orders)

    async def _check_feeds(self, ctx: Context) -> None:
        """Pull quotes while marketdata or strategy is silent; restore when both are back."""
        pipe = ctx.redis.pipeline(transaction=False)
        for service in WATCHED_HEARTBEATS:
            pipe.exists(ctx.keys.hb(service))
        alive = await pipe.execute()
        silent = [s for s, ok in zip(WATCHED_HEARTBEATS, alive, strict=True) if not ok]
        reason = f"{','.join(silent)} silent" if silent else ""
        if self.pulled_reason == "starting":
            if not reason and ctx.clock.now_ms() >= self.started_ms + self.fence_ms:
                if self.fence_ms:
                    # A create sent by the process before us (killed mid-request, or slowed by
                    # the exchange) can land after our first look: reconcile once more, then quote.
                    await self._reconcile(ctx)
                ctx.log.info("feeds_alive")
                self.pulled_reason = ""
                self.dirty.update(self.latest)
            return
        if reason and not self.pulled_reason:
            ctx.log.warning("pulling_quotes", reason=reason)
            self._start_cancel_all(ctx, reason)
        elif not reason and self.pulled_reason:
            ctx.log.info("quotes_restored")
            self.dirty.update(self.latest)
        self.pulled_reason = reason

    async def _reconcile_safely(self, ctx: Context) -> None:
        try:
            await self._reconcile(ctx)
        except Exception as exc:
            ctx.log.warning("reconcile_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.reconciling = None

    async def _reconcile(self, ctx: Context) -> None:
        """Make the working orders agree with the exchange (the exchange wins)."""
        assert self.gateway is not None and self.working is not None
        started = ctx.clock.now_ms()
        at_exchange = [o for o in await self.gateway.open_orders() if self.owned(o.ticker)]
        seen: set[str] = set()
        for theirs in at_exchange:
            mine = self.working.find(theirs.order_id, theirs.client_order_id, theirs.ticker)
            seen.add(mine.client_order_id if mine else theirs.client_order_id)
            if mine is None:
                adopted = replace(theirs, status=OrderStatus.RESTING, updated_ms=started)
                await self.working.save(adopted)
                self.dirty.add(theirs.ticker)
                ctx.log.warning(
                    "adopted_exchange_order", market=theirs.ticker, order_id=theirs.order_id
                )
            elif mine.updated_ms <= started and (
                mine.price != theirs.price
                or mine.remaining != theirs.remaining
                or mine.status is not OrderStatus.RESTING
            ):
                await self.working.save(_merge(mine, theirs, started))
        for mine in self.working.all_live():
            if mine.client_order_id in seen or mine.updated_ms > started:
                continue  # at the exchange, or changed while we were asking
            if mine.status is OrderStatus.PENDING and started - mine.created_ms < PENDING_GRACE_MS:
                continue  # its create is in flight: the answer to it will say
            await self._resolve(ctx, mine)

    async def _resolve(self, ctx: Context, order: Order) -> None:
        """Ask the exchange what became of ``order`` and believe it."""
        assert self.gateway is not None and self.working is not None
        try:
            theirs = await self.gateway.lookup(order)
        except ExchangeError as exc:
            ctx.log.warning(
                "lookup_failed",
                market=order.ticker,
                client_order_id=order.client_order_id,
                error=str(exc),
            )
            return
        now = ctx.clock.now_ms()
        if theirs is None:
            if (
                order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN)
                and now - order.created_ms < UNKNOWN_GIVE_UP_MS
            ):
                return  # may still appear: ask again at the next reconcile
            gone = replace(order, status=OrderStatus.CANCELED, remaining=0, updated_ms=now)
            await self._record(ctx, gone, "canceled", "absent_at_exchange")
        else:
            resolved = await self.working.save(_merge(order, theirs, now))
            if not resolved.status.is_live:
                await self._order_event(
                    ctx,
                    resolved,
                    "filled" if resolved.status is OrderStatus.EXECUTED else "canceled",
                    "resolved_by_lookup",
                )
        self.dirty.add(order.ticker)


def _side_actions(
    working: list[Order], targets: Targets, meta: MarketMeta, side: Side
) -> list[Action]:
    return [a for a in diff_orders(working, targets, meta.grid) if a.side is side]


def _merge(mine: Order, theirs: Order, now_ms: int) -> Order:
    """The exchange's facts (id, status, price, sizes) on our record (client id, created time)."""
    return replace(
        mine,
        order_id=theirs.order_id or mine.order_id,
        status=theirs.status,
        price=theirs.price,
        count=theirs.count or mine.count,
        filled=theirs.filled,
        remaining=theirs.remaining,
        updated_ms=now_ms,
    )


def _quote(targets: Targets, side: Side) -> dict[str, Any] | None:
    quote = targets.bid if side is Side.BID else targets.ask
    return (
        None
        if quote is None
        else {"price": quote.price, "size": quote.size, "reason": quote.reason}
    )


def _book_summary(targets: Targets) -> dict[str, Any]:
    return {"book_ms": targets.book_ms, "fair_price": targets.fair_price}


def main() -> int:
    return service_main(ExecutorService, needs_kalshi=True)
