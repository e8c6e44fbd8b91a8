"""``make bench``: issue 8's measurements in one run on this machine.

1. tick-to-order latency through the real multi-process stack against the simulator (WS frame
   received by marketdata -> HTTP request sent by the executor) at 100 markets, per stage, with
   the floor of three Redis stream hops between processes measured during the same seconds on
   the same running stack;
2. throughput: the highest book-update rate across 500 markets the pipeline keeps up with (the
   strategy's and executor's stream lag stays under 100 ms), with CPU and RSS per process; the
   updates are churn generated inside the simulator (``POST /_sim/churn``: half of its orders
   join the best bid or ask, a top-level change the strategy must answer, half rest deep), so
   the load generator's own HTTP cost does not set the ceiling;
3. API efficiency: write tokens per 1,000 book updates against a naive cancel/replace executor
   (from the backtester, same scenario, same flow);
4. recovery: time from kill -9 of each process to quoting again;
5. strategy quality: the backtest table over every scenario with both baselines.

Writes ``bench/results.json`` and the tables in ``docs/performance.md``. Each part can be run
alone: ``python -m bench.run latency recovery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.report import machine, write_doc
from cli.devstack import SERVICES, LocalStack, StackConfig
from common.keys import Keys
from common.runtime import run_loop
from common.streams import PERSISTED_STREAMS, PERSISTER_GROUP
from common.trace import STAGES, stages

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.json"
LAG_LIMIT_MS = 100
WARMUP_S = 20
KEYS = Keys()  # the stacks run with the default prefix
PROBES_PER_S = 10
FLOOR_PER_S = 50  # messages a second through the floor's relays, beside the probes
THROUGHPUT_WARMUP_S = 30
# Share of the churn's orders that join the best bid or ask (the rest rest deep, 1-5 / 95-99
# cents): deep-only churn is absorbed by marketdata and never wakes the strategy.
THROUGHPUT_TOUCH_PCT = 50
# DynamoDB is another machine in production. Its local stand-in (moto, pure Python) takes 50-90 %
# of a core behind the persister under churn, so the latency and throughput stacks run it at the
# lowest priority (its CPU is still reported). The throughput is also measured a second time
# with the DynamoDB writes held back during each step (see bench_throughput).
MOTO_NICE = 19
# The exchange is another machine in production as well. In the latency run the simulator (which
# stands for it) runs at a lower priority, so its bursts (a hundred markets' flow) do not take the
# cores the pipeline and the floor are measured on. Not in the throughput run: there it makes the
# churn being measured, and a starved simulator would only measure itself.
SIM_NICE_LATENCY = 10
THROUGHPUT_EVENT_LIMIT = "100000"  # dollars: above the $5,000 account cap, so never the binding one
CATCH_UP_S = 90  # after a step with DynamoDB paused: the persister's backlog written
CLUSTER_SHARDS = 2  # the cluster variant: two strategy/executor shards on a 3-master cluster


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def wait_until(
    predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05
) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - start
        time.sleep(interval_s)
    return None


def two_sided(stack: LocalStack) -> int:
    account = stack.sim_get(f"/accounts/{stack.config.key_id}")
    sides: dict[str, set[str]] = {}
    for order in account["resting_orders"]:
        sides.setdefault(order["ticker"], set()).add(order["book_side"])
    return sum(1 for s in sides.values() if s == {"bid", "ask"})


# ---- CPU and memory per process -------------------------------------------------------------


def process_pids(stack: LocalStack) -> dict[str, int]:
    pids = {}
    for conf, suffix in stack.hosts():  # with shard hosts: strategy@0, executor@1, ...
        for line in stack.supervisorctl("status", conf=conf).stdout.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "RUNNING":
                pids[parts[0] + suffix] = int(parts[3].rstrip(","))
    for name in stack.procs:  # the cluster's nodes are redis-<port>
        if name in ("sim", "moto") or name.startswith("redis"):
            pids[name] = stack.procs[name].pid
    return pids


def cpu_ticks(pid: int) -> int:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return 0


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Usage:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {n: cpu_ticks(p) for n, p in pids.items()}
        self.t0 = time.monotonic()

    def read(self) -> dict[str, dict[str, float]]:
        hz = os.sysconf("SC_CLK_TCK")
        elapsed = time.monotonic() - self.t0
        return {
            n: {
                "cpu_pct": round(100 * (cpu_ticks(p) - self.start[n]) / hz / elapsed, 1),
                "rss_mb": rss_mb(p),
            }
            for n, p in self.pids.items()
        }


# ---- 1. latency --------------------------------------------------------------------------------


def floor(url: str, seconds: float, rate_per_s: int, uvloop: bool) -> list[float]:
    """Three chained relay processes; returns end-to-end microseconds per message. Plain
    processes, not asyncio's: this runs in a thread beside the probes. Each relay leads a
    session of its own, as each of dora's processes does (``common.sched``): with autogroup a
    session is a scheduling group, and the floor and dora are scheduled alike."""
    hops = [f"bench:floor:{os.getpid()}:{i}" for i in range(4)]
    relays = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.relay", url, hops[i], hops[i + 1]],
            cwd=REPO,
            start_new_session=True,
        )
        for i in range(3)
    ]
    try:
        return run_loop(_floor(url, hops, seconds, rate_per_s), uvloop=uvloop)
    finally:
        for proc in relays:
            proc.terminate()
            proc.wait(10)


async def _floor(url: str, hops: list[str], seconds: float, rate_per_s: int) -> list[float]:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    samples: list[float] = []
    try:
        await asyncio.sleep(1.5)  # the relays are listening
        last = "$"

        async def reader() -> None:
            nonlocal last
            while True:
                response = await r.xread({hops[3]: last}, count=100, block=500)
                now = time.time_ns() // 1000
                for _, entries in response or []:
                    for entry_id, fields in entries:
                        last = entry_id
                        samples.append(now - int(fields[b"t"]))

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.2)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await r.xadd(
                hops[0], {"t": str(time.time_ns() // 1000)}, maxlen=10_000, approximate=True
            )
            await asyncio.sleep(1 / rate_per_s)
        await asyncio.sleep(0.5)
        task.cancel()
    finally:
        await r.delete(*hops)
        await r.aclose()
    return samples


async def _probe(
    stack: LocalStack, tickers: list[str], per_s: float, seconds: float
) -> dict[str, int]:
    """Ticks for dora to answer: another participant (its own key) improves a random market's
    best bid or ask by one tick and takes it away again a second later, ``per_s`` times a
    second. Returns what became of the attempts (placed, no room in the spread, errors)."""
    import redis.asyncio as aioredis

    from common.domain import Side, make_client_order_id
    from common.errors import SchemaError
    from common.kalshi import KalshiClient, signer_from_pem
    from common.kalshi.wire.orders import OrderRequest
    from common.keys import Keys
    from common.redis_codec import decode_book, decode_market
    from sim.auth import generate_key_pair

    private, public = generate_key_pair("ed25519")
    stack.sim_post("/keys", {"key_id": "probe", "public_key_pem": public.decode()})
    client = KalshiClient.create(stack.sim_url, signer_from_pem("probe", private))
    r = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
    keys, rng = Keys(), random.Random(7)
    resting: list[tuple[float, Any]] = []
    counts: Counter[str] = Counter()
    seq = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            await asyncio.sleep(1 / per_s)
            while resting and resting[0][0] < time.monotonic() - 1.0:
                _, order = resting.pop(0)
                with contextlib.suppress(Exception):
                    await client.cancel_order(order.order_id, order.ticker)
            ticker = rng.choice(tickers)
            try:
                book = decode_book(ticker, await r.hgetall(keys.book(ticker))).book
                grid = decode_market(ticker, await r.hgetall(keys.market(ticker))).grid
            except SchemaError:
                continue
            bid, ask = book.best_bid, book.best_ask
            if bid is None or ask is None:
                continue
            side = Side.BID if rng.random() < 0.5 else Side.ASK
            price = bid + grid.tick_at(bid) if side is Side.BID else ask - grid.tick_at(ask - 1)
            if not bid < price < ask:
                counts["no_room"] += 1  # no room inside the spread
                continue
            seq += 1
            request = OrderRequest(
                ticker, side, price, 100, make_client_order_id("probe", ticker, side, seq)
            )
            try:
                order = await client.place_order(request)
            except Exception as exc:
                counts[type(exc).__name__] += 1
                continue
            resting.append((time.monotonic(), order))
            counts["placed"] += 1
    finally:
        await client.aclose()
        await r.aclose()
    return dict(counts)


def bench_latency(base: Path, markets: int = 100, seconds: float = 90) -> dict[str, Any]:
    # DORA_UVLOOP=false in the bench's environment: dora's processes, the floor's relays and
    # this process's probe and floor loops all on asyncio's own event loop (to measure uvloop)
    uvloop = os.environ.get("DORA_UVLOOP", "true") != "false"
    # DORA_BENCH_SIGNING=rsa: the executor signs with an RSA-2048 key (Kalshi's default) instead
    # of Ed25519 (six times cheaper to sign, and what the bench reports by default)
    signing = os.environ.get("DORA_BENCH_SIGNING", "ed25519")
    if signing not in ("rsa", "ed25519"):
        raise SystemExit(f"DORA_BENCH_SIGNING must be rsa or ed25519, was {signing!r}")
    stack = LocalStack(
        StackConfig(
            base_dir=base / "latency",
            markets=markets,
            seed=11,
            key_type=signing,
            env={"DORA_TRACE_LATENCY": "true", "DORA_UVLOOP": str(uvloop).lower()},
            moto_nice=MOTO_NICE,
            sim_nice=SIM_NICE_LATENCY,
        )
    )
    with stack:
        wait_until(lambda: two_sided(stack) >= markets // 2, 60, 0.5)
        # Warm-up: the opening burst (two orders per market at once) is paced by the shared rate
        # budget by design; tick-to-order is about steady-state reaction to book changes.
        time.sleep(WARMUP_S)
        r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        r.delete(KEYS.trace_samples)
        usage = Usage(process_pids(stack))
        # The floor during the same seconds, on the same Redis, at a rate light enough not to
        # load the box (the box is shared: measured one after the other, a change of its load
        # between the two moved the ratio more than any change of dora's did).
        hops: list[float] = []
        floor_thread = threading.Thread(
            target=lambda: hops.extend(floor(stack.redis_url, seconds, FLOOR_PER_S, uvloop))
        )
        floor_thread.start()
        probes = run_loop(_probe(stack, stack.tickers, PROBES_PER_S, seconds), uvloop=uvloop)
        floor_thread.join(seconds + 30)
        raw = r.lrange(KEYS.trace_samples, 0, -1)
        use = usage.read()
    traced = [x for x in map(stages, raw) if x is not None]
    samples = [total / 1000 for total, _ in traced]
    floor_ms = [x / 1000 for x in hops]
    per_stage = {
        name: {
            "p50_ms": round(pct([per[name] / 1000 for _, per in traced], 0.5), 3),
            "p99_ms": round(pct([per[name] / 1000 for _, per in traced], 0.99), 3),
        }
        for name in STAGES
    }
    return {
        "markets": markets,
        "seconds": seconds,
        "warmup_s": WARMUP_S,
        "signing": signing,
        "uvloop": uvloop,
        "probes": probes,
        "samples": len(samples),
        "p50_ms": round(pct(samples, 0.5), 3),
        "p99_ms": round(pct(samples, 0.99), 3),
        "max_ms": round(max(samples, default=float("nan")), 3),
        "stages": per_stage,
        "floor_samples": len(floor_ms),
        "floor_per_s": FLOOR_PER_S,
        "floor": "measured during the same seconds as dora's samples",
        "sim_nice": SIM_NICE_LATENCY,
        "floor_p50_ms": round(pct(floor_ms, 0.5), 3),
        "floor_p99_ms": round(pct(floor_ms, 0.99), 3),
        "usage": use,
    }


# ---- 2. throughput -----------------------------------------------------------------------------


def bench_throughput(
    base: Path,
    markets: int = 500,
    rates: tuple[int, ...] = (500, 1000, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 8000),
    step_s: float = 15,
    dynamo_paused: bool = False,
    cluster: bool = False,
) -> dict[str, Any]:
    """Raise the book churn step by step until the pipeline falls behind. With
    ``dynamo_paused`` the moto server is stopped (SIGSTOP) for each step: the persister keeps
    the durable writes in Redis and writes them once it is resumed, before the next step, so
    neither moto nor the persister's boto3 work loads the 2 cores during the measurement.
    With ``cluster`` the stack runs on a local Redis Cluster (three masters, one replica each)
    with two strategy/executor shards; a lag is the worst of the two shards'."""
    name = "throughput_dynamo_paused" if dynamo_paused else "throughput"
    stack = LocalStack(
        StackConfig(
            base_dir=base / (name + ("_cluster" if cluster else "")),
            markets=markets,
            seed=12,
            key_type="ed25519",
            sim_args=["--rate-tier", "unlimited"],
            moto_nice=MOTO_NICE,
            cluster=cluster,
            shards=CLUSTER_SHARDS if cluster else 1,
            # The ladder measures the pipeline, as the runs before event limits existed did:
            # ~170 of the 500 markets are one event, whose default $1,000 limit the quotes reach
            # in the first step (and before 2026-12-06 the exchange-side check saw it passed by $2.87:
            # docs/performance.md, "What limits these numbers").
            global_overrides={"max_event_loss": THROUGHPUT_EVENT_LIMIT},
        )
    )
    keys = stack.keys()
    steps = []
    with stack:
        wait_until(lambda: two_sided(stack) >= markets // 4, 90, 1.0)
        time.sleep(
            THROUGHPUT_WARMUP_S
        )  # the opening burst (two quotes per market) is paced by the rate budget
        r = stack.sync_redis()
        for rate in rates:
            usage = Usage(process_pids(stack))
            lags: dict[str, list[int]] = {
                "feed_lag_ms": [],
                "md_lag_ms": [],
                "targets_lag_ms": [],
                "ws_backlog": [],
                "sim_delta_age_ms": [],
            }
            stop = threading.Event()

            def sample(lags: dict[str, list[int]] = lags, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    for service, field in (
                        ("marketdata", "feed_lag_ms"),
                        ("strategy", "md_lag_ms"),
                        ("executor", "targets_lag_ms"),
                    ):
                        with contextlib.suppress(Exception):
                            lags[field].append(  # the worst shard's
                                max(
                                    int(json.loads(r.get(beat) or "{}").get(field, 0))
                                    for beat in keys.hb_all(service)
                                )
                            )
                    with contextlib.suppress(Exception):
                        stats = stack.sim_get("/stats")
                        lags["ws_backlog"].append(int(stats["ws_backlog"]))
                        lags["sim_delta_age_ms"].append(int(stats["ws_delta_age_ms"]))
                    time.sleep(0.5)

            watcher = threading.Thread(target=sample, daemon=True)
            before = stack.sim_get("/stats")
            t0 = time.monotonic()
            watcher.start()
            if dynamo_paused:
                stack.pause_moto()
            stack.sim_post("/churn", {"deltas_per_s": rate, "touch_pct": THROUGHPUT_TOUCH_PCT})
            time.sleep(step_s)
            stack.sim_post("/churn", {"deltas_per_s": 0})
            elapsed = time.monotonic() - t0
            stop.set()
            watcher.join(2)
            after = stack.sim_get("/stats")
            usage_in_step = usage.read()
            # a halted bot reads targets but sends nothing: such a step measures too little
            halted = r.hget(keys.risk, "halted") == "1"
            if dynamo_paused:
                stack.resume_moto()
                wait_until(lambda: persister_backlog(r, keys) == 0, CATCH_UP_S, 1.0)
            worst = {k: max(v[2:], default=0) for k, v in lags.items()}  # skip the first second
            step = {
                "target_deltas_per_s": rate,
                "load_deltas_per_s": round(
                    (after["churn_deltas"] - before["churn_deltas"]) / elapsed
                ),
                # every book delta dora received: the churn plus the flow agents' own
                "book_updates_per_s": round(
                    (after.get("ws_book_deltas_sent", 0) - before.get("ws_book_deltas_sent", 0))
                    / elapsed
                ),
                "ws_messages_per_s": round(
                    (after["ws_messages_sent"] - before["ws_messages_sent"]) / elapsed
                ),
                **worst,
                # Kept up: no stream entry waited 100 ms, and marketdata never fell 100 ms of
                # messages behind its socket. (Feed lag is reported, not judged: it includes the
                # simulator's own 50 ms tick granularity and its agent steps.)
                "halted": halted,
                "kept_up": not halted
                and worst["md_lag_ms"] < LAG_LIMIT_MS
                and worst["targets_lag_ms"] < LAG_LIMIT_MS
                and worst["ws_backlog"] < rate * LAG_LIMIT_MS / 1000,
                "usage": usage_in_step,
            }
            steps.append(step)
            print(
                f"throughput {rate}/s -> {step['load_deltas_per_s']}/s churn, "
                f"{step['book_updates_per_s']}/s book updates, lags {worst}"
                + (" HALTED" if halted else ""),
                file=sys.stderr,
            )
            if not step["kept_up"]:
                break
    kept = [s for s in steps if s["kept_up"]]
    return {
        "markets": markets,
        "touch_pct": THROUGHPUT_TOUCH_PCT,
        "dynamo_paused": dynamo_paused,
        "cluster": cluster,
        "shards": CLUSTER_SHARDS if cluster else 1,
        # every step kept up: the limit is above the ladder, not measured
        "top_of_ladder": bool(steps) and all(s["kept_up"] for s in steps),
        "lag_limit_ms": LAG_LIMIT_MS,
        "steps": steps,
        "max_kept_up_deltas_per_s": max((s["load_deltas_per_s"] for s in kept), default=0),
        "max_kept_up_book_updates_per_s": max(
            (s.get("book_updates_per_s", 0) for s in kept), default=0
        ),
    }


def persister_backlog(r: redis.Redis, keys: Keys = KEYS) -> int:
    """Entries of the persisted streams not yet delivered to, or not yet acknowledged by, the
    persister (every shard's stream in cluster mode)."""
    total = 0
    for name in PERSISTED_STREAMS:
        for key in keys.streams(name):
            with contextlib.suppress(redis.ResponseError):  # no such stream (yet)
                for group in r.xinfo_groups(key):
                    if group["name"] == PERSISTER_GROUP:
                        total += int(group.get("lag") or 0) + int(group["pending"])
    return total


# ---- 4. recovery -------------------------------------------------------------------------------


def bench_recovery(base: Path, markets: int = 20) -> dict[str, Any]:
    stack = LocalStack(
        StackConfig(base_dir=base / "recovery", markets=markets, seed=13, key_type="ed25519")
    )
    out: dict[str, Any] = {}
    with stack:
        r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        wait_until(lambda: two_sided(stack) >= markets // 2, 60, 0.5)
        for service in SERVICES:
            time.sleep(3)
            before = max(1, two_sided(stack))
            pid = int(stack.supervisorctl("pid", service).stdout.strip())
            os.kill(pid, signal.SIGKILL)

            def back(service: str = service, pid: int = pid, before: int = before) -> bool:
                beat = json.loads(r.get(KEYS.hb(service)) or "{}")
                return beat.get("pid") not in (None, pid) and two_sided(stack) >= int(0.9 * before)

            took = wait_until(back, 30, 0.05)
            out[service] = None if took is None else round(took, 2)
            print(f"recovery {service}: {out[service]} s", file=sys.stderr)
    return {
        "markets": markets,
        "seconds": out,
        "definition": "kill -9 -> the process heartbeats again with a new pid and >= 90% of the markets "
        "quoted two-sided before are quoted again",
    }


# ---- 3 and 5: from the backtester --------------------------------------------------------------


def bench_api() -> dict[str, Any]:
    from bench import bench_api

    return bench_api.main([])


def bench_strategy() -> dict[str, Any]:
    from bench import bench_strategy as module

    module.main([])
    return saved_strategy()


def saved_strategy(kept: dict[str, Any] | None = None) -> dict[str, Any]:
    """The last ``python -m bench.bench_strategy`` run's results (``bench/results-strategy.json``),
    taken as they are: the strategy part without running its half hour of backtests again. That
    file is not in the repository: on a new checkout the strategy part ``bench/results.json``
    already holds (``kept``) stays as it is."""
    from bench import bench_strategy as module

    if not module.RESULTS.exists():
        if kept is None:
            raise SystemExit(
                f"bench: no saved strategy results ({module.RESULTS} is missing and "
                "bench/results.json has no strategy part): run 'python -m bench.bench_strategy'"
            )
        print(
            f"bench: {module.RESULTS} is missing: the strategy part kept as it was", file=sys.stderr
        )
        return kept
    data: dict[str, Any] = json.loads(module.RESULTS.read_text())
    data["markdown"] = module.markdown_of(data)
    return data


def main(argv: list[str]) -> int:
    parts = list(argv) or [
        "latency",
        "throughput",
        "throughput_dynamo_paused",
        "recovery",
        "api",
        "strategy",
    ]
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() and argv else {}
    if "machine" not in results:  # a partial run keeps the date of the run it adds to
        results["machine"] = machine()
    base = Path(tempfile.mkdtemp(prefix="dora-bench-"))
    runners = {
        "latency": lambda: bench_latency(base),
        "throughput": lambda: bench_throughput(base),
        "throughput_cluster": lambda: {
            **bench_throughput(base, cluster=True),
            # the one-Redis ceiling of the same run, beside it
            "single_max_kept_up_deltas_per_s": (results.get("throughput") or {}).get(
                "max_kept_up_deltas_per_s"
            ),
        },
        "throughput_dynamo_paused": lambda: bench_throughput(base, dynamo_paused=True),
        "recovery": lambda: bench_recovery(base),
        "api": bench_api,
        "strategy": bench_strategy,
        "strategy_saved": lambda: saved_strategy(results.get("strategy")),
    }
    if "throughput" in parts and "throughput_cluster" not in parts:
        # the cluster variant is measured in the same run, right after, on the same machine
        parts.insert(parts.index("throughput") + 1, "throughput_cluster")
    for part in parts:
        if part not in runners:
            print(f"bench: unknown part {part!r}; known: {', '.join(runners)}", file=sys.stderr)
            return 2
        print(f"bench: {part}...", file=sys.stderr)
        name = "strategy" if part == "strategy_saved" else part
        results[name] = runners[part]()
        results[name].setdefault("measured_at", machine()["date"])
        RESULTS.write_text(json.dumps(results, indent=2, default=str))
    write_doc(results)
    print(
        json.dumps(
            {k: v for k, v in results.items() if k not in ("api", "strategy")},
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
