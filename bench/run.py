"""``make bench``: issue 8's measurements in one run on this machine.

1. tick-to-order latency through the real multi-process stack against the simulator (WS frame
   received by marketdata -> HTTP request sent by the executor) at 100 markets, with the floor of
   three Redis stream hops between processes measured at the same time;
2. throughput: the highest book-update rate across 500 markets the pipeline keeps up with (the
   strategy's and executor's stream lag stays under 100 ms), with CPU and RSS per process;
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
import platform
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis

from common.devstack import SERVICES, LocalStack, StackConfig

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.json"
PERF_DOC = REPO / "docs" / "performance.md"
LAG_LIMIT_MS = 100
WARMUP_S = 20
THROUGHPUT_WARMUP_S = 30


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
    for line in stack.supervisorctl("status").stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING":
            pids[parts[0]] = int(parts[3].rstrip(","))
    for name in ("sim", "redis"):
        if name in stack.procs:
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


async def _floor(url: str, seconds: float, rate_per_s: int = 200) -> list[float]:
    """Three chained relay processes; returns end-to-end microseconds per message."""
    tag = f"bench:floor:{os.getpid()}"
    hops = [f"{tag}:{i}" for i in range(4)]
    relays = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.relay", url, hops[i], hops[i + 1], cwd=REPO
        )
        for i in range(3)
    ]
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
        for proc in relays:
            proc.terminate()
            await proc.wait()
        await r.delete(*hops)
        await r.aclose()
    return samples


def bench_latency(base: Path, markets: int = 100, seconds: float = 60) -> dict[str, Any]:
    stack = LocalStack(
        StackConfig(
            base_dir=base / "latency",
            markets=markets,
            seed=11,
            key_type="ed25519",
            env={"DORA_TRACE_LATENCY": "true"},
        )
    )
    with stack:
        wait_until(lambda: two_sided(stack) >= markets // 2, 60, 0.5)
        # Warm-up: the opening burst (two orders per market at once) is paced by the shared rate
        # budget by design; tick-to-order is about steady-state reaction to book changes.
        time.sleep(WARMUP_S)
        r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        r.delete("dora:trace:tick_to_order_us")
        usage = Usage(process_pids(stack))
        floor = asyncio.run(_floor(stack.redis_url, seconds))
        samples = [int(x) / 1000 for x in r.lrange("dora:trace:tick_to_order_us", 0, -1)]
        use = usage.read()
    floor_ms = [x / 1000 for x in floor]
    return {
        "markets": markets,
        "seconds": seconds,
        "warmup_s": WARMUP_S,
        "signing": "ed25519",
        "samples": len(samples),
        "p50_ms": round(pct(samples, 0.5), 3),
        "p99_ms": round(pct(samples, 0.99), 3),
        "max_ms": round(max(samples, default=float("nan")), 3),
        "floor_samples": len(floor_ms),
        "floor_p50_ms": round(pct(floor_ms, 0.5), 3),
        "floor_p99_ms": round(pct(floor_ms, 0.99), 3),
        "usage": use,
    }


# ---- 2. throughput -----------------------------------------------------------------------------


async def _load(stack: LocalStack, tickers: list[str], deltas_per_s: int, seconds: float) -> int:
    """Deep resting orders placed and cancelled in batches: two book deltas per order, away from
    the touch so the load is book maintenance, not trading."""
    from common.domain import Side
    from common.kalshi import KalshiClient, signer_from_pem
    from common.kalshi.wire import OrderRequest, make_client_order_id
    from sim.auth import generate_key_pair

    private, public = generate_key_pair("ed25519")
    async with httpx.AsyncClient() as http:
        await http.post(
            f"{stack.control_url}/keys", json={"key_id": "load", "public_key_pem": public.decode()}
        )
    client = KalshiClient.create(stack.sim_url, signer_from_pem("load", private))
    rng = random.Random(5)
    batch = 20
    interval = 2 * batch / deltas_per_s  # a create and a cancel of `batch` orders per interval
    sent = 0
    seq = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            started = time.monotonic()
            requests = []
            for _ in range(batch):
                seq += 1
                ticker = rng.choice(tickers)
                side = rng.choice((Side.BID, Side.ASK))
                price = (
                    rng.randrange(100, 600, 100)
                    if side is Side.BID
                    else rng.randrange(9500, 9900, 100)
                )
                requests.append(
                    OrderRequest(
                        ticker, side, price, 100, make_client_order_id("load", ticker, side, seq)
                    )
                )
            placed = [
                o for o in await client.place_orders(requests) if not isinstance(o, Exception)
            ]
            await client.cancel_orders([o for o in placed if o.order_id])
            sent += 2 * len(placed)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        await client.aclose()
    return sent


def bench_throughput(
    base: Path,
    markets: int = 500,
    rates: tuple[int, ...] = (250, 500, 1000, 2000, 3000, 4000, 6000),
    step_s: float = 15,
) -> dict[str, Any]:
    stack = LocalStack(
        StackConfig(
            base_dir=base / "throughput",
            markets=markets,
            seed=12,
            key_type="ed25519",
            sim_args=["--rate-tier", "unlimited"],
        )
    )
    steps = []
    with stack:
        wait_until(lambda: two_sided(stack) >= markets // 4, 90, 1.0)
        time.sleep(
            THROUGHPUT_WARMUP_S
        )  # the opening burst (two quotes per market) is paced by the rate budget
        r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        for rate in rates:
            usage = Usage(process_pids(stack))
            lags: dict[str, list[int]] = {"md_lag_ms": [], "targets_lag_ms": []}
            stop = threading.Event()

            def sample(lags: dict[str, list[int]] = lags, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    for service, field in (
                        ("strategy", "md_lag_ms"),
                        ("executor", "targets_lag_ms"),
                    ):
                        with contextlib.suppress(Exception):
                            lags[field].append(
                                int(json.loads(r.get(f"dora:hb:{service}") or "{}").get(field, 0))
                            )
                    time.sleep(0.5)

            watcher = threading.Thread(target=sample, daemon=True)
            before = stack.sim_get("/stats")
            t0 = time.monotonic()
            watcher.start()
            sent = asyncio.run(_load(stack, stack.tickers, rate, step_s))
            elapsed = time.monotonic() - t0
            stop.set()
            watcher.join(2)
            after = stack.sim_get("/stats")
            worst = {k: max(v[2:], default=0) for k, v in lags.items()}  # skip the first second
            step = {
                "target_deltas_per_s": rate,
                "load_deltas_per_s": round(sent / elapsed),
                "ws_messages_per_s": round(
                    (after["ws_messages_sent"] - before["ws_messages_sent"]) / elapsed
                ),
                **worst,
                "kept_up": all(v < LAG_LIMIT_MS for v in worst.values()),
                "usage": usage.read(),
            }
            steps.append(step)
            print(
                f"throughput {rate}/s -> {step['load_deltas_per_s']}/s, lags {worst}",
                file=sys.stderr,
            )
            if not step["kept_up"]:
                break
    kept = [s for s in steps if s["kept_up"]]
    return {
        "markets": markets,
        "lag_limit_ms": LAG_LIMIT_MS,
        "steps": steps,
        "max_kept_up_deltas_per_s": max((s["load_deltas_per_s"] for s in kept), default=0),
    }


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
                beat = json.loads(r.get(f"dora:hb:{service}") or "{}")
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

    markdown = module.main([])
    data: dict[str, Any] = json.loads(module.RESULTS.read_text())
    data["markdown"] = markdown
    return data


# ---- report ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def write_doc(results: dict[str, Any]) -> None:
    lines = [
        "# Performance",
        "",
        f"Measured by `make bench` on {results['machine']['date']} "
        f"({results['machine']['cpus']} cores, Python {results['machine']['python']}); "
        "every number below comes from that one run (`bench/results.json`).",
        "",
    ]
    lat = results.get("latency")
    if lat:
        lines += [
            "## Tick-to-order latency (100 markets, goal p50 <= 1 ms, p99 <= 5 ms)",
            "",
            "| | p50 ms | p99 ms | max ms | samples |",
            "|---|---|---|---|---|",
            f"| WS frame -> order request sent | {lat['p50_ms']} | {lat['p99_ms']} | {lat['max_ms']} | {lat['samples']} |",
            f"| floor: 3 Redis stream hops between processes | {lat['floor_p50_ms']} | {lat['floor_p99_ms']} | | {lat['floor_samples']} |",
            "",
        ]
    thr = results.get("throughput")
    if thr:
        lines += [
            f"## Throughput ({thr['markets']} markets, goal >= 3,000 book updates/s; kept up = stream lag < {thr['lag_limit_ms']} ms)",
            "",
            "| target deltas/s | achieved deltas/s | WS msgs/s | md lag ms | targets lag ms | kept up |",
            "|---|---|---|---|---|---|",
        ]
        for s in thr["steps"]:
            lines.append(
                f"| {s['target_deltas_per_s']} | {s['load_deltas_per_s']} | {s['ws_messages_per_s']} | "
                f"{s.get('md_lag_ms')} | {s.get('targets_lag_ms')} | {'yes' if s['kept_up'] else 'no'} |"
            )
        last = thr["steps"][-1]["usage"] if thr["steps"] else {}
        lines += [
            "",
            "CPU and RSS per process at the last step:",
            "",
            "| process | CPU % | RSS MB |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {u['cpu_pct']} | {u['rss_mb']} |" for n, u in sorted(last.items())]
        lines.append("")
    rec = results.get("recovery")
    if rec:
        lines += [
            "## Recovery (goal <= 3 s)",
            "",
            rec["definition"] + ".",
            "",
            "| process | seconds |",
            "|---|---|",
        ]
        lines += [f"| {n} | {s} |" for n, s in rec["seconds"].items()]
        lines.append("")
    api = results.get("api")
    if api:
        lines += [
            "## API efficiency (goal >= 50% fewer write tokens than a naive cancel/replace executor)",
            "",
            "Backtests, same quoting and same flow; a book update is a change of a side's top two levels.",
            "",
            "| scenario | dora tokens / 1k updates | naive tokens / 1k updates | fewer |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['scenario']} | {r['diff']['tokens_per_1000_updates']} | "
            f"{r['cancel_replace']['tokens_per_1000_updates']} | {r['reduction_pct']}% |"
            for r in api["rows"]
        ]
        lines.append("")
    strategy = results.get("strategy")
    if strategy and strategy.get("markdown"):
        lines += [
            "## Strategy quality (backtests, mean over seeds; goal: positive on calm and trending, "
            "better than both baselines everywhere)",
            "",
            strategy["markdown"],
            "",
        ]
    lines += [
        "## What limits these numbers",
        "",
        "- Everything shares 2 cores: the simulator and its flow agents, Redis, moto and the six",
        "  processes. Even the floor (three Redis hops between processes, nothing else) has a p99 of",
        "  several ms under this load; the 1 ms / 5 ms latency goals are below what this box allows.",
        "- The executor is the bottleneck, in latency and in throughput: one market's passes are",
        "  serialized behind its in-flight HTTP requests (two concurrent amends of one order would",
        "  conflict), every placement records the order in Redis before sending and draws on the",
        "  shared rate budget (a Redis round trip each), and httpx's per-request overhead is a third",
        "  of its CPU (py-spy). Tick-triggered order sends are also few (most book changes move the",
        "  targets by less than a tick), so the latency percentiles rest on tens of samples.",
        "- Profiling fixed so far: reconciliation no longer looks up orders whose create is in",
        "  flight, the strategy sweeps its markets a few per step, the executor re-reads positions",
        "  once a second, own orders are taken out of the book, Ed25519 signing (6x cheaper than RSA).",
        "- Strategy quality and API efficiency: docs/backtest.md explains why the naive rule is hard",
        "  to beat in this simulator and where dora loses (near expiry, maker-fee markets).",
        "",
    ]
    PERF_DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    parts = argv or ["latency", "throughput", "recovery", "api", "strategy"]
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() and argv else {}
    results["machine"] = machine()
    base = Path(tempfile.mkdtemp(prefix="dora-bench-"))
    runners = {
        "latency": lambda: bench_latency(base),
        "throughput": lambda: bench_throughput(base),
        "recovery": lambda: bench_recovery(base),
        "api": bench_api,
        "strategy": bench_strategy,
    }
    for part in parts:
        if part not in runners:
            print(f"bench: unknown part {part!r}; known: {', '.join(runners)}", file=sys.stderr)
            return 2
        print(f"bench: {part}...", file=sys.stderr)
        results[part] = runners[part]()
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
