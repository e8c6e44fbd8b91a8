"""A chaos run: bring the whole stack up, trade under faults, then check every invariant.

1. ``LocalStack`` (Redis with AOF, moto, the simulator with flow, supervisord with all six
   processes) on ``markets`` markets with a tight inventory cap so the cap really binds;
2. the watchers start (``sim.chaos.watch``) and the bot warms up;
3. the seeded schedule (``sim.chaos.schedule``) is played: kill -9s, a Redis restart, the
   simulator's 429 bursts, 5xx, latency, WebSocket drops, seq gaps and feed stalls, a DynamoDB
   outage, a market paused and resumed, one closed, halts and resumes;
4. the end: faults cleared, the bot must quote again, a final halt, a quiet period, then the
   exchange's truth (order log, fills, positions) against Redis, DynamoDB and the logs
   (``sim.chaos.invariants``); the stack stops and every log is scanned for key material.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from cli.devstack import REPO, SERVICES, LocalStack, StackConfig
from common.config import GlobalConfig
from common.numbers import MONEY_SCALE, parse_count
from sim.chaos import invariants as inv
from sim.chaos.breach import BreachDump, redis_view
from sim.chaos.inject import NEW_KINDS, PAUSE_LEAD_S, Injector
from sim.chaos.limits import EventInfo, LimitWatch
from sim.chaos.model import FaultKind, FaultRecord, InvariantResult, PlannedFault
from sim.chaos.schedule import PAUSE_LEAD_IN_S, PAUSE_S, build_schedule, schedule_length_s
from sim.chaos.stray import program_names, sharded_conf
from sim.chaos.watch import AccountWatch, FlagWatch, ProcessWatch, Watchers, now_ms

CAP_CONTRACTS = 10
QUOTE_CONTRACTS = 5
HALT_GRACE_MS = 1_000  # the halt contract: nothing new within one second
STALE_GRACE_MS = 1_000
LIFECYCLE_GRACE_MS = 3_000  # lifecycle event -> marketdata -> executor pulls the quotes
CANCEL_BOUND_MS = 3_000
MAX_DOWN_MS = 15_000
DAILY_LOSS_HALT_BOUND_MS = 2_500  # one risk check (1 s) and a poll, with slack
EXPOSURE_CAP_DOLLARS = 300  # max_total_exposure of the run (binding now and then on 50 markets)
# max_event_loss of the run, when dora knows the setting: binding at times, with room to quote.
# The `event` scenario's events are a few mutually exclusive outcomes; the other scenarios group
# a dozen or more independent markets in one event, whose worst losses add up (a $20 limit there
# left fewer than ten markets quotable on both sides, and the liveness check failed on it).
EVENT_LOSS_DOLLARS = 20
EVENT_LOSS_DOLLARS_WIDE = 60


def event_loss_dollars(scenario: str) -> int:
    return EVENT_LOSS_DOLLARS if scenario == "event" else EVENT_LOSS_DOLLARS_WIDE


DAILY_LOSS_DOLLARS = "500"
PAUSE_AFTER_START_S = 45.0  # the exchange's pause: warm-up + this after the simulator starts
SABOTAGE = ("order-while-halted",)
CLUSTER_SHARDS = 2
# faults of one Redis node and of one supervisord host, left out on a cluster (its Redis fault is
# the master killed while trading)
SINGLE_REDIS_ONLY = (
    FaultKind.REDIS_FREEZE,
    FaultKind.REDIS_FLUSH,
    FaultKind.REDIS_WIPE,
    FaultKind.STRAY_EXECUTOR,
)


@dataclass
class ChaosOptions:
    seconds: float = 600.0
    markets: int = 50
    seed: int = 0
    base_dir: Path = field(default_factory=lambda: REPO / "var" / "chaos")
    kinds: Collection[FaultKind] = tuple(FaultKind)
    warmup_s: float = 15.0
    shards: int = 2  # executor (and strategy) shards
    scenario: str = "event"  # mutually exclusive events of three markets
    sabotage: str = ""  # break an invariant on purpose (tests): one of SABOTAGE
    log: Callable[[str], None] = print
    # a local Redis Cluster and two strategy/executor shard hosts; the Redis restart becomes a
    # master killed while trading (its replica is promoted), kill -9s reach the shard hosts too
    cluster: bool = False


@dataclass
class ChaosResult:
    options: ChaosOptions
    planned: list[PlannedFault]
    faults: list[FaultRecord]
    invariants: list[InvariantResult]
    duration_s: float
    stats: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(r.held for r in self.invariants)


class ChaosRun:
    def __init__(self, options: ChaosOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        cap = str(CAP_CONTRACTS)
        limits = {"max_total_exposure": str(EXPOSURE_CAP_DOLLARS), "max_daily_loss": "500"}
        self.knows_event_loss = "max_event_loss" in GlobalConfig.FIELDS
        if self.knows_event_loss:
            limits["max_event_loss"] = str(event_loss_dollars(options.scenario))
        options.base_dir.mkdir(parents=True, exist_ok=True)
        conf = options.base_dir / "supervisord.sharded.conf"
        conf.write_text(sharded_conf((REPO / "supervisord.conf").read_text(), options.shards))
        self.stack = LocalStack(
            StackConfig(
                base_dir=options.base_dir,
                markets=options.markets,
                seed=options.seed,
                scenario=options.scenario,
                market_overrides={
                    "max_inventory_yes": cap,
                    "max_inventory_no": cap,
                    "quote_size": str(QUOTE_CONTRACTS),
                },
                global_overrides=limits,
                env={"DORA_PAUSE_LEAD_S": str(PAUSE_LEAD_S), "DORA_EXCHANGE_POLL_MS": "1000"},
                pause_schedule=(
                    f"every:86400:{PAUSE_S:g}:{options.warmup_s + PAUSE_AFTER_START_S:g}"
                    if FaultKind.EXCHANGE_PAUSE in options.kinds
                    else "none"
                ),
                # on a cluster the stack runs its own shard hosts from the plain conf
                supervisord_conf=REPO / "supervisord.conf" if options.cluster else conf,
                cluster=options.cluster,
                shards=CLUSTER_SHARDS if options.cluster else 1,
            )
        )
        self.shards = CLUSTER_SHARDS if options.cluster else options.shards
        self.kinds = [k for k in options.kinds if not (options.cluster and k in SINGLE_REDIS_ONLY)]
        if options.cluster:  # the shard hosts' processes: ``executor@1``, ...
            self.programs = tuple(p for p in self.stack.expected_processes() if p != "web")
        else:
            self.programs = program_names(SERVICES, options.shards)
        self.injector: Injector | None = None
        self.faults: list[FaultRecord] = []
        self.kills: Counter[str] = Counter()
        self.halts_issued = 0
        self.watchers: Watchers | None = None

    # ---- the run ---------------------------------------------------------------------------

    def run(self) -> ChaosResult:
        started = time.monotonic()
        stack = self.stack
        self.o.log(f"chaos: seed {self.o.seed}, {self.o.markets} markets, base {stack.base}")
        stack.start()
        try:
            return self._run(stack, started)
        finally:
            if self.watchers is not None:
                self.watchers.stop()
            stack.stop()

    def _run(self, stack: LocalStack, started: float) -> ChaosResult:
        w = self.watchers = Watchers(
            AccountWatch(stack.control_url, stack.config.key_id, cap=CAP_CONTRACTS * 100),
            FlagWatch(stack.redis_url, stack.tickers, keys=stack.keys(), cluster=self.o.cluster),
            ProcessWatch(
                str(stack.var_dir / "supervisor.sock"),
                [str(conf.parent / "var" / "supervisor.sock") for conf, _ in stack.hosts()[1:]],
            ),
        )
        events = self._events()
        limit_watch = LimitWatch(events)
        w.account.hooks.append(limit_watch)
        injector = self.injector = Injector(
            stack,
            w,
            shards=self.shards,
            base_cap=EXPOSURE_CAP_DOLLARS * MONEY_SCALE,
            base_daily_loss=DAILY_LOSS_DOLLARS,
            cli=self._cli,
            redis_positions=self._redis_positions,
            log=self.o.log,
        )
        if self.knows_event_loss:
            injector.event_limits.set(0, event_loss_dollars(self.o.scenario) * MONEY_SCALE)
        keys = stack.keys()
        w.account.hooks.append(
            BreachDump(
                events,
                injector.event_limits.at,
                lambda event: redis_view(stack.sync_redis, keys, event),
                stack.base,
            )
        )
        w.start()
        warming = time.monotonic()
        fault_phase = max(10.0, self.o.seconds - self.o.warmup_s - 15.0)
        planned = build_schedule(
            fault_phase,
            self.rng,
            tickers=stack.tickers,
            processes=self.programs,
            kinds=self.kinds,
        )
        wait_s = self.o.warmup_s
        if any(f.kind is FaultKind.EXCHANGE_PAUSE for f in planned):
            # the phase opens with the exchange's pause, published since the simulator started
            pause_ms, _ = injector.pause_window()
            wait_s = (pause_ms - PAUSE_LEAD_IN_S * 1000 - now_ms()) / 1000
        time.sleep(max(0.0, wait_s))
        self.o.log(
            f"chaos: {len(planned)} faults over {schedule_length_s(planned):.0f} s "
            f"after {time.monotonic() - warming:.0f} s of warm-up"
        )
        self._play(planned)
        last_fault_ms = now_ms()
        self._clear_all()

        # the bot must come back before the end: quotes on a share of the open markets
        quotable = len(stack.tickers) - 1  # one market was closed
        at_least = max(1, min(10, quotable // 5))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if w.account.samples(last_fault_ms, now_ms())[-1:] and any(
                s.two_sided >= at_least for s in w.account.samples(last_fault_ms, now_ms())
            ):
                break
            time.sleep(0.5)
        kept = inv.check_kept_quoting(w.account, last_fault_ms, now_ms(), at_least)

        # the final halt, a quiet period, then the exchange's truth against ours
        final_halt_ms = self._halt("chaos: end of run", use_cli=True)
        time.sleep(3)
        theirs, ours = self._positions_settled()
        fills = self._exchange_fills()
        exchange_ids = [f.fill_id for f in fills]
        logged = self._trade_log_fill_ids(expect=set(exchange_ids))
        cancel = self._cli("cancel-all")
        resting_at_end = len(w.account.account()["resting_orders"])
        run_end_ms = now_ms()
        time.sleep(0.5)
        w.stop()
        order_log = stack.sim_get("/orders", key_id=stack.config.key_id)["orders"]
        supervisord_log = "".join(
            _named(_read(conf.parent / "var" / "log" / "supervisord.log"), suffix)
            for conf, suffix in stack.hosts()
        )
        executors = sorted({p.split("@")[0] for p in self.programs if p.startswith("executor")})
        executor_log = "\n".join(  # every shard's, on one host or on the shard hosts
            _read(conf.parent / "var" / "log" / f"{name}.log")
            for conf, _ in stack.hosts()
            for name in executors
        )
        halt_faults = [
            *self.faults,
            *injector.halts,
            FaultRecord(FaultKind.HALT, "final", final_halt_ms, run_end_ms, True, "final"),
        ]

        results = [
            inv.check_no_duplicates(w.account, order_log),
            inv.check_inventory_cap(w.account, fills, CAP_CONTRACTS * 100),
            inv.check_nothing_while_halted(
                order_log, inv.halt_windows(halt_faults, w.flags.halts, HALT_GRACE_MS)
            ),
            inv.check_no_bad_book_quotes(
                order_log,
                inv.bad_book_windows(
                    self.faults,
                    w.flags.stale,
                    run_end_ms=run_end_ms,
                    stale_grace_ms=STALE_GRACE_MS,
                    lifecycle_grace_ms=LIFECYCLE_GRACE_MS,
                ),
                w.account,
                inv.executor_attempts(executor_log),
                stale_episodes=sum(len(e) for e in w.flags.stale.values()),
                stale_grace_ms=STALE_GRACE_MS,
            ),
            inv.check_positions_match(ours, theirs),
            inv.check_fills_once(exchange_ids, logged),
            inv.check_cancel_all(
                [*self.faults, *injector.halts],
                w.account,
                bound_ms=CANCEL_BOUND_MS,
                final=cancel,
                final_halt_ms=final_halt_ms,
                resting_at_end=resting_at_end,
            ),
            inv.check_no_crash_loop(
                supervisord_log, self.kills, w.processes.down, max_down_ms=MAX_DOWN_MS
            ),
            *injector.results(
                self.faults,
                w.account.samples(0, run_end_ms),
                limit_watch.samples(),
                events,
                w.flags.halts,
                at_least=at_least,
                halt_bound_ms=DAILY_LOSS_HALT_BOUND_MS,
                knows_event_loss=self.knows_event_loss,
            ),
        ]
        stats = stack.sim_get("/stats")
        summary = {
            "orders_accepted": len(order_log),
            "fills": len(fills),
            "http_429": stats.get("http_429", 0),
            "http_429_injected": stats.get("http_429_injected", 0),
            "http_5xx_injected": stats.get("http_5xx_injected", 0),
            "stale_episodes": sum(len(e) for e in w.flags.stale.values()),
            "bot_halts_seen": len(w.flags.halts),
            "account_polls": w.account.polls,
            "money_conserved": stats.get("money_conserved"),
        }
        # the stack's logs are complete only once it has stopped
        self.watchers = None
        stack.stop()
        results.append(self._scan_logs())
        results.append(kept)
        return ChaosResult(
            self.o, planned, self.faults, results, time.monotonic() - started, summary
        )

    # ---- playing the schedule --------------------------------------------------------------

    def _play(self, planned: list[PlannedFault]) -> None:
        # every fault with a duration becomes a start and an end event
        events: list[tuple[float, int, PlannedFault, bool]] = []
        for i, fault in enumerate(planned):
            events.append((fault.at_s, i, fault, True))
            if fault.duration_s and fault.kind not in (FaultKind.BURST_429, FaultKind.STALL_BOOK):
                events.append((fault.at_s + fault.duration_s, i, fault, False))
        events.sort(key=lambda e: (e[0], e[1]))
        open_: dict[int, FaultRecord] = {}
        t0 = time.monotonic()
        for at_s, i, fault, is_start in events:
            delay = at_s - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            try:
                if is_start:
                    record = self._start(fault)
                    self.faults.append(record)
                    if fault.duration_s and fault.kind not in (
                        FaultKind.BURST_429,
                        FaultKind.STALL_BOOK,
                    ):
                        open_[i] = record
                    self.o.log(f"  t={at_s:6.1f}s  {fault.kind.value} {fault.target}".rstrip())
                elif i in open_:
                    self._end(fault, open_.pop(i))
            except Exception as exc:  # an injection failing is reported, not fatal
                self.faults.append(
                    FaultRecord(
                        fault.kind, fault.target, now_ms(), now_ms(), False, repr(exc)[:200]
                    )
                )
                self.o.log(f"  t={at_s:6.1f}s  {fault.kind.value} FAILED: {exc!r}")

    def _start(self, fault: PlannedFault) -> FaultRecord:
        if fault.kind in NEW_KINDS:
            assert self.injector is not None
            return self.injector.start(fault)
        stack, kind, start = self.stack, fault.kind, now_ms()
        end = start + int(fault.duration_s * 1000)
        detail = ""
        if kind is FaultKind.KILL9:
            assert self.watchers is not None
            pid = self.watchers.processes.pid(fault.target)
            if pid <= 0:
                return FaultRecord(kind, fault.target, start, start, False, "not running")
            os.kill(pid, signal.SIGKILL)
            self.kills[fault.target] += 1
            detail = f"pid {pid}"
        elif kind is FaultKind.REDIS_RESTART and stack.cluster is not None:
            detail = self._kill_master()
            end = now_ms()
        elif kind is FaultKind.REDIS_RESTART:
            port = stack.redis_port
            stack.stop_redis(kill=True)
            time.sleep(1.0)
            stack.start_redis(port=port)
            end = now_ms()
        elif kind is FaultKind.BURST_429:
            stack.sim_post("/faults", {"burst_429_s": fault.duration_s})
        elif kind is FaultKind.ERROR_5XX:
            stack.sim_post("/faults", {"error_5xx_rate": 0.2})
            detail = "20% of requests"
        elif kind is FaultKind.LATENCY:
            stack.sim_post("/faults", {"latency_ms": 400})
            detail = "+400 ms"
        elif kind is FaultKind.DROP_WS:
            detail = f"{stack.sim_post('/faults', {'drop_ws': True}).get('dropped', 0)} sockets"
        elif kind is FaultKind.SKIP_SEQ:
            stack.sim_post("/faults", {"skip_seq": 3})
            detail = "3 book messages"
        elif kind is FaultKind.STALL_BOOK:
            stack.sim_post("/faults", {"stall_book_feed_s": fault.duration_s})
        elif kind is FaultKind.DYNAMO_OUTAGE:
            stack.pause_moto()
        elif kind is FaultKind.MARKET_PAUSE:
            stack.sim_post(f"/markets/{fault.target}/pause")
            start = self._sim_now()
        elif kind is FaultKind.MARKET_CLOSE:
            stack.sim_post(f"/markets/{fault.target}/close")
            start = end = self._sim_now()
        elif kind is FaultKind.HALT:
            use_cli = self.halts_issued % 2 == 1
            start = self._halt("chaos", use_cli=use_cli)
            detail = "dora halt" if use_cli else "PUBLISH dora:control halt"
            if self.o.sabotage:
                self._sabotage()
        return FaultRecord(kind, fault.target, start, end, True, detail)

    def _end(self, fault: PlannedFault, record: FaultRecord) -> None:
        if fault.kind in NEW_KINDS:
            assert self.injector is not None
            self.injector.end(fault, record)
            return
        stack, kind = self.stack, fault.kind
        if kind is FaultKind.ERROR_5XX:
            stack.sim_post("/faults", {"error_5xx_rate": 0})
        elif kind is FaultKind.LATENCY:
            stack.sim_post("/faults", {"latency_ms": 0})
        elif kind is FaultKind.DYNAMO_OUTAGE:
            stack.resume_moto()
        elif kind is FaultKind.MARKET_PAUSE:
            record.end_ms = self._sim_now()  # just before the resume: the window's end
            stack.sim_post(f"/markets/{fault.target}/resume")
            return
        elif kind is FaultKind.HALT:
            record.end_ms = self._sim_now()
            code, out = self._cli("resume", "--reason", "chaos")
            if code != 0:
                record.ok, record.detail = False, f"resume failed: {out[:200]}"
            return
        record.end_ms = now_ms()

    def _clear_all(self) -> None:
        if self.injector is not None:
            self.injector.clear()
        with contextlib.suppress(Exception):
            self.stack.sim_post("/faults", {"clear": True})
        with contextlib.suppress(Exception):
            self.stack.resume_moto()

    # ---- helpers ---------------------------------------------------------------------------

    def _events(self) -> list[EventInfo]:
        """The simulator's events of the run's markets, and whether each is mutually exclusive."""
        import httpx

        markets = httpx.get(f"{self.stack.sim_url}/markets", params={"limit": 1000}, timeout=10)
        members: dict[str, list[str]] = {}
        for m in markets.json()["markets"]:
            if m["ticker"] in self.stack.tickers:
                members.setdefault(m["event_ticker"], []).append(m["ticker"])
        events = []
        for event_ticker, tickers in sorted(members.items()):
            answer = httpx.get(f"{self.stack.sim_url}/events/{event_ticker}", timeout=10).json()
            exclusive = bool(answer["event"].get("mutually_exclusive"))
            events.append(EventInfo(event_ticker, exclusive, tuple(sorted(tickers))))
        return events

    def _kill_master(self) -> str:
        """SIGKILL the master holding shard 0's keys (not the node the processes bootstrap
        from), wait for its replica's promotion, then start the node again: it rejoins as a
        replica of the promoted one."""
        from redis.crc import key_slot

        cluster = self.stack.cluster
        slot = key_slot(self.stack.keys(0).stream("md").encode())
        killed_ms = now_ms()
        dead = cluster.kill_master(slot)
        promoted = cluster.wait_promoted(slot, dead)
        took_ms = now_ms() - killed_ms
        cluster.start_node(dead.port)
        return f"master :{dead.port} killed; replica :{promoted.port} promoted in {took_ms} ms"

    def _sim_now(self) -> int:
        return int(self.stack.sim_get("/stats")["now_ms"])

    def _halt(self, reason: str, *, use_cli: bool) -> int:
        """Halt trading; returns the sim clock right after the halt was issued."""
        self.halts_issued += 1
        if use_cli:
            self._cli("halt", "--reason", reason)
        else:
            r = redis.Redis.from_url(self.stack.redis_url)
            try:
                r.publish("dora:control", "halt")  # the operator's literal command (DESIGN.md §3)
            finally:
                r.close()
        return self._sim_now()

    def _cli(self, *args: str) -> tuple[int, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=self.stack.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def _sabotage(self) -> None:
        """Break "no order accepted while halted" on purpose (tests): an order straight at the
        exchange with the bot's own key, after the grace, then cancelled (so that nothing else
        breaks and the run names just this invariant)."""
        import asyncio

        from common.connect import kalshi_client
        from common.domain import Side
        from common.kalshi.wire.orders import OrderRequest
        from common.settings import load_settings

        time.sleep(HALT_GRACE_MS / 1000 + 0.5)
        ticker = self.stack.tickers[0]

        async def place() -> str:
            settings = load_settings(self.stack.env(), read_file=False)
            client = await kalshi_client(settings)
            try:
                coid = f"chaos-sabotage-{now_ms()}"
                order = await client.place_order(OrderRequest(ticker, Side.BID, 100, 100, coid))
                if order.order_id:
                    await client.cancel_order(order.order_id, ticker)
                return coid
            finally:
                await client.aclose()

        coid = asyncio.run(place())
        self.o.log(f"  sabotage: order {coid} placed on {ticker} while halted")

    def _positions_settled(self, timeout_s: float = 20.0) -> tuple[dict[str, int], dict[str, int]]:
        """The exchange's positions and Redis', once equal or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.watchers is not None
            account = self.watchers.account.account()
            theirs = {
                t: parse_count(p["position_fp"], signed=True)
                for t, p in account["positions"].items()
            }
            ours = self._redis_positions()
            if {k: v for k, v in ours.items() if v} == {k: v for k, v in theirs.items() if v}:
                return theirs, ours
            if time.monotonic() > deadline:
                return theirs, ours
            time.sleep(1)

    def _redis_positions(self) -> dict[str, int]:
        from common.redis_codec import decode_position

        keys = self.stack.keys()
        r = self.stack.sync_redis()
        try:
            return {
                keys.ticker_of(k, "pos"): decode_position("x", r.hgetall(k)).position
                for k in r.scan_iter(keys.pattern("pos"))
            }
        finally:
            r.close()

    def _exchange_fills(self) -> list[inv.ExchangeFill]:
        import asyncio

        from common.connect import kalshi_client
        from common.settings import load_settings

        async def get() -> list[inv.ExchangeFill]:
            settings = load_settings(self.stack.env(), read_file=False)
            client = await kalshi_client(settings)
            try:
                fills = await client.get_fills()
            finally:
                await client.aclose()
            unique = {f.fill_id: f for f in fills}
            return [
                inv.ExchangeFill(f.fill_id, f.ticker, f.signed_count, f.ts_ms, f.post_position)
                for f in unique.values()
            ]

        return asyncio.run(get())

    def _trade_log_fill_ids(self, expect: set[str], timeout_s: float = 30.0) -> list[str]:
        """The trade log's fill ids once the persister has drained (or after ``timeout_s``)."""
        import boto3

        dynamo = boto3.client(
            "dynamodb",
            endpoint_url=self.stack.dynamodb_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        deadline = time.monotonic() + timeout_s
        while True:
            ids = [
                item["fill_id"]["S"]
                for page in dynamo.get_paginator("scan").paginate(TableName="dora_trade_log")
                for item in page["Items"]
                if "fill_id" in item
            ]
            if set(ids) >= expect or time.monotonic() > deadline:
                return ids
            time.sleep(1)

    def _scan_logs(self) -> InvariantResult:
        files = [
            path
            for conf, _ in self.stack.hosts()
            for path in sorted((conf.parent / "var" / "log").glob("*"))
        ] + sorted(self.stack.base.glob("*.out"))
        markers = inv.secret_markers(self.stack.key_path.read_text(), [self.stack.web_token])
        return inv.scan_for_secrets(files, markers)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _named(supervisord_log: str, suffix: str) -> str:
    """A shard host's supervisord.log with its processes named as the driver names them
    (``executor@0``)."""
    if not suffix:
        return supervisord_log
    return re.sub(r"(exited: |gave up: )(\S+) ", rf"\g<1>\g<2>{suffix} ", supervisord_log)


def run_chaos(options: ChaosOptions) -> ChaosResult:
    return ChaosRun(options).run()
