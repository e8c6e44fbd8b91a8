"""The WebSocket message handler (``KalshiWebSocket._on_message``) under fuzzed frames: bytes
that are not JSON, JSON that is not an object, known message types with junk inside, seq
numbers of the wrong type. A bad frame is counted (``stats.wire_errors``) and logged, never
raised, never sent to the catch-all ``ws_handler_error`` (which would mean a parser let a
non-WireError out); and the socket goes on: a snapshot afterwards gives a correct book."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.kalshi.signing import signer_from_pem
from common.kalshi.ws import BOOK_CHANNEL, KalshiWebSocket
from tests.fuzz.strategies import JUNK, mutated
from tests.kalshi.test_signing import ed_pem
from tests.kalshi.test_wire import USER_ORDER, WS_FILL

SIGNER = signer_from_pem("kid", ed_pem()[1])
SNAPSHOT = {
    "market_ticker": "A",
    "yes_dollars_fp": [["0.4000", "5.00"], ["0.4100", "3.00"]],
    "no_dollars_fp": [["0.5700", "2.00"]],
}
DELTA = {"market_ticker": "A", "side": "yes", "price_dollars": "0.4000", "delta_fp": "-1.00"}
VALID_FRAMES: list[dict[str, Any]] = [
    {"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": SNAPSHOT},
    {"type": "orderbook_delta", "sid": 1, "seq": 2, "msg": DELTA},
    {"type": "fill", "sid": 2, "msg": WS_FILL},
    {"type": "user_order", "sid": 3, "msg": USER_ORDER},
    {
        "type": "market_lifecycle_v2",
        "sid": 4,
        "msg": {"market_ticker": "A", "event_type": "paused"},
    },
    {
        "type": "order_group_updates",
        "sid": 5,
        "seq": 1,
        "msg": {"order_group_id": "g", "event_type": "triggered"},
    },
    {"type": "subscribed", "id": 1, "msg": {"sid": 1, "channel": BOOK_CHANNEL}},
    {"type": "unsubscribed", "sid": 9, "seq": 3},
    {"type": "error", "id": 2, "msg": {"code": 6, "msg": "already subscribed"}},
    {"type": "error", "id": 3, "sid": 1, "msg": {"code": 25, "msg": "buffer overflow"}},
    {"type": "event_fee_update", "sid": 4, "seq": 2, "msg": {"event_ticker": "E"}},
    {"type": "ok", "sid": 1, "seq": 3, "msg": {}},
]
FRAME = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60),
    JUNK.map(json.dumps),
    mutated(st.sampled_from(VALID_FRAMES)).map(json.dumps),
)


class Recorder:
    def __init__(self) -> None:
        self.crashes: list[str] = []
        self.warnings = 0

    def exception(self, event: str, **fields: Any) -> None:
        self.crashes.append(event)

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings += 1

    def info(self, event: str, **fields: Any) -> None:
        pass


def fresh_socket() -> tuple[KalshiWebSocket, Recorder, list[Any]]:
    events: list[Any] = []
    ws = KalshiWebSocket(
        "ws://127.0.0.1:9/trade-api/ws/v2",
        SIGNER,
        tickers=["A"],
        on_event=events.append,
        use_yes_price=False,  # SNAPSHOT's NO levels are in NO prices
    )
    log = Recorder()
    ws._log = log  # type: ignore[assignment]
    ws._on_message(
        json.dumps({"type": "subscribed", "id": 1, "msg": {"sid": 1, "channel": BOOK_CHANNEL}})
    )
    return ws, log, events


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(FRAME, min_size=1, max_size=8))
def test_bad_frames_are_counted_and_the_socket_goes_on(frames: list[str | bytes]) -> None:
    async def go() -> None:
        ws, log, _ = fresh_socket()
        for frame in frames:
            before = ws.stats.wire_errors
            ws._on_message(frame)  # never raises
            assert ws.stats.wire_errors in (before, before + 1)
        assert log.crashes == [], "a frame reached the catch-all: a parser let a non-WireError out"
        # the socket goes on: a fresh snapshot (which skips the seq check) gives the right book
        ws._on_message(
            json.dumps({"type": "orderbook_snapshot", "sid": 1, "seq": 10**6, "msg": SNAPSHOT})
        )
        book = ws.yes_book("A")
        assert book is not None and not ws.is_stale("A")
        assert (book.best_bid, book.best_bid_size, book.best_ask) == (4100, 300, 4300)

    asyncio.run(go())


def test_non_json_and_non_object_frames_are_wire_errors() -> None:
    async def go() -> None:
        ws, log, _ = fresh_socket()
        for frame in (b"\xff\xfe", "not json", "[1, 2]", "42", "null", '"text"'):
            ws._on_message(frame)
        assert ws.stats.wire_errors == 6 and log.warnings == 6 and log.crashes == []

    asyncio.run(go())


def test_a_junk_seq_does_not_poison_the_next_frame() -> None:
    """Found by the fuzzing above: a frame whose ``seq`` was not an integer was stored as the
    sid's last seq, so the next good frame (here the snapshot that resyncs the book) failed on
    ``last + 1`` and was dropped too."""

    async def go() -> None:
        ws, _log, _ = fresh_socket()
        ws._on_message(json.dumps({"type": "orderbook_delta", "sid": 1, "seq": [], "msg": DELTA}))
        assert ws.stats.wire_errors == 1
        ws._on_message(
            json.dumps({"type": "orderbook_snapshot", "sid": 1, "seq": 5, "msg": SNAPSHOT})
        )
        assert ws.stats.wire_errors == 1 and not ws.is_stale("A")

    asyncio.run(go())
