"""Retry policy, signing and error mapping of the transport, and the client's create safety,
over the production HTTP stack (common/kalshi/http.py) against a scripted exchange on loopback:
plain HTTP and real TLS (a throwaway CA and certificate made for the test)."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from common.domain import OrderStatus, Side
from common.kalshi import (
    AuthError,
    Conflict,
    KalshiClient,
    OrderRejected,
    OrderRequest,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TransportError,
)
from common.kalshi.ratelimit import NoBudget
from common.kalshi.signing import signer_from_pem
from common.kalshi.transport import RetryPolicy, Transport
from tests.kalshi.rawhttp import Request, Serve, Server, answer, read_request

API = "/trade-api/v2"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
SIGNER = signer_from_pem("kid", PEM)
FAST = RetryPolicy(base_delay_s=0.001, max_delay_s=0.01, rate_limited_base_s=0.001)


DROP = b"<close without an answer>"
STALL = b"<never answer>"
Reply = bytes  # an answer() or DROP or STALL
Handler = Callable[[Request], Reply]
Make = Callable[..., Awaitable[Transport]]


def json_response(status: int, body: Any) -> Reply:
    return answer(orjson.dumps(body), status=f"{status} X")


def exchange_handler(
    handler: Handler,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            reply = handler(await read_request(reader))
            if reply is DROP:
                return
            if reply is STALL:
                await asyncio.sleep(30)
            writer.write(reply)
            await writer.drain()

    return connection


@pytest.fixture(params=[False, True], ids=["http", "https"])
def make(request: pytest.FixtureRequest, serve: Serve) -> Make:
    """``await make(handler)``: a Transport to a scripted exchange, over HTTP or HTTPS."""
    tls: bool = request.param

    async def start(handler: Handler, **options: Any) -> Transport:
        srv = await serve(exchange_handler(handler), tls=tls)
        return Transport(srv.url + API, SIGNER, ssl_context=srv.client_ssl(), **options)

    return start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_requests_are_signed_over_the_full_path(make: Make) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Reply:
        seen.append(request)
        return json_response(200, {"ok": True})

    transport = await make(handler)
    assert await transport.request(
        "GET", "/portfolio/orders", params={"limit": 5, "cursor": None}
    ) == {"ok": True}
    request = seen[0]
    assert request.target == "/trade-api/v2/portfolio/orders?limit=5"
    message = (
        f"{request.headers['kalshi-access-timestamp']}GET/trade-api/v2/portfolio/orders".encode()
    )
    KEY.public_key().verify(
        base64.b64decode(request.headers["kalshi-access-signature"]),
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    await transport.aclose()


async def test_reads_retry_5xx_and_transport_errors_then_succeed(make: Make) -> None:
    calls = 0

    def handler(request: Request) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 1:
            return STALL
        if calls == 2:
            return json_response(503, {"error": {"code": "unavailable", "message": "busy"}})
        return json_response(200, {"n": calls})

    transport = await make(handler, timeout_s=0.3)
    assert await transport.request("GET", "/x", retry=FAST) == {"n": 3}
    assert transport.stats.retries == 2 and transport.stats.server_errors == 1
    await transport.aclose()


async def test_non_idempotent_writes_are_not_retried_after_ambiguous_errors(make: Make) -> None:
    calls = 0

    def handler(request: Request) -> Reply:
        nonlocal calls
        calls += 1
        return json_response(500, {"error": {"code": "internal", "message": "boom"}})

    transport = await make(handler)
    with pytest.raises(ServerError):
        await transport.request("POST", "/x", body={}, retry=RetryPolicy(idempotent=False))
    assert calls == 1
    await transport.aclose()


class OpenOnSecondAttempt(NoBudget):
    """Nobody listens at the first attempt (refused: never sent); the exchange opens before the
    second."""

    def __init__(self, open_exchange: Callable[[], Awaitable[Any]]) -> None:
        self.open_exchange = open_exchange
        self.attempts = 0

    async def acquire(self, bucket: str, cost: int, *, priority: bool = False) -> float:
        self.attempts += 1
        if self.attempts == 2:
            await self.open_exchange()
        return 0.0


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_not_sent_and_429_are_retried_for_every_policy(serve: Serve, tls: bool) -> None:
    calls = 0

    def handler(request: Request) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 1:
            return json_response(429, {"error": "too many requests"})
        return json_response(201, {"ok": 1})

    port = free_port()
    opened: list[Server] = []

    async def open_exchange() -> None:
        opened.append(await serve(exchange_handler(handler), tls=tls, port=port))

    await open_exchange()  # to learn its URL and CA; closed again: the first attempt is refused
    first = opened.pop()
    assert first.server is not None
    first.server.close()
    await first.server.wait_closed()
    budget = OpenOnSecondAttempt(open_exchange)
    transport = Transport(first.url + API, SIGNER, budget=budget, ssl_context=first.client_ssl())
    policy = RetryPolicy(idempotent=False, base_delay_s=0.001, rate_limited_base_s=0.001)
    assert await transport.request("POST", "/x", body={}, retry=policy) == {"ok": 1}
    assert transport.stats.transport_errors == 1 and transport.stats.rate_limited == 1
    assert budget.attempts == 3
    await transport.aclose()


async def test_429_gives_up_after_max_attempts(make: Make) -> None:
    transport = await make(lambda r: json_response(429, {"error": "too many requests"}))
    with pytest.raises(RateLimited, match="too many requests"):
        await transport.request(
            "GET", "/x", retry=RetryPolicy(max_attempts=3, rate_limited_base_s=0.001)
        )
    assert transport.stats.requests == 3
    await transport.aclose()


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            401,
            {
                "error": {
                    "code": "authentication_error",
                    "message": "bad",
                    "details": "INCORRECT_API_KEY_SIGNATURE",
                }
            },
            AuthError,
            "authentication_error",
        ),
        (
            409,
            {"error": {"code": "order_already_exists", "message": "exists"}},
            Conflict,
            "order_already_exists",
        ),
        (
            400,
            {"code": "invalid_order", "message": "invalid order", "details": "post only cross"},
            OrderRejected,
            "invalid_order",
        ),
    ],
)
async def test_errors_map_to_types_with_code(
    make: Make, status: int, body: Any, kind: type, code: str
) -> None:
    transport = await make(lambda r: json_response(status, body))
    with pytest.raises(kind) as info:
        await transport.request("POST", "/portfolio/events/orders", body={}, retry=FAST)
    assert info.value.code == code and info.value.status == status
    assert "KALSHI" not in str(info.value)
    await transport.aclose()


# ---- the client's create safety over a tiny fake exchange ----------------------------------


class FakeExchange:
    """Remembers orders by client_order_id; can lose the answer of the first N creates."""

    def __init__(self, lose_answers: int = 0, conflict_first: bool = False) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.lose_answers = lose_answers
        self.creates = 0

    def __call__(self, request: Request) -> Reply:
        path = request.target.split("?", 1)[0].removeprefix(API)
        if request.method == "POST" and path == "/portfolio/events/orders":
            self.creates += 1
            body = orjson.loads(request.body)
            cid = body["client_order_id"]
            if cid in self.orders:
                return json_response(
                    409, {"error": {"code": "order_already_exists", "message": "exists"}}
                )
            self.orders[cid] = {
                "order_id": f"o-{len(self.orders) + 1}",
                "client_order_id": cid,
                "ticker": body["ticker"],
                "book_side": body["side"],
                "status": "resting",
                "yes_price_dollars": body["price"],
                "fill_count_fp": "0.00",
                "remaining_count_fp": body["count"],
                "initial_count_fp": body["count"],
                "created_time": "2026-01-01T00:00:00Z",
            }
            if self.lose_answers > 0:
                self.lose_answers -= 1
                return DROP  # created, then the connection dies before the answer
            return json_response(
                201,
                {
                    "order_id": self.orders[cid]["order_id"],
                    "client_order_id": cid,
                    "fill_count": "0.00",
                    "remaining_count": body["count"],
                    "ts_ms": 1,
                },
            )
        if request.method == "GET" and path == "/portfolio/orders":
            return json_response(200, {"orders": list(self.orders.values()), "cursor": ""})
        return json_response(404, {"error": {"code": "not_found", "message": "no route"}})


REQUEST = OrderRequest("KX-1", Side.BID, 4200, 500, "cid-1")


async def test_create_after_lost_answer_ends_with_one_order(make: Make) -> None:
    exchange = FakeExchange(lose_answers=1)
    client = KalshiClient(await make(exchange))
    order = await client.place_order(REQUEST)
    assert order.order_id == "o-1" and order.status is OrderStatus.RESTING
    assert len(exchange.orders) == 1 and exchange.creates == 2  # resent, answered 409, looked up
    await client.aclose()


async def test_create_409_returns_the_existing_order(make: Make) -> None:
    exchange = FakeExchange()
    client = KalshiClient(await make(exchange))
    first = await client.place_order(REQUEST)
    again = await client.place_order(REQUEST)
    assert again.order_id == first.order_id and len(exchange.orders) == 1
    await client.aclose()


async def test_create_with_no_answer_at_all_is_outcome_unknown(make: Make) -> None:
    def handler(request: Request) -> Reply:
        return DROP

    client = KalshiClient(await make(handler), lookup_attempts=1, lookup_delay_s=0.0)
    with pytest.raises(OutcomeUnknown) as info:
        await client.place_order(REQUEST)
    assert info.value.client_order_id == "cid-1"
    await client.aclose()


async def test_transport_error_type_for_reads_after_retries() -> None:
    transport = Transport(f"http://127.0.0.1:{free_port()}{API}", SIGNER)  # nobody listens
    with pytest.raises(TransportError, match="not sent"):
        await transport.request("GET", "/x", retry=RetryPolicy(max_attempts=2, base_delay_s=0.001))
    await transport.aclose()
