"""dora's REST client on one simulator, in one run: its overhead, its HTTP stack, its parsers.

Starts the simulator as a subprocess (``dora sim``, unlimited rate tier, no background flow),
then measures three things, each interleaved call by call so drift hits all alike:

1. ``client_overhead``: the same calls made three ways,
   - ``raw``: a bare signed httpx request plus ``orjson.loads`` (the floor any client pays),
   - ``dora``: ``common.kalshi.KalshiClient`` (typed parse to domain values, budget disabled),
   - ``pykalshi``: ``pykalshi.AsyncKalshiClient`` 2.0.0 (its public methods);
   overhead = median(client) - median(raw) per operation.
2. ``http_stacks``: one order (create + cancel) through ``KalshiClient`` over
   ``common/kalshi/http.py`` and over aiohttp's client (``bench/aiohttp_stack.py``), with an
   Ed25519 and an RSA key: CPU per order (``time.process_time``: this process only, the
   simulator is another) and latency, median per repetition, then the median of the repetitions.
3. ``wire_parsers``: the payloads the simulator answered (create and cancel acks, a page of
   orders, an order book) and a WebSocket delta frame, parsed as dora does (``orjson.loads``,
   then ``common.kalshi.wire``: msgspec structs over the decoded JSON) and by msgspec structs
   decoded straight from the bytes (``bench/msgspec_wire.py``: what handing the parsers the raw
   body would gain), both checked to give the same values first.

Prints JSON and writes bench/results-client.json.
Run: ``python -m bench.bench_client [--calls N] [--reps R] [--order-calls N]``.
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
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.aiohttp_stack import AiohttpStack
from common.domain import Side, make_client_order_id
from common.kalshi import KalshiClient, OrderRequest, signer_from_pem
from common.kalshi.signing import Signer, auth_headers
from common.kalshi.transport import HEADERS

REPO = Path(__file__).resolve().parents[1]
KEY_ID = "bench-key"
KEY_ID_ED25519 = "bench-key-ed25519"


def start_sim(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    from sim.auth import write_key_pair

    write_key_pair(workdir, KEY_ID)
    write_key_pair(workdir, KEY_ID_ED25519, "ed25519")
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


async def run(calls: int, reps: int, order_calls: int, workdir: Path) -> dict[str, Any]:
    proc, ready = start_sim(workdir)
    try:
        rest_url = ready["rest_url"]
        result = await measure(calls, rest_url, workdir / f"{KEY_ID}.pem")
        signers = {
            "ed25519": signer_from_pem(
                KEY_ID_ED25519, (workdir / f"{KEY_ID_ED25519}.pem").read_text()
            ),
            "rsa": signer_from_pem(KEY_ID, (workdir / f"{KEY_ID}.pem").read_text()),
        }
        result["http_stacks"] = await measure_http_stacks(rest_url, signers, reps, order_calls)
        result["wire_parsers"] = await measure_parsers(rest_url, signers["ed25519"], reps)
        return result
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


async def one_order(client: KalshiClient, ticker: str, ids: Iterator[str]) -> None:
    """Create one resting bid and cancel it."""
    order = await client.place_order(OrderRequest(ticker, Side.BID, 1000, 100, next(ids)))
    await client.cancel_order(order.order_id or "", ticker)


async def measure_http_stacks(
    rest_url: str, signers: dict[str, Signer], reps: int, calls: int
) -> dict[str, Any]:
    """CPU per order and latency of one create + cancel over each HTTP stack, per key type."""
    out: dict[str, Any] = {"unit": "microseconds per order (create + cancel)", "reps": reps}
    for key_type, signer in signers.items():
        clients = {
            "lean": KalshiClient.create(rest_url, signer),
            "aiohttp": KalshiClient.create(
                rest_url, signer, http=AiohttpStack(rest_url, headers=HEADERS)
            ),
        }
        ticker = (await clients["lean"].get_market_infos())[0].ticker
        ids = (make_client_order_id(f"stack-{key_type}", ticker, "bid", n) for n in range(10**9))

        for client in clients.values():  # warm-up: connections, caches
            for _ in range(20):
                await one_order(client, ticker, ids)
        per_rep: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for _ in range(reps):
            cpu: dict[str, list[float]] = {name: [] for name in clients}
            wall: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(calls):
                order = list(clients.items())
                random.shuffle(order)
                for name, client in order:
                    cpu_start, wall_start = time.process_time(), time.perf_counter()
                    await one_order(client, ticker, ids)
                    cpu[name].append((time.process_time() - cpu_start) * 1e6)
                    wall[name].append((time.perf_counter() - wall_start) * 1e6)
            for name in clients:
                per_rep[name].append((statistics.median(cpu[name]), statistics.median(wall[name])))
        for client in clients.values():
            await client.aclose()
        row: dict[str, Any] = {}
        for name, values in per_rep.items():
            row[name] = {
                "cpu_us": round(statistics.median(v[0] for v in values), 1),
                "latency_us": round(statistics.median(v[1] for v in values), 1),
                "cpu_us_per_rep": [round(v[0], 1) for v in values],
                "latency_us_per_rep": [round(v[1], 1) for v in values],
            }
        row["aiohttp_extra_cpu_pct"] = round(
            100 * (row["aiohttp"]["cpu_us"] / row["lean"]["cpu_us"] - 1), 1
        )
        row["aiohttp_extra_latency_pct"] = round(
            100 * (row["aiohttp"]["latency_us"] / row["lean"]["latency_us"] - 1), 1
        )
        out[key_type] = row
    return out


async def measure_parsers(rest_url: str, signer: Signer, reps: int) -> dict[str, Any]:
    """Per payload: ``orjson.loads`` + ``common.kalshi.wire`` vs msgspec structs from bytes."""
    from bench import msgspec_wire as ms
    from common.kalshi.wire import markets, order_changes, orders, stream

    client = KalshiClient.create(rest_url, signer)
    http, base_path = client.transport.http, client.transport.base_path

    async def raw(method: str, path: str, body: Any = None, **params: Any) -> bytes:
        headers = auth_headers(signer, int(time.time() * 1000), method, base_path + path)
        if body is not None:
            headers["Content-Type"] = "application/json"
        content = None if body is None else orjson.dumps(body)
        answer = await http.request(
            method, base_path + path, params=params or None, content=content, headers=headers
        )
        return answer.content

    ticker = (await client.get_market_infos())[0].ticker
    request = OrderRequest(ticker, Side.BID, 1100, 100, make_client_order_id("p", ticker, "b", 1))
    ack = await raw("POST", "/portfolio/events/orders", orders.build_create_order(request))
    order_id = orjson.loads(ack)["order_id"]
    cancel = await raw("DELETE", f"/portfolio/events/orders/{order_id}")
    page = await raw("GET", "/portfolio/orders", ticker=ticker, limit=1000)
    book = await raw("GET", f"/markets/{ticker}/orderbook")
    delta = orjson.dumps(
        {
            "type": "orderbook_delta",
            "sid": 2,
            "seq": 12345,
            "msg": {
                "market_ticker": ticker,
                "market_id": "9c2b4a10-1f7e-4d33-8a5e-0d3c1c2b7f61",
                "price_dollars": "0.4400",
                "delta_fp": "-2.50",
                "side": "no",
                "ts_ms": 1764950000000,
                "ts": "2026-12-05T18:00:00Z",
            },
        }
    )
    await client.aclose()
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any], int]] = {
        "create_ack": (
            lambda: orders.order_from_ack(request, orjson.loads(ack)),
            lambda: ms.decode_create_ack(request, ack),
            1,
        ),
        "cancel_ack": (
            lambda: order_changes.parse_cancel(orjson.loads(cancel)),
            lambda: ms.decode_cancel(cancel),
            1,
        ),
        "orders_page": (
            lambda: orders.parse_orders_page(orjson.loads(page)),
            lambda: ms.decode_orders_page(page),
            len(orjson.loads(page)["orders"]),
        ),
        "orderbook": (
            lambda: markets.parse_orderbook(orjson.loads(book)),
            lambda: ms.decode_orderbook(book),
            1,
        ),
        "ws_delta": (
            lambda: stream.parse_ws_delta(orjson.loads(delta)["msg"]),
            lambda: ms.decode_ws_delta(delta),
            1,
        ),
    }
    out: dict[str, Any] = {"unit": "microseconds per payload (median of repetitions)"}
    for name, (wire_parse, bytes_parse, items) in cases.items():
        if wire_parse() != bytes_parse():
            raise SystemExit(f"the two parses disagree on {name}")
        loops = max(200, 20_000 // items)
        runs: dict[str, list[float]] = {"wire": [], "from_bytes": []}
        for _ in range(reps):
            for label, fn in random.sample([("wire", wire_parse), ("from_bytes", bytes_parse)], 2):
                start = time.perf_counter()
                for _ in range(loops):
                    fn()
                runs[label].append((time.perf_counter() - start) / loops * 1e6)
        out[name] = {
            "items": items,
            "wire_us": round(statistics.median(runs["wire"]), 2),
            "from_bytes_us": round(statistics.median(runs["from_bytes"]), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=300, help="timed calls per operation and client"
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions of stacks and parsers")
    parser.add_argument(
        "--order-calls", type=int, default=200, help="orders per stack and repetition"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-client.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        result = asyncio.run(run(args.calls, args.reps, args.order_calls, Path(workdir)))
    text = json.dumps(result, indent=2)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
