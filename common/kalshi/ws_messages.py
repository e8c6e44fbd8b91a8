"""What ``KalshiWebSocket`` does with each message it receives (API.md §6, CHANGES-3.34.md).

- ``seq`` is checked per ``sid``. A gap on the book subscription marks its books stale and asks
  for snapshots (the delta that revealed it is covered by them). A gap on any other sequenced
  subscription (lifecycle, trades, order groups) never loses the message that revealed it: the
  message is handled, and a ``FeedGap`` says what may have been missed (marketdata refetches the
  markets' state over REST).
- Error codes 10 (channel error) and 25 (buffer overflow) mean the subscription is gone: it is
  subscribed again; its books are stale until their new snapshots, and a ``FeedGap`` is
  reported for the other channels.
- Book levels on the NO side are NO prices with ``use_yes_price`` false and YES prices with it
  true (Kalshi's announced default, after which the flag goes away); either way the book is the
  same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from common.book import BookError, LevelBook
from common.errors import WireError
from common.kalshi.wire import stream
from common.kalshi.ws_events import (
    BookUpdated,
    FeedGap,
    FeeUpdate,
    FillEvent,
    LifecycleEvent,
    OrderGroupEvent,
    UserOrderEvent,
    WsError,
    WsEvent,
    WsStats,
)
from common.log import EventLogger
from common.numbers import ONE_DOLLAR

BOOK_CHANNEL = "orderbook_delta"
LIFECYCLE_CHANNEL = "market_lifecycle_v2"
PRIVATE_CHANNELS = ("fill", "user_orders")
SUBSCRIPTION_GONE = (10, 25)  # channel error, buffer overflow: subscribe again


class WsMessages:
    """The message half of ``KalshiWebSocket`` (the connection half is in ``ws``)."""

    tickers: set[str]
    use_yes_price: bool
    stats: WsStats
    books: dict[str, LevelBook]
    book_seq: dict[str, int]
    book_ms: dict[str, int]
    stale: dict[str, str]
    _sid_channel: dict[int, str]
    _sid_seq: dict[int, int]
    _book_sid: int | None
    _resync_deadline: float | None
    _last_book_msg: float
    snapshot_timeout_s: float
    _log: EventLogger

    def _emit(self, event: WsEvent) -> None:
        raise NotImplementedError

    def _mark_stale(self, ticker: str, reason: str) -> None:
        raise NotImplementedError

    def _send_later(self, send: Callable[[], Coroutine[Any, Any, object]]) -> None:
        raise NotImplementedError

    def _resync(self, tickers: list[str], reason: str) -> None:
        raise NotImplementedError

    async def _subscribe_books(self, tickers: list[str]) -> None:
        raise NotImplementedError

    async def _subscribe_channels(self, channels: list[str]) -> int:
        raise NotImplementedError

    def _on_message(self, raw: str | bytes) -> None:
        self.stats.messages += 1
        try:
            data = orjson.loads(raw)
            kind = data.get("type")
            sid = data.get("sid")
            seq = data.get("seq")
            if (seq is not None and type(seq) is not int) or (
                sid is not None and type(sid) is not int
            ):
                raise WireError(f"sid and seq must be integers, were {sid!r} and {seq!r}")
            in_order = seq is None or sid is None or self._check_seq(sid, seq)
            if kind == "orderbook_delta":
                if in_order:  # after a gap the book waits for its snapshot
                    self._on_delta(data.get("msg"), seq or 0)
            elif kind == "orderbook_snapshot":
                self._on_snapshot(data.get("msg"), seq or 0)
            else:
                self._on_other(kind, sid, data)
        except (WireError, orjson.JSONDecodeError, AttributeError, TypeError) as exc:
            self.stats.wire_errors += 1
            self._log.warning("ws_bad_message", reason=str(exc)[:300])
        except Exception:
            self._log.exception("ws_handler_error")

    def _check_seq(self, sid: int, seq: int) -> bool:
        """True when ``seq`` follows the sid's last one (or is its first)."""
        last = self._sid_seq.get(sid)
        self._sid_seq[sid] = seq
        if last is None or seq == last + 1:
            return True
        self.stats.gaps += 1
        reason = f"seq gap on sid {sid}: {last} -> {seq}"
        if sid == self._book_sid:
            self._resync(list(self.tickers), reason)
        else:
            self._emit(FeedGap(self._sid_channel.get(sid, ""), reason))
        return False

    def _no_side(self, is_yes: bool, price: int) -> int:
        """A level's price as the book keeps it: NO levels in NO prices."""
        return price if is_yes or not self.use_yes_price else ONE_DOLLAR - price

    def _on_delta(self, msg: object, seq: int) -> None:
        ticker, is_yes, price, delta, ts_ms = stream.parse_ws_delta(msg)
        self._last_book_msg = asyncio.get_running_loop().time()
        self.stats.deltas += 1
        if ticker in self.stale:
            return  # waiting for its snapshot
        book = self.books.get(ticker)
        if book is None:
            return
        try:
            book.apply_delta(is_yes, self._no_side(is_yes, price), delta)
        except BookError as exc:
            self._resync([ticker], f"bad delta: {exc}")
            return
        self.book_seq[ticker] = seq
        self.book_ms[ticker] = ts_ms
        self._emit(BookUpdated(ticker, seq, ts_ms))

    def _on_snapshot(self, msg: object, seq: int) -> None:
        ticker, yes, no = stream.parse_ws_snapshot(msg)
        self._last_book_msg = asyncio.get_running_loop().time()
        if ticker not in self.tickers:
            return
        if self.use_yes_price:
            no = [(ONE_DOLLAR - price, size) for price, size in no]
        self.stats.snapshots += 1
        book = self.books.get(ticker)
        if book is None:
            book = self.books[ticker] = LevelBook()
        try:
            book.load_snapshot(yes, no)
        except BookError as exc:
            raise WireError(f"snapshot of {ticker}: {exc}") from None
        was_stale = self.stale.pop(ticker, None) is not None
        if not self.stale:
            self._resync_deadline = None
        self.book_seq[ticker] = seq
        self.book_ms[ticker] = 0
        self._emit(BookUpdated(ticker, seq, 0, snapshot=True, resynced=was_stale))

    def _on_other(self, kind: object, sid: object, data: dict[str, Any]) -> None:
        msg = data.get("msg")
        if kind == "fill":
            self._emit(FillEvent(stream.parse_ws_fill(msg)))
        elif kind == "user_order":
            self._emit(UserOrderEvent(stream.parse_user_order(msg)))
        elif kind == "market_lifecycle_v2":
            if isinstance(msg, dict) and isinstance(msg.get("market_ticker"), str):
                fields = {k: v for k, v in msg.items() if k not in ("market_ticker", "event_type")}
                self._emit(LifecycleEvent(msg["market_ticker"], str(msg.get("event_type")), fields))
        elif kind == "event_fee_update":
            if isinstance(msg, dict) and isinstance(msg.get("event_ticker"), str):
                self._emit(
                    FeeUpdate(
                        msg["event_ticker"],
                        msg.get("fee_type_override"),
                        msg.get("fee_multiplier_override"),
                    )
                )
        elif kind == "order_group_updates":
            if isinstance(msg, dict) and isinstance(msg.get("order_group_id"), str):
                fields = {k: v for k, v in msg.items() if k not in ("order_group_id", "event_type")}
                self._emit(
                    OrderGroupEvent(msg["order_group_id"], str(msg.get("event_type")), fields)
                )
        elif kind == "subscribed":
            if isinstance(msg, dict) and isinstance(msg.get("sid"), int):
                channel = str(msg.get("channel"))
                self._sid_channel[msg["sid"]] = channel
                self._sid_seq.pop(msg["sid"], None)  # a new subscription counts from its start
                if channel == BOOK_CHANNEL:
                    self._book_sid = msg["sid"]
        elif kind == "unsubscribed":
            if isinstance(sid, int):
                self._sid_channel.pop(sid, None)
                self._sid_seq.pop(sid, None)
                if sid == self._book_sid:
                    self._book_sid = None
        elif kind == "error":
            self._on_error(sid, msg)

    def _on_error(self, sid: object, msg: object) -> None:
        info = msg if isinstance(msg, dict) else {}
        code = info.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else 0
        text = str(info.get("msg", ""))
        self._log.warning("ws_error", code=code, reason=text)
        self._emit(WsError(code, text, str(info.get("market_ticker") or "")))
        if code not in SUBSCRIPTION_GONE:
            return
        if not isinstance(sid, int):
            sid = info.get("sid")
        channel = self._sid_channel.pop(sid, None) if isinstance(sid, int) else None
        if isinstance(sid, int):
            self._sid_seq.pop(sid, None)
        reason = f"subscription gone (code {code}): {text}"[:200]
        if channel is None:
            # which subscription is not said: every one is subscribed again
            channels = [c for c in set(self._sid_channel.values()) if c != BOOK_CHANNEL]
            self._sid_channel.clear()
            self._sid_seq.clear()
            self._resubscribe_books(reason)
            for gone in channels:
                self._emit(FeedGap(gone, reason))
            if channels:
                self._send_later(lambda: self._subscribe_channels(channels))
            return
        if channel == BOOK_CHANNEL:
            self._resubscribe_books(reason)
            return
        self._emit(FeedGap(channel, reason))
        self._send_later(lambda: self._subscribe_channels([channel]))

    def _resubscribe_books(self, reason: str) -> None:
        """The book subscription is gone: every book is stale until its new snapshot."""
        self._book_sid = None
        for ticker in self.tickers:
            self.stale.pop(ticker, None)
            self._mark_stale(ticker, reason)
        tickers = sorted(self.tickers)
        if tickers:
            # snapshots must follow; if they do not (a server that kept the old subscription
            # and merged), the watchdog reconnects as after a gap
            if self._resync_deadline is None:
                self._resync_deadline = asyncio.get_running_loop().time() + self.snapshot_timeout_s
            self._send_later(lambda: self._subscribe_books(tickers))
