"""Shared helpers of the simulator tests (``tests.sim.simtest_helpers``)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from common.numbers import format_count, parse_count
from sim import lifecycle
from sim.auth import auth_headers
from sim.catalog import build_catalog
from sim.engine import Exchange
from sim.scenario import load_scenario
from sim.server import RunningSim
from tests.support.simfix import KEY_ID

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
RICH = 1_000_000 * 1_000_000  # $1M in micro-dollars


def make_exchange(
    n_markets: int = 12, accounts: tuple[str, ...] = ("a", "b", "c"), *, direct: bool = True
) -> Exchange:
    """Accounts of direct members by default (the engine's own tests check exact trade fees;
    the rounding fee of other members has tests of its own)."""
    exchange = Exchange()
    build_catalog(exchange, load_scenario("calm"), n_markets, T0)
    lifecycle.advance(exchange, T0)
    for key_id in accounts:
        exchange.open_account(key_id, RICH, direct_member=direct)
    return exchange


class Signed:
    """A plain signed httpx client for the endpoints pykalshi does not cover."""

    def __init__(self, running: RunningSim, key: rsa.RSAPrivateKey, key_id: str = KEY_ID) -> None:
        self.running = running
        self.key = key
        self.key_id = key_id
        self.client = httpx.AsyncClient(base_url=running.base_url, timeout=10)

    def headers(self, method: str, path: str) -> dict[str, str]:
        full = f"/trade-api/v2{path}"
        return {
            **auth_headers(self.key_id, self.key, method, full, int(time.time() * 1000)),
            "Content-Type": "application/json",
        }

    async def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        content = orjson.dumps(body) if body is not None else None
        return await self.client.request(
            method, f"/trade-api/v2{path}", headers=self.headers(method, path), content=content
        )

    async def get(self, path: str) -> httpx.Response:
        return await self.request("GET", path)

    async def post(self, path: str, body: object) -> httpx.Response:
        return await self.request("POST", path, body)

    async def put(self, path: str, body: object) -> httpx.Response:
        return await self.request("PUT", path, body)

    async def delete(self, path: str, body: object = None) -> httpx.Response:
        return await self.request("DELETE", path, body)

    async def control(self, method: str, path: str, body: object = None) -> httpx.Response:
        content = orjson.dumps(body) if body is not None else None
        return await self.client.request(method, f"/_sim{path}", content=content)

    async def close(self) -> None:
        await self.client.aclose()


def order_body(
    ticker: str, side: str, price: str, count: str, **extra: object
) -> dict[str, object]:
    return {
        "ticker": ticker,
        "side": side,
        "price": price,
        "count": count,
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
        **extra,
    }


class BookMirror:
    """A WebSocket client's books, rebuilt from snapshot + deltas, with per-sid seq checks."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[str, int]]] = {}
        self.last_seq: dict[int, int] = {}
        self.gaps: list[tuple[int, int, int]] = []  # (sid, expected, got)

    def apply(self, message: dict[str, Any]) -> None:
        sid, seq = message.get("sid"), message.get("seq")
        if isinstance(sid, int) and isinstance(seq, int):
            expected = self.last_seq.get(sid, 0) + 1
            if seq != expected:
                self.gaps.append((sid, expected, seq))
            self.last_seq[sid] = seq
        kind = message.get("type")
        msg = message.get("msg", {})
        if kind == "orderbook_snapshot":
            self.books[msg["market_ticker"]] = {
                side: {p: parse_count(c) for p, c in msg.get(f"{side}_dollars_fp", [])}
                for side in ("yes", "no")
            }
        elif kind == "orderbook_delta":
            levels = self.books[msg["market_ticker"]][msg["side"]]
            size = levels.get(msg["price_dollars"], 0) + parse_count(msg["delta_fp"], signed=True)
            if size:
                levels[msg["price_dollars"]] = size
            else:
                levels.pop(msg["price_dollars"])

    def levels(self, ticker: str) -> dict[str, list[list[str]]]:
        book = self.books[ticker]
        return {
            f"{side}_dollars": [[p, format_count(book[side][p])] for p in sorted(book[side])]
            for side in ("yes", "no")
        }


class WsClient:
    """A raw signed WebSocket client (aiohttp) that keeps every message it reads."""

    def __init__(self, running: RunningSim, key: rsa.RSAPrivateKey, key_id: str = KEY_ID) -> None:
        self.running = running
        self.key = key
        self.key_id = key_id
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.next_id = 0
        self.received: list[dict[str, Any]] = []
        self.mirror = BookMirror()

    async def connect(self, **kwargs: Any) -> WsClient:
        self.session = aiohttp.ClientSession()
        headers = auth_headers(
            self.key_id, self.key, "GET", "/trade-api/ws/v2", int(time.time() * 1000)
        )
        self.ws = await self.session.ws_connect(self.running.ws_url, headers=headers, **kwargs)
        return self

    async def send(self, cmd: str, params: dict[str, Any] | None = None) -> int:
        assert self.ws is not None
        self.next_id += 1
        frame: dict[str, Any] = {"id": self.next_id, "cmd": cmd}
        if params is not None:
            frame["params"] = params
        await self.ws.send_str(orjson.dumps(frame).decode())
        return self.next_id

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.ws is not None
        message = await self.ws.receive(timeout=timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket gave {message.type!r}")
        data: dict[str, Any] = orjson.loads(message.data)
        self.received.append(data)
        self.mirror.apply(data)
        return data

    async def until(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = await self.recv(max(0.05, deadline - time.monotonic()))
            if predicate(data):
                return data

    async def reply(self, cmd_id: int, timeout: float = 5.0) -> dict[str, Any]:
        return await self.until(lambda m: m.get("id") == cmd_id, timeout)

    async def sync(self) -> None:
        """Read until the server answered a fresh command: everything before it has arrived."""
        await self.reply(await self.send("list_subscriptions"), timeout=20)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
