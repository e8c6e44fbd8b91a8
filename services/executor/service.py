"""The executor process: its clients built first, its parts wired, its lifecycle.

``build`` makes the clients (the exchange gateway, the working orders, the config cache, the
shared pipeline) before the service object, which wires the parts (see ``services.executor``)
and runs ``start`` (restore, reconcile, subscribe), ``step`` (the ``Loop``) and ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.batching import Batcher
from common.clock_guard import ClockGuard
from common.config_cache import ConfigCache
from common.control import ControlListener
from common.domain import OrderStatus
from common.errors import SchemaError
from common.ledger import Ledger
from common.redis_codec import decode_targets
from common.redis_conn import connect_redis
from common.restore import wait_until_restored
from common.runtime import Context, Deferred, service_main, stop_tasks
from common.settings import Settings
from common.sharding import executor_name as shard_executor
from common.sharding import owns
from common.trace import TickToOrder
from services.executor.gate import TradingGate
from services.executor.gateway import Gateway
from services.executor.groups import OrderGroups
from services.executor.inbox import Inbox
from services.executor.journal import OrderJournal
from services.executor.kalshi_gateway import KalshiGateway
from services.executor.lease import Lease
from services.executor.loop import Loop
from services.executor.market_pass import MarketPass
from services.executor.orders import OrderEntry
from services.executor.outage import BlindGate, RedisWatch
from services.executor.reconcile import Reconciler
from services.executor.safety import Safety
from services.executor.state import START_FENCE_MS, Markets, Pulled, Schedule, new_counts
from services.executor.working import WorkingOrders


def executor_name(settings: Settings) -> str:
    return shard_executor(settings.shard_index, settings.shard_count)


async def build(ctx: Context, gateway: Gateway | None = None) -> ExecutorService:
    """The executor with its clients; ``gateway`` defaults to Kalshi's (or the simulator's)."""
    settings = ctx.settings
    if gateway is None:
        gateway = await KalshiGateway.connect(settings, ctx.redis, ctx.clock)
    clock_guard = None
    if isinstance(gateway, KalshiGateway):
        clock_guard = ClockGuard(gateway.client, settings, ctx.log, ctx.clock)
    tracer = None
    if settings.trace_latency and isinstance(gateway, KalshiGateway):
        tracer = TickToOrder()
        gateway.client.transport.add_request_hook(tracer.on_request)
    return ExecutorService(
        ctx,
        gateway=gateway,
        working=WorkingOrders(ctx.redis, ctx.keys, ctx.log),
        configs=ConfigCache(ctx.keys, ctx.log),
        batch=Batcher(ctx.redis),
        probe_redis=connect_redis(settings),  # its own connection: the loop's may hang
        tracer=tracer,
        clock_guard=clock_guard,
    )


class ExecutorService:
    def __init__(
        self,
        ctx: Context,
        *,
        gateway: Gateway,
        working: WorkingOrders,
        configs: ConfigCache,
        batch: Batcher,
        probe_redis: aioredis.Redis,
        tracer: TickToOrder | None = None,
        clock_guard: ClockGuard | None = None,
    ) -> None:
        settings = ctx.settings
        self.name = executor_name(settings)
        self.ctx = ctx
        pulled = Pulled()
        # every write goes through the gate: nothing that adds risk leaves while Redis is away
        gateway = BlindGate(gateway, pulled)
        self.gateway = gateway
        self.probe_redis = probe_redis
        self.working = working
        self.configs = configs
        self.batch = batch
        self.counts = new_counts()
        self.markets = Markets()
        self.schedule = Schedule()
        self.journal = OrderJournal(ctx, working, batch)
        self.reconciler = Reconciler(ctx, gateway, working, self.journal, self.schedule, self.owned)
        self.groups = OrderGroups(ctx, gateway, configs, self.markets, batch)
        namespace = f"{settings.kalshi_key_id}:{settings.shard_index}:{ctx.clock.now_ms()}"
        self.entry = OrderEntry(
            ctx,
            gateway,
            self.journal,
            self.reconciler,
            self.groups,
            self.schedule,
            self.counts,
            namespace,
        )
        self.lease = Lease(
            ctx.redis, ctx.keys, self.name, ctx.log, shard_count=ctx.settings.shard_count
        )
        self.ledger = Ledger(ctx.redis, ctx.keys, self.lease.key, lambda: self.lease.token)
        self.safety = Safety(
            ctx,
            gateway,
            working,
            self.journal,
            self.reconciler,
            configs,
            self.schedule,
            self.markets,
            pulled,
            self.ledger,
            self.lease,
            self.owned,
        )
        self.redis_watch = RedisWatch(
            ctx,
            probe_redis.ping,
            gateway=gateway,
            working=working,
            journal=self.journal,
            reconciler=self.reconciler,
            safety=self.safety,
            schedule=self.schedule,
            markets=self.markets,
        )
        self.market_pass = MarketPass(
            ctx,
            batch,
            configs,
            working,
            self.markets,
            self.safety,
            self.entry,
            self.counts,
            self.ledger,
        )
        self.gate = TradingGate(
            ctx,
            batch,
            self.safety.blocked,
            clock_guard,
            self._state_back,
            lambda: self.schedule.mark_all(self.markets.targets),
            lambda: self.markets.bad_positions,
        )
        self.inbox = Inbox(
            ctx,
            working,
            self.journal,
            self.reconciler,
            self.markets,
            self.schedule,
            self.owned,
            tracing=tracer is not None,
        )
        self.loop = Loop(
            ctx,
            working=working,
            journal=self.journal,
            reconciler=self.reconciler,
            groups=self.groups,
            safety=self.safety,
            inbox=self.inbox,
            market_pass=self.market_pass,
            schedule=self.schedule,
            tracer=tracer,
            gate=self.gate,
        )
        self.tasks: list[asyncio.Task[None]] = []

    def owned(self, ticker: str) -> bool:
        settings = self.ctx.settings
        return owns(ticker, settings.shard_index, settings.shard_count)

    async def start(self, ctx: Context) -> None:
        # One executor per shard: a second one waits here (saying once who holds it).
        if not await self.lease.acquire(ctx.stopping):
            return
        if not any(task.get_name() == "lease" for task in self.tasks):
            self.tasks.append(asyncio.create_task(self.lease.run(), name="lease"))
        # Read before our own heartbeat exists: a predecessor killed uncleanly leaves its key for
        # the heartbeat TTL (a clean stop drains its passes and deletes the key).
        predecessor_alive = bool(await ctx.redis.exists(ctx.keys.hb(ctx.name)))
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        await self.gate.check_clock_at_start()  # a skewed clock: not starting, one line why
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        loaded = await self.working.load(self.owned)
        await self.groups.load()
        in_doubt = sum(o.status is not OrderStatus.RESTING for o in self.working.all_live())
        pulled = self.safety.pulled
        pulled.fence_ms = START_FENCE_MS if predecessor_alive or in_doubt else 0
        pulled.started_ms = ctx.clock.now_ms()
        await self.safety.refresh_risk()
        await self.gate.refresh()  # positions synced with the exchange yet? (fills says)
        await self.loop.read_from_now()
        # the fills read from now on are posted after; those before are in the positions
        await self.working.credit_posted(self.loop.stream_ids[ctx.keys.stream("fills")])
        if ctx.settings.executor_cancel_on_start:
            # dora's own orders only: a start option is no kill switch (DESIGN.md §5)
            await self.gateway.cancel_own()
            ctx.log.info("cancelled_own_at_start")
        await self.reconciler.reconcile()
        await self.ledger.load()
        await self.safety.refresh_risk()  # the positions, for the ledger
        await self.safety.keeper.rebuild()  # before the first order
        await self.gate.refresh()  # a position the rebuild could not read holds every add
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, self.safety.on_control)
        self.tasks.append(asyncio.create_task(listener.run(), name="control"))
        # the markets' order groups while the feeds come alive, not in the first wave's way
        owned = [t for t in self.configs.enabled() if self.owned(t)]
        self.tasks.append(asyncio.create_task(self.groups.prepare(owned), name="groups"))
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        self.tasks.append(asyncio.create_task(self.redis_watch.run(), name="redis_watch"))
        # Targets already published before we started: act on the latest of each market.
        async for key in ctx.redis.scan_iter(match=ctx.keys.pattern("targets"), count=500):
            ticker = ctx.keys.ticker_of(key, "targets")
            if self.owned(ticker):
                with contextlib.suppress(SchemaError, ResponseError):  # WRONGTYPE: none yet
                    targets = decode_targets(ticker, await ctx.redis.hgetall(key))
                    self.markets.targets[ticker] = targets
                    self.schedule.mark(ticker)
        ctx.log.info(
            "executor_ready",
            restored_orders=loaded,
            creates_in_doubt=in_doubt,
            predecessor_alive=predecessor_alive,
            start_fence_ms=pulled.fence_ms,
            halted=self.safety.halt.halted,
        )

    async def _state_back(self) -> None:
        """Redis lost its data and has it back (positions synced with the exchange): write the
        working orders to it again and check them against the exchange before quoting."""
        saved = await self.working.save_all()
        await self.safety.refresh_risk()
        await self.safety.keeper.rebuild()
        self.schedule.reconcile_soon()
        self.schedule.mark_all(self.markets.targets)
        self.ctx.log.info("working_orders_written_back", orders=saved)

    async def step(self, ctx: Context) -> None:
        await self.loop.step()
        pulled = self.safety.pulled
        ctx.status.update(
            self.counts,
            halted=self.safety.halt.halted,
            quotes_pulled=pulled.blind or pulled.reason,
            redis_outages=self.redis_watch.outages,
        )

    async def stop(self, ctx: Context) -> None:
        self.schedule.closing = True
        await stop_tasks([*self.tasks, *self.schedule.inflight.values(), *self.loop.background()])
        await self.batch.aclose()
        with contextlib.suppress(Exception):  # best effort: reconciliation repairs the rest
            await asyncio.wait_for(self.journal.flush(), 2)
        if self.safety.cancel_all_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.safety.cancel_all_task, 5)
        await self.gateway.aclose()
        with contextlib.suppress(Exception):
            await self.lease.release()  # a standby takes over at once
        with contextlib.suppress(Exception):
            await self.probe_redis.aclose()
        await self.loop.burst.aclose()
        await self.batch.close()


def main() -> int:
    return service_main(
        lambda settings: Deferred(executor_name(settings), build), needs_kalshi=True
    )
