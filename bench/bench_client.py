"""Median per-call overhead of dora's KalshiClient against pykalshi, on one simulator, in one run.

Starts the simulator as a subprocess (``dora sim``, unlimited rate tier, no background flow),
then times the same calls made three ways, interleaved call by call so drift hits all alike:

- ``raw``: a bare signed httpx request plus ``orjson.loads`` (the floor any client pays),
- ``dora``: ``common.kalshi.KalshiClient`` (typed parse to domain values, budget disabled),
- ``pykalshi``: ``pykalshi.AsyncKalshiClient`` 2.0.0 (its public methods).

Overhead = median(client) - median(raw) per operation. Prints JSON and writes
bench/results-client.json. Run: ``python -m bench.bench_client [--calls N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from common.domain import Side
from common.kalshi import KalshiClient, OrderRequest, make_client_order_id, signer_from_pem
from common.kalshi.signing import auth_headers

REPO = Path(__file__).resolve().parents[1]
KEY_ID = "bench-key"


def start_sim(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    from sim.auth import write_key_pair

    write_key_pair(workdir, KEY_ID)
    ready = workdir / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "sim",
            "--port",
            "0",
            "--markets",
            "2",
            "--api-keys",
            str(workdir),
            "--rate-tier",
            "unlimited",
            "--no-agents",
            "--ready-file",
            str(ready),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not ready.exists() or not ready.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the simulator did not start")
        time.sleep(0.05)
    time.sleep(0.05)
    return proc, json.loads(ready.read_text())


async def run(calls: int, workdir: Path) -> dict[str, Any]:
    proc, ready = start_sim(workdir)
    try:
        return await measure(calls, ready["rest_url"], workdir / f"{KEY_ID}.pem")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


async def measure(calls: int, rest_url: str, key_path: Path) -> dict[str, Any]:
    from pykalshi import AsyncKalshiClient

    signer = signer_from_pem(KEY_ID, await asyncio.to_thread(key_path.read_text))
    dora = KalshiClient.create(rest_url, signer)
    pk = AsyncKalshiClient(api_key_id=KEY_ID, private_key_path=str(key_path), api_base=rest_url)
    raw = httpx.AsyncClient()
    base_path = httpx.URL(rest_url).path

    async def raw_call(method: str, path: str, body: Any = None) -> Any:
        headers = auth_headers(signer, int(time.time() * 1000), method, base_path + path)
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = await raw.request(
            method,
            rest_url + path,
            headers=headers,
            content=None if body is None else orjson.dumps(body),
        )
        return orjson.loads(response.content) if response.content else None

    ticker = (await dora.get_market_infos())[0].ticker
    pk_market = await pk.get_market(ticker)
    for price in (3000, 3100, 6000):  # a small book to read
        await dora.place_order(
            OrderRequest(
                ticker,
                Side.BID if price < 5000 else Side.ASK,
                price,
                500,
                make_client_order_id("bench", ticker, "seed", price),
            )
        )
    seq = 0

    def next_cid() -> str:
        nonlocal seq
        seq += 1
        return make_client_order_id("bench", ticker, "bid", seq)

    async def raw_place_cancel() -> None:
        body = {
            "ticker": ticker,
            "side": "bid",
            "price": "0.2000",
            "count": "1.00",
            "time_in_force": "good_till_canceled",
            "self_trade_prevention_type": "taker_at_cross",
            "client_order_id": next_cid(),
            "post_only": True,
        }
        ack = await raw_call("POST", "/portfolio/events/orders", body)
        await raw_call("DELETE", f"/portfolio/events/orders/{ack['order_id']}")

    async def dora_place_cancel() -> None:
        order = await dora.place_order(OrderRequest(ticker, Side.BID, 2000, 100, next_cid()))
        await dora.cancel_order(order.order_id or "", ticker)

    async def pk_place_cancel() -> None:
        order = await pk.portfolio.place_order(
            ticker,
            book_side="bid",
            price_dollars="0.2000",
            count_fp="1.00",
            client_order_id=next_cid(),
            post_only=True,
        )
        await pk.portfolio.cancel_order(order.order_id)

    ops: dict[str, dict[str, Callable[[], Awaitable[Any]]]] = {
        "get_exchange_status": {
            "raw": lambda: raw_call("GET", "/exchange/status"),
            "dora": dora.get_exchange_status,
            "pykalshi": pk.exchange.get_status,
        },
        "get_order_book": {
            "raw": lambda: raw_call("GET", f"/markets/{ticker}/orderbook"),
            "dora": lambda: dora.get_order_book(ticker),
            "pykalshi": pk_market.get_orderbook,
        },
        "get_balance": {
            "raw": lambda: raw_call("GET", "/portfolio/balance"),
            "dora": dora.get_balance,
            "pykalshi": pk.portfolio.get_balance,
        },
        "place_and_cancel_order": {
            "raw": raw_place_cancel,
            "dora": dora_place_cancel,
            "pykalshi": pk_place_cancel,
        },
    }
    samples: dict[str, dict[str, list[float]]] = {
        op: {k: [] for k in impls} for op, impls in ops.items()
    }
    for impls in ops.values():  # warm-up: connections, caches, imports
        for fn in impls.values():
            for _ in range(5):
                await fn()
    for _ in range(calls):
        for op, impls in ops.items():
            order = list(impls.items())
            random.shuffle(order)
            for name, fn in order:
                start = time.perf_counter()
                await fn()
                samples[op][name].append((time.perf_counter() - start) * 1e6)
    await dora.aclose()
    await pk.aclose()
    await raw.aclose()
    result: dict[str, Any] = {"calls_per_op": calls, "unit": "microseconds", "ops": {}}
    overhead_dora: list[float] = []
    overhead_pk: list[float] = []
    rest_calls = {"place_and_cancel_order": 2}
    for op, by_impl in samples.items():
        medians = {name: statistics.median(values) for name, values in by_impl.items()}
        per = rest_calls.get(op, 1)
        row = {
            "rest_calls": per,
            "median_us": {k: round(v, 1) for k, v in medians.items()},
            "overhead_per_call_us": {
                "dora": round((medians["dora"] - medians["raw"]) / per, 1),
                "pykalshi": round((medians["pykalshi"] - medians["raw"]) / per, 1),
            },
        }
        result["ops"][op] = row
        overhead_dora.append(row["overhead_per_call_us"]["dora"])
        overhead_pk.append(row["overhead_per_call_us"]["pykalshi"])
    result["median_overhead_per_call_us"] = {
        "dora": round(statistics.median(overhead_dora), 1),
        "pykalshi": round(statistics.median(overhead_pk), 1),
    }
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=300, help="timed calls per operation and client"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-client.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        result = asyncio.run(run(args.calls, Path(workdir)))
    text = json.dumps(result, indent=2)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
