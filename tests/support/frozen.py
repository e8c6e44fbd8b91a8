"""A Redis that does not answer: connections are accepted (by the kernel, as for a SIGSTOPped
redis-server) and everything sent is swallowed, never answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def frozen_redis() -> AsyncIterator[int]:
    """The port of a server that takes connections and never replies."""
    peers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in peers:
            writer.close()
        server.close()
