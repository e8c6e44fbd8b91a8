"""Retry policy, signing and error mapping of the transport, and the client's create safety,
against httpx.MockTransport (no server)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
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
from common.kalshi.signing import signer_from_pem
from common.kalshi.transport import RetryPolicy, Transport

BASE = "http://exchange.test/trade-api/v2"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
SIGNER = signer_from_pem("kid", PEM)
FAST = RetryPolicy(base_delay_s=0.001, max_delay_s=0.01, rate_limited_base_s=0.001)


def make(handler: Callable[[httpx.Request], httpx.Response]) -> Transport:
    return Transport(BASE, SIGNER, transport=httpx.MockTransport(handler))


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body))


async def test_requests_are_signed_over_the_full_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, {"ok": True})

    transport = make(handler)
    assert await transport.request(
        "GET", "/portfolio/orders", params={"limit": 5, "cursor": None}
    ) == {"ok": True}
    request = seen[0]
    assert request.url.path == "/trade-api/v2/portfolio/orders" and request.url.query == b"limit=5"
    message = (
        f"{request.headers['KALSHI-ACCESS-TIMESTAMP']}GET/trade-api/v2/portfolio/orders".encode()
    )
    KEY.public_key().verify(
        base64.b64decode(request.headers["KALSHI-ACCESS-SIGNATURE"]),
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    await transport.aclose()


async def test_reads_retry_5xx_and_transport_errors_then_succeed() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if calls == 2:
            return json_response(503, {"error": {"code": "unavailable", "message": "busy"}})
        return json_response(200, {"n": calls})

    transport = make(handler)
    assert await transport.request("GET", "/x", retry=FAST) == {"n": 3}
    assert transport.stats.retries == 2 and transport.stats.server_errors == 1
    await transport.aclose()


async def test_non_idempotent_writes_are_not_retried_after_ambiguous_errors() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return json_response(500, {"error": {"code": "internal", "message": "boom"}})

    transport = make(handler)
    with pytest.raises(ServerError):
        await transport.request("POST", "/x", body={}, retry=RetryPolicy(idempotent=False))
    assert calls == 1
    await transport.aclose()


async def test_not_sent_and_429_are_retried_for_every_policy() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            return json_response(429, {"error": "too many requests"})
        return json_response(201, {"ok": 1})

    transport = make(handler)
    policy = RetryPolicy(idempotent=False, base_delay_s=0.001, rate_limited_base_s=0.001)
    assert await transport.request("POST", "/x", body={}, retry=policy) == {"ok": 1}
    assert transport.stats.rate_limited == 1
    await transport.aclose()


async def test_429_gives_up_after_max_attempts() -> None:
    transport = make(lambda r: json_response(429, {"error": "too many requests"}))
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
async def test_errors_map_to_types_with_code(status: int, body: Any, kind: type, code: str) -> None:
    transport = make(lambda r: json_response(status, body))
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

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/trade-api/v2")
        if request.method == "POST" and path == "/portfolio/events/orders":
            self.creates += 1
            body = orjson.loads(request.content)
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
                raise httpx.ReadError("connection reset", request=request)
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


async def test_create_after_lost_answer_ends_with_one_order() -> None:
    exchange = FakeExchange(lose_answers=1)
    client = KalshiClient(make(exchange))
    order = await client.place_order(REQUEST)
    assert order.order_id == "o-1" and order.status is OrderStatus.RESTING
    assert len(exchange.orders) == 1 and exchange.creates == 2  # resent, answered 409, looked up
    await client.aclose()


async def test_create_409_returns_the_existing_order() -> None:
    exchange = FakeExchange()
    client = KalshiClient(make(exchange))
    first = await client.place_order(REQUEST)
    again = await client.place_order(REQUEST)
    assert again.order_id == first.order_id and len(exchange.orders) == 1
    await client.aclose()


async def test_create_with_no_answer_at_all_is_outcome_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("gone", request=request)

    client = KalshiClient(make(handler), lookup_attempts=1, lookup_delay_s=0.0)
    with pytest.raises(OutcomeUnknown) as info:
        await client.place_order(REQUEST)
    assert info.value.client_order_id == "cid-1"
    await client.aclose()


async def test_transport_error_type_for_reads_after_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = make(handler)
    with pytest.raises(TransportError, match="not sent"):
        await transport.request("GET", "/x", retry=RetryPolicy(max_attempts=2, base_delay_s=0.001))
    await transport.aclose()
