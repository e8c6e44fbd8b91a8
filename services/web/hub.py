"""Server-sent events to every open dashboard: a full view on connect, then what changed.

Each browser gets its own small queue. A new subscriber is handed the latest full view at once;
every tick then puts one ``delta`` message (the rows that changed, the small panels whole) on
every queue. A browser that falls behind (its queue full) is dropped: its ``EventSource``
reconnects by itself and starts again from a full view, so nobody is ever shown a view with a
delta missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

QUEUE_MESSAGES = 16  # ~8 s of updates at two a second


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class Hub:
    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[bytes | None]] = set()
        self.wake = asyncio.Event()  # set when a browser connects or a control acted: tick now
        self.dropped = 0

    @property
    def clients(self) -> int:
        return len(self.queues)

    def subscribe(self, full: bytes | None) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_MESSAGES)
        if full is not None:
            queue.put_nowait(full)
        self.queues.add(queue)
        self.wake.set()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.queues.discard(queue)

    def publish(self, message: bytes) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.dropped += 1
        self.queues.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)  # the handler ends the response; the browser reconnects

    def close(self) -> None:
        for queue in list(self.queues):
            self._drop(queue)


class Deltas:
    """What changed between two views: the market rows that changed, and each other part
    (risk, processes, fills, ...) only when it changed."""

    def __init__(self) -> None:
        self.rows: dict[str, Mapping[str, Any]] = {}
        self.panels: dict[str, Any] = {}
        self.seq = 0

    def update(
        self, view: Mapping[str, Any], extra: Mapping[str, Any], full: Callable[[], Any]
    ) -> tuple[bytes, Callable[[], bytes]]:
        """The delta message for ``view`` and a maker of the full message (built only when a
        browser joins)."""
        self.seq += 1
        rows = {row["ticker"]: row for row in view["markets"]}
        changed: Sequence[Mapping[str, Any]] = [
            row
            for ticker, row in rows.items()
            if (seen := self.rows.get(ticker)) is not row and seen != row
        ]
        removed = [ticker for ticker in self.rows if ticker not in rows]
        self.rows = rows
        seq = self.seq
        panels = {**{k: v for k, v in view.items() if k != "markets"}, **extra}
        delta = {k: v for k, v in panels.items() if k not in self.panels or self.panels[k] != v}
        self.panels = panels
        delta.update(seq=seq, markets=changed, removed=removed)
        return sse("delta", delta), lambda: sse("full", {**full(), "seq": seq})
