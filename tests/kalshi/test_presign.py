"""Signing ahead (``Transport.presign``): the request sent soon after carries the signature made
ahead, once; a late one or a second request signs again."""

from __future__ import annotations

import base64

import orjson
from cryptography.hazmat.primitives.asymmetric import ed25519

from common.clock import ManualClock
from common.kalshi.create_policy import ORDERS_V2
from common.kalshi.order_entry import amend_path
from common.kalshi.signing import Ed25519Signer
from common.kalshi.transport import PRESIGNED_FRESH_MS, Transport
from tests.kalshi.rawhttp import Request, Serve, answer, read_request

API = "/trade-api/v2"
KEY = ed25519.Ed25519PrivateKey.generate()


class CountingSigner(Ed25519Signer):
    def __init__(self) -> None:
        super().__init__("kid", KEY)
        self.signed = 0

    def sign(self, message: bytes) -> str:
        self.signed += 1
        return super().sign(message)


async def _transport(
    serve: Serve, seen: list[Request]
) -> tuple[Transport, CountingSigner, ManualClock]:
    async def connection(reader, writer) -> None:  # type: ignore[no-untyped-def]
        while True:
            seen.append(await read_request(reader))
            writer.write(answer(orjson.dumps({"ok": True}), status="200 OK"))
            await writer.drain()

    srv = await serve(connection, tls=False)
    signer, clock = CountingSigner(), ManualClock()
    return Transport(srv.url + API, signer, clock=clock), signer, clock


def _verify(request: Request, method: str, path: str) -> int:
    stamp = request.headers["kalshi-access-timestamp"]
    KEY.public_key().verify(
        base64.b64decode(request.headers["kalshi-access-signature"]),
        f"{stamp}{method}{API}{path}".encode(),
    )
    return int(stamp)


async def test_a_request_soon_after_uses_the_signature_made_ahead_once(serve: Serve) -> None:
    seen: list[Request] = []
    transport, signer, clock = await _transport(serve, seen)
    made_ms = clock.now_ms()
    transport.presign("POST", ORDERS_V2)
    assert signer.signed == 1
    clock.advance(PRESIGNED_FRESH_MS // 2)
    await transport.request("POST", ORDERS_V2, body={"x": 1}, bucket="write")
    assert signer.signed == 1  # sent without signing again
    assert _verify(seen[0], "POST", ORDERS_V2) == made_ms
    await transport.request("POST", ORDERS_V2, body={"x": 2}, bucket="write")
    assert signer.signed == 2  # used once: the next one signs for itself
    assert _verify(seen[1], "POST", ORDERS_V2) == clock.now_ms()
    await transport.aclose()


async def test_two_creates_signed_ahead_are_two_signatures(serve: Serve) -> None:
    """The bid's and the ask's passes may both create in one turn: one signature each."""
    seen: list[Request] = []
    transport, signer, _ = await _transport(serve, seen)
    transport.presign("POST", ORDERS_V2)
    transport.presign("POST", ORDERS_V2)
    await transport.request("POST", ORDERS_V2, body={"x": 1}, bucket="write")
    await transport.request("POST", ORDERS_V2, body={"x": 2}, bucket="write")
    assert signer.signed == 2
    assert not transport._presigned
    await transport.aclose()


async def test_a_late_or_another_requests_signature_is_not_used(serve: Serve) -> None:
    seen: list[Request] = []
    transport, signer, clock = await _transport(serve, seen)
    transport.presign("POST", amend_path("o-1"))
    clock.advance(PRESIGNED_FRESH_MS + 1)
    await transport.request("POST", amend_path("o-1"), body={}, bucket="write")
    assert _verify(seen[0], "POST", amend_path("o-1")) == clock.now_ms()  # too old: signed now
    transport.presign("POST", amend_path("o-2"))
    await transport.request("POST", amend_path("o-3"), body={}, bucket="write")
    assert _verify(seen[1], "POST", amend_path("o-3")) == clock.now_ms()
    assert signer.signed == 4
    await transport.aclose()


async def test_signatures_made_ahead_and_never_used_do_not_pile_up(serve: Serve) -> None:
    seen: list[Request] = []
    transport, _, clock = await _transport(serve, seen)
    for i in range(1_000):
        transport.presign("POST", amend_path(f"o-{i}"))
        clock.advance(PRESIGNED_FRESH_MS)
    assert len(transport._presigned) <= 64
    await transport.aclose()
