"""A lean HTTP/1.1 keep-alive client for the Kalshi REST API.

Why not httpx here: on the order path httpx (with httpcore and anyio) runs about 3,000 Python
calls per request and costs ~0.8 ms of CPU on the 2-core box (py-spy, cProfile), more than
everything else the executor does for an order; its connection pool also probes every pooled
socket with system calls on each request. This client does only what the Kalshi API needs:
one host, JSON bodies, ``Content-Length`` or chunked answers, keep-alive, TLS for https. It
raises httpx's exception types so ``Transport`` tells "never sent" (``ConnectError``,
``ConnectTimeout``, ``PoolTimeout``: safe to resend) from "sent, no answer" (every other
``httpx.TransportError``: a write may have executed) exactly as it does for httpx.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

RequestHook = Callable[[str, str], Awaitable[None]]  # (method, path) just before sending
MAX_HEADER_BYTES = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class HttpResponse:
    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: dict[str, str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers  # lower-case names
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """False once the server closed its side (an idle keep-alive connection timed out)."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class _ProtocolError(Exception):
    pass


def encode_query(params: Mapping[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        parts.append(f"{quote(str(key), safe='')}={quote(str(value), safe='')}")
    return "&".join(parts)


class LeanHTTP:
    """Requests to one origin (scheme, host, port) over at most ``max_connections`` sockets."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        pool_timeout_s: float | None = None,  # waiting for a free connection; default timeout_s
        max_connections: int = 16,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port]/..., was {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pool_timeout_s = timeout_s if pool_timeout_s is None else pool_timeout_s
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        host_header = self.host if parts.port is None else f"{self.host}:{parts.port}"
        fixed = {"Host": host_header, **(headers or {})}
        self._fixed_head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.request_hooks: list[RequestHook] = []
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """``path`` is the absolute path on the origin (``/trade-api/v2/...``)."""
        if self._closed:
            raise httpx.ConnectError("client is closed")
        target = f"{path}?{encode_query(params)}" if params else path
        head = [f"{method} {target} HTTP/1.1\r\n", self._fixed_head]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n")
        if content is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(content or b'')}\r\n")
        head.append("\r\n")
        payload = "".join(head).encode("latin-1") + (content or b"")
        await self._acquire_slot()
        try:
            conn = await self._connection()
            for hook in self.request_hooks:
                await hook(method, path)
            return await self._exchange(conn, method, payload)
        finally:
            self._slots.release()

    async def _acquire_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return
        try:
            async with asyncio.timeout(self.pool_timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"no free connection within {self.pool_timeout_s} s") from None

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            self._drop(conn)
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                    limit=MAX_HEADER_BYTES,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"connect to {self.host}:{self.port}: {exc}") from None
        conn = _Connection(reader, writer)
        self._open.add(conn)
        return conn

    def _drop(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.close()

    async def _exchange(self, conn: _Connection, method: str, payload: bytes) -> HttpResponse:
        reusable = False
        try:
            conn.writer.write(payload)
            async with asyncio.timeout(self.timeout_s):
                response, reusable = await self._read_response(conn.reader, method)
            return response
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer within {self.timeout_s} s") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, _ProtocolError) as exc:
            raise httpx.RemoteProtocolError(f"bad or cut answer: {exc}") from None
        except (ConnectionError, OSError) as exc:
            raise httpx.ReadError(f"connection failed: {exc}") from None
        finally:
            # Anything short of a whole answer (including a cancellation) leaves the socket in an
            # unknown state: it is closed, never reused.
            if reusable and not self._closed:
                self._idle.append(conn)
            else:
                self._drop(conn)

    async def _read_response(
        self, reader: asyncio.StreamReader, method: str
    ) -> tuple[HttpResponse, bool]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
            raise _ProtocolError(f"status line {lines[0][:80]!r}")
        try:
            status = int(status_line[1])
        except ValueError:
            raise _ProtocolError(f"status line {lines[0][:80]!r}") from None
        reason = status_line[2] if len(status_line) > 2 else ""
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _ProtocolError(f"header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close" and status_line[0] != (
            "HTTP/1.0"
        )
        if method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
            return HttpResponse(status, reason, headers, b""), keep_alive
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _ProtocolError("bad Content-Length") from None
            body = await reader.readexactly(length) if length else b""
        else:
            body, keep_alive = await reader.read(), False  # the body ends with the connection
        return HttpResponse(status, reason, headers, body), keep_alive

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _ProtocolError(f"chunk size {line[:40]!r}") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            chunk = await reader.readexactly(size + 2)
            chunks.append(chunk[:-2])
