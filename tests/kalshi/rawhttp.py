"""Scripted HTTP/1.1 servers on loopback for the REST client's tests: plain or TLS (a throwaway
CA and certificate made per test), each connection handled by the test's own coroutine, so a test
can answer, stall, cut an answer short or send bytes nobody asked for."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.security.test_redis_auth_tls import _write_tls_material

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes

    @property
    def method(self) -> str:
        return self.line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]


async def read_request(reader: asyncio.StreamReader) -> Request:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(head[0], headers, body)


def answer(body: bytes = b'{"ok":true}', status: str = "200 OK", extra: str = "") -> bytes:
    """A whole answer; ``extra`` is more header lines, each ending in CRLF."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@dataclass
class Server:
    port: int = 0
    tls: bool = False
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    server: asyncio.Server | None = None
    ca_path: Path | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def client_ssl(self) -> ssl.SSLContext | None:
        """A client context that trusts this server's throwaway CA (None for plain HTTP)."""
        if self.ca_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_path))


Serve = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(handler, tls=False)``: a server on 127.0.0.1 calling ``handler`` for each
    connection (closed when the handler returns)."""
    servers: list[Server] = []
    material: list[Path] = []  # one throwaway CA and certificate per test, made on first use

    async def start(handler: Handler, tls: bool = False, port: int = 0) -> Server:
        srv = Server(tls=tls)
        context = None
        if tls:
            if not material:
                material.extend(_write_tls_material(tmp_path))
            ca, cert, key = material
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            srv.ca_path = ca

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            srv.connections += 1
            try:
                await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            except asyncio.CancelledError:
                pass  # the test ended while this connection waited: not an error of the test
            finally:
                writer.close()

        srv.server = await asyncio.start_server(on_connect, "127.0.0.1", port, ssl=context)
        srv.port = srv.server.sockets[0].getsockname()[1]
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        assert srv.server is not None
        srv.server.close()


def keep_answering(srv_box: list[Server], reply: bytes = b"") -> Handler:
    """Answer every request of the connection with ``reply`` (default ``{"ok":true}``)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            srv_box[0].requests.append(request)
            writer.write(reply or answer())
            await writer.drain()

    return handler
