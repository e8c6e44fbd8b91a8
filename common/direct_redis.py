"""A connection of a hot path's own to a single Redis: commands queued with redis-py's pipeline
API, written and answered through hiredis directly.

On the tick's path each hop is a pipeline (marketdata's publish, the strategy's read and
publish, the executor's read and its ledger step). redis-py 8's pipeline ``execute`` costs
about 150 µs of Python per round trip on the bench box (a connection pool checkout, per-command
awaits, its observability hooks); the same pipeline packed by ``hiredis.pack_command``, written
on a socket of its own and parsed by one ``hiredis.Reader`` costs about 40 (docs/performance.md
"Session 17"). The answers are redis-py's own: its RESP2 response callbacks shape them (an
``XREAD`` as ``[[stream, [(id, {field: value})]]]``) and its parser names the errors (a
``NOSCRIPT`` is a ``NoScriptError``, a ``WRONGTYPE`` a ``ResponseError``), so a caller sees what
``pipe.execute()`` would have given it (tests/common/test_direct_redis.py compares them for the
commands the hot paths send; a few others differ in shape, a ``BLPOP`` answers a tuple).

Pipelines on one connection are answered in order (several may be on their way at once). A
caller cancelled while waiting leaves its place in the queue: its answer is read and dropped. A
connection that fails fails every caller waiting on it, is opened again by the next call, and
that call's pipeline is sent again up to ``RETRIES`` times, as redis-py's default retry does.
A connection holding a blocking read answers nothing else until it returns: each user of
blocking reads has one of its own.

For one Redis over TCP (password, ACL user, database); ``direct_for`` gives None for anything
else (a Redis Cluster, TLS, a unix socket, fakeredis in tests), whose callers keep redis-py.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis._parsers.helpers import _RedisCallbacks, _RedisCallbacksRESP2
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 3
RETRY_BACKOFF_S = 0.01  # doubled at each retry
_CALLBACKS: dict[str, Any] = {**_RedisCallbacks, **_RedisCallbacksRESP2}
_EMPTY_RESPONSE = "EMPTY_RESPONSE"  # redis.asyncio.client's option name
_NOT_FOR_CALLBACKS = ("keys", _EMPTY_RESPONSE)

Waiter = tuple["asyncio.Future[list[Any]]", int, list[Any]]


class _Protocol(asyncio.Protocol):
    def __init__(self, encoding: str | None, errors: str) -> None:
        self.reader = (
            hiredis.Reader(encoding=encoding, errors=errors) if encoding else hiredis.Reader()
        )
        self.waiters: deque[Waiter] = deque()
        self.transport: Any = None
        self.lost: Exception | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # uvloop's is no asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while self.waiters:
                reply = self.reader.gets()
                if reply is False:
                    return
                future, count, replies = self.waiters[0]
                replies.append(reply)
                if len(replies) == count:
                    self.waiters.popleft()
                    if not future.done():
                        future.set_result(replies)
        except hiredis.ProtocolError as exc:
            self.fail(RedisConnectionError(f"Redis sent what does not parse: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        why = "closed by the server" if exc is None else f"lost: {exc}"
        self.fail(RedisConnectionError(f"connection to Redis {why}"), close=False)

    def fail(self, error: Exception, *, close: bool = True) -> None:
        if self.lost is None:
            self.lost = error
        while self.waiters:
            future, _, _ = self.waiters.popleft()
            if not future.done():
                future.set_exception(error)
        if close and self.transport is not None:
            self.transport.close()

    def send(self, payload: bytes, count: int) -> asyncio.Future[list[Any]]:
        assert self.transport is not None
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((future, count, []))
        self.transport.write(payload)
        return future


class DirectRedis:
    """One connection (opened at the first call) to the Redis ``options`` describe (a pool's
    ``connection_kwargs``)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.host = str(options.get("host", "localhost"))
        self.port = int(options.get("port", 6379))
        self.db = int(options.get("db") or 0)
        self.username: str | None = options.get("username")
        self.password: str | None = options.get("password")
        self.encoding: str | None = (
            options.get("encoding", "utf-8") if options.get("decode_responses") else None
        )
        self.errors = str(options.get("encoding_errors", "strict"))
        self.connect_timeout_s: float | None = options.get("socket_connect_timeout")
        self.timeout_s: float | None = options.get("socket_timeout")
        self._proto: _Protocol | None = None
        self._opening: asyncio.Lock | None = None

    async def execute(
        self,
        pipe: Any,
        *,
        raise_on_error: bool = True,
        block_s: float = 0.0,
        on_sent: Callable[[], None] | None = None,
    ) -> list[Any]:
        """Send what ``pipe`` queued and return its answers as ``pipe.execute`` would.
        ``block_s``: how long a blocking command in it may wait (added to the socket timeout,
        when one is set). ``on_sent``: called once, the moment the pipeline is written (work to
        do while Redis answers)."""
        stack = list(pipe.command_stack)
        pipe.command_stack.clear()  # the pipeline is spent, as after its own execute
        if not stack:
            return []
        payload = b"".join([hiredis.pack_command(_words(args)) for args, _ in stack])
        delay = RETRY_BACKOFF_S
        for attempt in range(RETRIES + 1):
            try:
                proto = await self._connection()
                sent = proto.send(payload, len(stack))
                if on_sent is not None:
                    call: Callable[[], None] = on_sent
                    on_sent = None  # once, not again on a retry
                    call()
                raw = await self._wait(proto, sent, block_s)
                break
            except RedisConnectionError:
                if attempt == RETRIES:
                    raise
                await asyncio.sleep(delay)
                delay *= 2
        return answers(stack, raw, raise_on_error)

    async def connect(self) -> None:
        """Open the connection now (a first pipeline sent without waiting for its answer then
        leaves at once, not after the connect)."""
        await self._connection()

    async def _wait(
        self, proto: _Protocol, future: asyncio.Future[list[Any]], block_s: float
    ) -> list[Any]:
        if self.timeout_s is None:
            return await future
        try:
            async with asyncio.timeout(self.timeout_s + block_s):
                return await future
        except TimeoutError:
            error = RedisTimeoutError("Timeout reading from Redis")
            proto.fail(error)  # what it still owes could answer the next caller
            raise error from None

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and proto.lost is None:
            return proto
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._proto is None or self._proto.lost is not None:
                self._proto = await self._open()
            return self._proto

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, proto = await loop.create_connection(
                    lambda: _Protocol(self.encoding, self.errors), self.host, self.port
                )
                await self._handshake(proto)
        except TimeoutError:
            raise RedisTimeoutError(f"connect to Redis {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise RedisConnectionError(f"connect to Redis {self.host}:{self.port}: {exc}") from None
        return proto

    async def _handshake(self, proto: _Protocol) -> None:
        hello: list[tuple[Any, ...]] = []
        if self.password is not None:
            user = (self.username,) if self.username else ()
            hello.append(("AUTH", *user, self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        if not hello:
            return
        payload = b"".join([hiredis.pack_command(command) for command in hello])
        for reply in await proto.send(payload, len(hello)):
            if isinstance(reply, hiredis.ReplyError):
                proto.fail(RedisConnectionError("refused"))
                # never the command: it holds the password
                raise BaseParser.parse_error(str(reply))

    async def aclose(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


def _words(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A command as Redis reads it: redis-py names some in two words (``CLIENT SETNAME``)."""
    first = args[0]
    if isinstance(first, str) and " " in first:
        return (*first.split(), *args[1:])
    return tuple(args)


def answers(stack: list[Any], raw: list[Any], raise_on_error: bool) -> list[Any]:
    """redis-py's answers to the commands of ``stack`` from hiredis's replies ``raw``."""
    out: list[Any] = []
    for (args, options), reply in zip(stack, raw, strict=True):
        if isinstance(reply, hiredis.ReplyError):
            out.append(options.get(_EMPTY_RESPONSE, BaseParser.parse_error(str(reply))))
            continue
        callback = _CALLBACKS.get(str(args[0]).upper())
        if callback is not None:
            extra = {k: v for k, v in options.items() if k not in _NOT_FOR_CALLBACKS}
            reply = callback(reply, **extra)
        out.append(reply)
    if raise_on_error:
        for answer in out:
            if isinstance(answer, ResponseError):
                raise answer
    return out


async def run_pipeline(
    pipe: Any,
    direct: DirectRedis | None,
    *,
    raise_on_error: bool = True,
    block_s: float = 0.0,
    on_sent: Callable[[], None] | None = None,
) -> list[Any]:
    """``pipe``'s answers: sent on ``direct`` when there is one, else by redis-py (``on_sent``
    then runs before the send: no overlap, still before the answer)."""
    if direct is not None:
        return await direct.execute(
            pipe, raise_on_error=raise_on_error, block_s=block_s, on_sent=on_sent
        )
    if on_sent is not None:
        on_sent()
    results: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
    return results


def direct_for(redis: Any) -> DirectRedis | None:
    """A direct connection to the Redis ``redis`` talks to, or None when that is not one Redis
    over plain TCP (see the module's doc)."""
    if type(redis) is not aioredis.Redis:  # a cluster client, fakeredis
        return None
    pool = redis.connection_pool
    if pool.connection_class is not Connection:  # TLS, a unix socket, a test's fake
        return None
    return DirectRedis(dict(pool.connection_kwargs))
