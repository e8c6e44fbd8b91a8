"""A lean HTTP/1.1 keep-alive client for the Kalshi REST API: the one HTTP stack on the order path.

Why not a library here: measured on ``bench/bench_client.py`` (docs/performance.md), aiohttp's
client costs ~60 % more CPU per order than this one with an Ed25519 key (22-25 % with RSA),
httpx more still (~0.4 ms a request); this client does only
what the Kalshi API needs: one origin, JSON bodies, ``Content-Length`` or chunked answers,
keep-alive, TLS, and an HTTP proxy through ``CONNECT``.

Its errors say whether the request can have reached the exchange, which is all ``Transport``
needs to retry safely: ``NotSent`` (connect, TLS, proxy or pool failures: nothing left, safe to
resend) and ``NoAnswer`` (sent, but no whole answer came: a write may have executed).

A pooled connection is reused only when it is certainly clean: the server has not closed it, it
has been idle for less than ``keepalive_expiry_s`` (and less than the server's own
``Keep-Alive: timeout``), and no byte arrived on it since its last answer was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, SupportsIndex, cast
from urllib.parse import quote, urlsplit

from common.kalshi.http_proxy import Proxy, proxy_for

RequestHook = Callable[[str, str], Awaitable[None]]  # (method, path) just before sending
MAX_HEADER_BYTES = 64 * 1024
KEEPALIVE_EXPIRY_S = 15.0  # under the idle timeout of common load balancers (60 s and up)
_NO_BODY_STATUS = frozenset({204, 304})


class HttpError(Exception):
    """The HTTP exchange failed; the subclass says whether the request can have been sent."""


class NotSent(HttpError):
    """The request never left (connect, TLS, proxy or pool failure): safe to send again."""


class NoAnswer(HttpError):
    """The request was sent (or may have been) but no whole answer came: a write may have run."""


class ConnectFailed(NotSent):
    pass


class ConnectTimeout(NotSent):
    pass


class PoolTimeout(NotSent):
    pass


class ReadTimeout(NoAnswer):
    pass


class ConnectionLost(NoAnswer):
    pass


class BadAnswer(NoAnswer):
    """The answer is not HTTP/1.1 as this client reads it, or was cut short."""


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


class _Reader(asyncio.StreamReader):
    """A StreamReader that counts what arrives, so bytes nobody asked for can be told."""

    def __init__(self) -> None:
        super().__init__(limit=MAX_HEADER_BYTES)
        self.received = 0

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        self.received += len(cast(bytes, data))
        super().feed_data(data)


class _Connection:
    __slots__ = ("consumed", "expires_at", "reader", "writer")

    def __init__(self, reader: _Reader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.consumed = 0  # bytes read out of ``reader``
        self.expires_at = 0.0  # monotonic seconds; 0 while in use

    async def read_until(self, separator: bytes) -> bytes:
        data = await self.reader.readuntil(separator)
        self.consumed += len(data)
        return data

    async def read_exactly(self, size: int) -> bytes:
        data = await self.reader.readexactly(size)
        self.consumed += len(data)
        return data

    async def read_to_end(self) -> bytes:
        data = await self.reader.read()
        self.consumed += len(data)
        return data

    def clean(self) -> bool:
        """No byte waits unread: anything that came after the last answer is stray."""
        return self.reader.received == self.consumed

    def reusable(self, now: float) -> bool:
        """False once the server closed its side, the idle time ran out or stray bytes came."""
        return (
            now < self.expires_at
            and self.clean()
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

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
    """Requests to one origin (scheme, host, port) over at most ``max_connections`` sockets.

    A proxy comes from the environment (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
    ``NO_PROXY``, as curl reads them) unless ``proxy`` is given (``""``: none); only
    ``http://`` proxies are spoken to (``CONNECT``), any other is refused here, at start."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        pool_timeout_s: float | None = None,  # waiting for a free connection; default timeout_s
        max_connections: int = 16,
        keepalive_expiry_s: float = KEEPALIVE_EXPIRY_S,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port]/..., was {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.proxy: Proxy | None = proxy_for(parts.scheme, self.host, self.port, proxy)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pool_timeout_s = timeout_s if pool_timeout_s is None else pool_timeout_s
        self.keepalive_expiry_s = keepalive_expiry_s
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
            raise ConnectFailed("client is closed")
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
            raise PoolTimeout(f"no free connection within {self.pool_timeout_s} s") from None

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable(now):
                conn.expires_at = 0.0
                return conn
            self._drop(conn)
        where = f"{self.host}:{self.port}"
        if self.proxy is not None:
            where += f" through the proxy {self.proxy.host}:{self.proxy.port}"
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                conn = await self._open_connection()
        except TimeoutError:
            raise ConnectTimeout(f"connect to {where} timed out") from None
        except (OSError, asyncio.IncompleteReadError, _ProtocolError) as exc:
            raise ConnectFailed(f"connect to {where}: {exc}") from None
        self._open.add(conn)
        return conn

    async def _open_connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        reader = _Reader()
        protocol = asyncio.StreamReaderProtocol(reader)
        host, port = (self.host, self.port) if self.proxy is None else self.proxy.address
        tls_now = self.tls and self.proxy is None
        transport, _ = await loop.create_connection(
            lambda: protocol,
            host,
            port,
            ssl=self._ssl if tls_now else None,
            server_hostname=self.host if tls_now else None,
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        conn = _Connection(reader, writer)
        if self.proxy is not None:
            try:
                await self._tunnel(conn)
                if self.tls:
                    assert self._ssl is not None
                    await writer.start_tls(self._ssl, server_hostname=self.host)
            except BaseException:
                writer.close()
                raise
        return conn

    async def _tunnel(self, conn: _Connection) -> None:
        """``CONNECT host:port`` through the proxy; anything but a 2xx fails the connect."""
        assert self.proxy is not None
        conn.writer.write(self.proxy.connect_request(self.host, self.port))
        status, reason, _, _ = await self._read_head(conn)
        if not 200 <= status < 300:
            raise _ProtocolError(f"the proxy answered CONNECT with {status} {reason}")
        if not conn.clean():
            raise _ProtocolError("the proxy sent bytes after its CONNECT answer")

    def _drop(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.close()

    async def _exchange(self, conn: _Connection, method: str, payload: bytes) -> HttpResponse:
        reusable = False
        try:
            conn.writer.write(payload)
            async with asyncio.timeout(self.timeout_s):
                response, reusable = await self._read_response(conn, method)
            return response
        except TimeoutError:
            raise ReadTimeout(f"no answer within {self.timeout_s} s") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, _ProtocolError) as exc:
            raise BadAnswer(f"bad or cut answer: {exc}") from None
        except (ConnectionError, OSError) as exc:
            raise ConnectionLost(f"connection failed: {exc}") from None
        finally:
            # Anything short of a whole, clean answer (including a cancellation) leaves the
            # socket in an unknown state: it is closed, never reused.
            if reusable and not self._closed and conn.clean():
                self._idle.append(conn)
            else:
                self._drop(conn)

    async def _read_head(self, conn: _Connection) -> tuple[int, str, dict[str, str], str]:
        """(status, reason, lower-case headers, HTTP version) of one answer head."""
        raw = await conn.read_until(b"\r\n\r\n")
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
        return status, reason, headers, status_line[0]

    async def _read_response(self, conn: _Connection, method: str) -> tuple[HttpResponse, bool]:
        status, reason, headers, version = await self._read_head(conn)
        while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints): skipped
            if status == 101:
                raise _ProtocolError("101 Switching Protocols was not asked for")
            status, reason, headers, version = await self._read_head(conn)
        keep_alive = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
        if method == "HEAD" or status in _NO_BODY_STATUS:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(conn)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _ProtocolError("bad Content-Length") from None
            body = await conn.read_exactly(length) if length else b""
        else:
            body, keep_alive = await conn.read_to_end(), False  # the body ends with the connection
        if keep_alive:
            conn.expires_at = time.monotonic() + self._idle_allowance(headers)
        return HttpResponse(status, reason, headers, body), keep_alive

    def _idle_allowance(self, headers: Mapping[str, str]) -> float:
        """How long the connection may idle: ours, and a second under the server's own."""
        allowance = self.keepalive_expiry_s
        for part in headers.get("keep-alive", "").split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "timeout":
                with contextlib.suppress(ValueError):
                    allowance = min(allowance, float(value) - 1.0)
        return allowance

    @staticmethod
    async def _read_chunked(conn: _Connection) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = await conn.read_until(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _ProtocolError(f"chunk size {line[:40]!r}") from None
            if size == 0:
                while (await conn.read_until(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            chunk = await conn.read_exactly(size + 2)
            chunks.append(chunk[:-2])
