"""A scripted Kalshi REST server for tests at the callers: it answers each listing with whatever
JSON the test gives it (malformed items included) and records every request, so a test can assert
what the caller did (it cancelled every order, it applied every good fill) rather than what a
parser returned."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.procs import free_port

PREFIX = "/trade-api/v2"


@dataclass
class FakeKalshi:
    """``orders``/``fills``/``settlements``/``positions``: the raw items each listing returns
    (resting orders leave ``orders`` when cancelled). ``cancel_all_status``: what
    ``DELETE /portfolio/events/orders`` answers (204, or 404 when the route is missing)."""

    orders: list[Any] = field(default_factory=list)
    fills: list[Any] = field(default_factory=list)
    settlements: list[Any] = field(default_factory=list)
    positions: list[Any] = field(default_factory=list)
    cancel_all_status: int = 204
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    url: str = ""

    def _listing(self, key: str, items: list[Any]) -> web.Response:
        return web.json_response({key: items, "cursor": ""}, dumps=_dumps)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        path = request.path[len(PREFIX) :]
        self.requests.append((request.method, path, dict(request.query), body))
        if request.method == "GET" and path == "/portfolio/orders":
            return self._listing("orders", self.orders)
        if request.method == "GET" and path == "/portfolio/fills":
            return self._listing("fills", self.fills)
        if request.method == "GET" and path == "/portfolio/settlements":
            return self._listing("settlements", self.settlements)
        if request.method == "GET" and path == "/portfolio/positions":
            return self._listing("market_positions", self.positions)
        if request.method == "GET" and path == "/exchange/status":
            return web.json_response({"exchange_active": True, "trading_active": True})
        if request.method == "DELETE" and path == "/portfolio/events/orders":
            if self.cancel_all_status == 204:
                self.orders = []
            return web.Response(status=self.cancel_all_status)
        if request.method == "DELETE" and path == "/portfolio/events/orders/batched":
            acks = []
            for item in body["orders"]:
                order_id = item["order_id"]
                self.cancelled.append(order_id)
                self.orders = [o for o in self.orders if _id(o) != order_id]
                acks.append({"order_id": order_id, "reduced_by": "1.00", "ts_ms": 1})
            return web.json_response({"orders": acks})
        return web.json_response({"error": {"code": "not_found", "message": path}}, status=404)

    def ids(self) -> set[str]:
        return {i for i in map(_id, self.orders) if i}


def _id(item: Any) -> str:
    value = item.get("order_id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else ""


def _dumps(value: Any) -> str:
    """JSON text of any junk a test made (huge integers kept; NaN and infinities, which JSON
    cannot hold, as strings): the items are malformed, the answer itself is valid JSON."""
    return json.dumps(_finite(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


@asynccontextmanager
async def fake_kalshi(fake: FakeKalshi) -> AsyncIterator[FakeKalshi]:
    app = web.Application()
    app.router.add_route("*", PREFIX + "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        yield fake
    finally:
        await runner.cleanup()
