"""Throughput of one simulator process: REST order actions/s and WebSocket messages/s.

Run: ``python -m bench.bench_sim [--seconds S]``. Starts ``dora sim`` as its own process (so the
load generator does not share its event loop), with the calm scenario's flow agents running,
then:
1. REST: concurrent signed clients create resting orders and cancel, amend or decrease them;
   counts completed order actions per second (client side, cross-checked with /_sim/stats);
2. WebSocket: sockets subscribed to every market's ``orderbook_delta``, ``trade`` and
   ``ticker`` while the order load runs; counts messages per second the server sent
   (``ws_messages_sent``) and the clients received.
Prints JSON and writes it to ``bench/results-sim.json``. Clients sign with Ed25519 keys (cheap
to sign, so the generator is not the bottleneck); the rate tier is ``unlimited`` because this
measures the server, not Kalshi's budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from sim.auth import auth_headers, load_private_key, write_key_pair

RESULTS = Path(__file__).parent / "results-sim.json"
N_KEYS = 4


def start_server(keys_dir: Path, ready: Path) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "sim",
        "--port",
        "0",
        "--markets",
        "20",
        "--scenario",
        "calm",
        "--api-keys",
        str(keys_dir),
        "--rate-tier",
        "unlimited",
        "--balance",
        "100000000",
        "--ready-file",
        str(ready),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, key_id: str, key: Any) -> None:
        self.session, self.base, self.key_id, self.key = session, base, key_id, key

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        headers = auth_headers(
            self.key_id, self.key, method, f"/trade-api/v2{path}", int(time.time() * 1000)
        )
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(
            method, f"{self.base}{path}", headers=headers, data=data
        ) as resp:
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if raw else None


async def order_worker(
    client: Client, tickers: list[str], stop_at: float, counts: dict[str, int], seed: int
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        ticker = rng.choice(tickers)
        side = rng.choice(["bid", "ask"])
        price = rng.randint(2, 8) if side == "bid" else rng.randint(92, 98)  # far from the touch
        status, ack = await client.call(
            "POST",
            "/portfolio/events/orders",
            {
                "ticker": ticker,
                "side": side,
                "price": f"0.{price:02d}",
                "count": "5",
                "time_in_force": "good_till_canceled",
                "self_trade_prevention_type": "maker",
            },
        )
        counts["create" if status == 201 else "error"] += 1
        if status != 201:
            continue
        order_id = ack["order_id"]
        roll = rng.random()
        if roll < 0.25:
            status, _ = await client.call(
                "POST",
                f"/portfolio/events/orders/{order_id}/amend",
                {"ticker": ticker, "side": side, "price": f"0.{price:02d}", "count": "3"},
            )
            counts["amend" if status == 200 else "error"] += 1
        elif roll < 0.5:
            status, _ = await client.call(
                "POST", f"/portfolio/events/orders/{order_id}/decrease", {"reduce_by": "1"}
            )
            counts["decrease" if status == 200 else "error"] += 1
        status, _ = await client.call("DELETE", f"/portfolio/events/orders/{order_id}")
        counts["cancel" if status == 200 else "error"] += 1


async def ws_reader(
    ws_url: str, key_id: str, key: Any, tickers: list[str], stop_at: float, counts: dict[str, int]
) -> None:
    headers = auth_headers(key_id, key, "GET", "/trade-api/ws/v2", int(time.time() * 1000))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, headers=headers, max_msg_size=0) as ws,
    ):
        await ws.send_str(
            json.dumps(
                {
                    "id": 1,
                    "cmd": "subscribe",
                    "params": {
                        "channels": ["orderbook_delta", "trade", "ticker"],
                        "market_tickers": tickers,
                    },
                }
            )
        )
        while time.monotonic() < stop_at:
            try:
                msg = await ws.receive(timeout=max(0.01, stop_at - time.monotonic()))
            except TimeoutError:
                break
            if msg.type is aiohttp.WSMsgType.TEXT:
                counts["ws_received"] += 1
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break


async def stats(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/_sim/stats") as resp:
        data: dict[str, Any] = await resp.json()
        return data


async def run(seconds: float, workers: int, sockets: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        keys_dir, ready = Path(tmp) / "keys", Path(tmp) / "ready.json"
        for i in range(N_KEYS):
            write_key_pair(keys_dir, f"bench{i}", "ed25519")
        proc = start_server(keys_dir, ready)
        try:
            info = json.loads(ready.read_text())
            rest, root = info["rest_url"], info["rest_url"].rsplit("/trade-api", 1)[0]
            keys = [
                (f"bench{i}", load_private_key(keys_dir / f"bench{i}.pem")) for i in range(N_KEYS)
            ]
            connector = aiohttp.TCPConnector(limit=workers)
            async with aiohttp.ClientSession(connector=connector) as session:
                clients = [Client(session, rest, k, key) for k, key in keys]
                _status, markets = await clients[0].call("GET", "/markets?limit=1000")
                tickers = [
                    m["ticker"]
                    for m in markets["markets"]
                    if m["price_level_structure"] == "linear_cent"
                ]
                await asyncio.sleep(1.0)  # let the agents build books

                # phase 1: REST order actions
                counts: dict[str, int] = dict.fromkeys(
                    ["create", "cancel", "amend", "decrease", "error"], 0
                )
                before = await stats(session, root)
                started = time.monotonic()
                stop_at = started + seconds
                await asyncio.gather(
                    *(
                        order_worker(clients[i % N_KEYS], tickers, stop_at, counts, i)
                        for i in range(workers)
                    )
                )
                elapsed = time.monotonic() - started
                after = await stats(session, root)
                actions = counts["create"] + counts["cancel"] + counts["amend"] + counts["decrease"]
                rest_result = {
                    "seconds": round(elapsed, 2),
                    "order_actions": actions,
                    "order_actions_per_s": round(actions / elapsed),
                    "by_kind": counts,
                    "server_orders_created": after["orders_created"] - before["orders_created"],
                    "concurrent_clients": workers,
                }

                # phase 2: WebSocket fan-out under the same order load
                ws_counts: dict[str, int] = {"ws_received": 0}
                counts2: dict[str, int] = dict.fromkeys(
                    ["create", "cancel", "amend", "decrease", "error"], 0
                )
                stop_at = time.monotonic() + seconds + 1.0
                readers = [
                    asyncio.create_task(
                        ws_reader(info["ws_url"], *keys[i % N_KEYS], tickers, stop_at, ws_counts)
                    )
                    for i in range(sockets)
                ]
                await asyncio.sleep(1.0)  # subscribed and snapshots sent
                before = await stats(session, root)
                received_before = ws_counts["ws_received"]
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        order_worker(clients[i % N_KEYS], tickers, stop_at, counts2, 100 + i)
                        for i in range(max(4, workers // 2))
                    )
                )
                elapsed = time.monotonic() - started
                after = await stats(session, root)
                received = ws_counts["ws_received"] - received_before
                await asyncio.gather(*readers, return_exceptions=True)
                sent = after["ws_messages_sent"] - before["ws_messages_sent"]
                ws_result = {
                    "seconds": round(elapsed, 2),
                    "sockets": sockets,
                    "ws_messages_sent": sent,
                    "ws_messages_sent_per_s": round(sent / elapsed),
                    "ws_messages_received_per_s": round(received / elapsed),
                    "order_actions_per_s_meanwhile": round(
                        (
                            counts2["create"]
                            + counts2["cancel"]
                            + counts2["amend"]
                            + counts2["decrease"]
                        )
                        / elapsed
                    ),
                }
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {
        "benchmark": "sim",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "rest": rest_result,
        "websocket": ws_result,
        "targets": {"order_actions_per_s": 1000, "ws_messages_per_s": 20000},
        "meets_targets": rest_result["order_actions_per_s"] >= 1000
        and ws_result["ws_messages_sent_per_s"] >= 20000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=32, help="concurrent REST clients")
    parser.add_argument("--sockets", type=int, default=16, help="WebSocket connections")
    args = parser.parse_args()
    result = asyncio.run(run(args.seconds, args.workers, args.sockets))
    text = json.dumps(result, indent=2)
    RESULTS.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
