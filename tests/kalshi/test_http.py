"""The lean HTTP/1.1 client (common/kalshi/http.py) against scripted raw servers: framing,
keep-alive, and above all which failures mean "never sent" and which mean "sent, no answer"."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from common.kalshi.http import LeanHTTP, encode_query
from tests.security.test_redis_auth_tls import _write_tls_material

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return head[0], headers, body


def answer(body: bytes = b'{"ok":true}', status: str = "200 OK", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None
        self.port = 0


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        srv = Server()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            srv.connections += 1
            try:
                await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        srv.server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
        srv.port = srv.server.sockets[0].getsockname()[1]
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        assert srv.server is not None
        srv.server.close()


def keep_answering(srv_box: list[Server], reply: bytes = b"") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            srv_box[0].requests.append(request)
            writer.write(reply or answer())
            await writer.drain()

    return handler


async def test_keep_alive_reuses_one_connection_and_sends_what_it_is_given(serve) -> None:
    box: list[Server] = []
    srv = await serve(keep_answering(box))
    box.append(srv)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}/trade-api/v2", headers={"Accept": "x/y"})
    seen: list[tuple[str, str]] = []

    async def hook(method: str, path: str) -> None:
        seen.append((method, path))

    http.request_hooks.append(hook)
    for i in range(3):
        response = await http.request(
            "POST",
            "/trade-api/v2/orders",
            params={"limit": 5, "all": True},
            content=b'{"i":%d}' % i,
        )
        assert response.status_code == 200 and response.content == b'{"ok":true}'
    await http.aclose()
    assert srv.connections == 1
    line, headers, body = srv.requests[2]
    assert line == "POST /trade-api/v2/orders?limit=5&all=true HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{srv.port}" and headers["accept"] == "x/y"
    assert body == b'{"i":2}'
    assert seen == [("POST", "/trade-api/v2/orders")] * 3


async def test_chunked_close_delimited_and_empty_bodies(serve) -> None:
    replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n',
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[1,2]",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while replies:
            await read_request(reader)
            reply = replies.pop(0)
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                return

    srv = await serve(handler)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    assert (await http.request("GET", "/a")).content == b'{"a":1}'
    assert (await http.request("DELETE", "/b")).content == b""
    closing = await http.request("GET", "/c")
    assert closing.content == b"[1,2]" and closing.headers["connection"] == "close"
    assert srv.connections == 1
    await http.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(serve) -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        writer.write(answer())
        await writer.drain()  # then close without saying so (idle timeout)

    srv = await serve(one_per_connection)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    for _ in range(3):
        assert (await http.request("GET", "/x")).status_code == 200
        await asyncio.sleep(0.05)  # the FIN arrives
    assert srv.connections == 3
    await http.aclose()


async def test_nobody_listening_is_never_sent(serve) -> None:
    srv = await serve(keep_answering([]))
    port = srv.port
    assert srv.server is not None
    srv.server.close()
    await srv.server.wait_closed()
    http = LeanHTTP(f"http://127.0.0.1:{port}")
    with pytest.raises(httpx.ConnectError):
        await http.request("POST", "/orders", content=b"{}")


async def test_silence_after_sending_is_no_answer_and_the_socket_is_dropped(serve) -> None:
    box: list[Server] = []
    answered = asyncio.Event()

    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if not answered.is_set():
            answered.set()
            await asyncio.sleep(5)  # never answers in time
        writer.write(answer())
        await writer.drain()
        await keep_answering(box)(reader, writer)

    srv = await serve(slow_first)
    box.append(srv)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}", timeout_s=0.2)
    with pytest.raises(httpx.ReadTimeout) as info:
        await http.request("POST", "/orders", content=b"{}")
    assert not isinstance(info.value, httpx.ConnectError | httpx.PoolTimeout)
    assert (await http.request("GET", "/after")).status_code == 200
    assert srv.connections == 2  # the one that timed out was not reused
    await http.aclose()


async def test_an_answer_cut_short_is_a_protocol_error(serve) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()

    srv = await serve(cut)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.request("POST", "/orders", content=b"{}")

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()

    srv2 = await serve(garbage)
    with pytest.raises(httpx.RemoteProtocolError):
        await LeanHTTP(f"http://127.0.0.1:{srv2.port}").request("GET", "/x")


async def test_a_full_pool_waits_then_times_out_as_never_sent(serve) -> None:
    release = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.write(answer())
        await writer.drain()

    srv = await serve(held)
    http = LeanHTTP(
        f"http://127.0.0.1:{srv.port}", max_connections=1, timeout_s=5, pool_timeout_s=0.2
    )
    first = asyncio.create_task(http.request("GET", "/first"))
    await asyncio.sleep(0.05)
    with pytest.raises(httpx.PoolTimeout):
        await http.request("GET", "/second")
    release.set()
    assert (await first).status_code == 200
    await http.aclose()


async def test_a_cancelled_request_closes_its_connection(serve) -> None:
    box: list[Server] = []
    hold = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await hold.wait()
        writer.write(answer())
        await writer.drain()
        await keep_answering(box)(reader, writer)

    srv = await serve(handler)
    box.append(srv)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    task = asyncio.create_task(http.request("GET", "/slow"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hold.set()
    assert (await http.request("GET", "/next")).content == b'{"ok":true}'  # not the stale answer
    assert srv.connections == 2
    await http.aclose()


async def test_https_verifies_the_server(serve, tmp_path: Path) -> None:
    ca, cert, key = _write_tls_material(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    box: list[Server] = []
    srv = await serve(keep_answering(box), tls=server_ctx)
    box.append(srv)
    trusting = ssl.create_default_context(cafile=str(ca))
    http = LeanHTTP(f"https://127.0.0.1:{srv.port}", ssl_context=trusting)
    assert (await http.request("GET", "/secure")).status_code == 200
    await http.aclose()
    with pytest.raises(httpx.ConnectError):  # the system trust store does not know our CA
        await LeanHTTP(f"https://127.0.0.1:{srv.port}").request("GET", "/secure")


def test_query_encoding_and_bad_base_urls() -> None:
    assert encode_query({"tickers": "A-1,B 2", "limit": 200, "x": False}) == (
        "tickers=A-1%2CB%202&limit=200&x=false"
    )
    for bad in ("ftp://host/", "http:///path", "host:80"):
        with pytest.raises(ValueError, match="base URL"):
            LeanHTTP(bad)
