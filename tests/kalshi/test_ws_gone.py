"""The WebSocket client and Kalshi's 3.34 feed (CHANGES-3.34.md): error codes 10 and 25 (the
subscription is gone: subscribe again, books stale until their new snapshots), sequenced
lifecycle messages whose gap never loses the message that revealed it, and fee updates."""

from __future__ import annotations

import orjson

from common.kalshi.ws import BookStale, FeedGap, FeeUpdate, LifecycleEvent
from tests.kalshi.test_ws import FakeFeed, client, feed, until

__all__ = ["feed"]  # the fixture


async def frame(feed: FakeFeed, data: dict[str, object]) -> None:
    for ws in list(feed.conns):
        await ws.send(orjson.dumps(data).decode())


async def test_code_25_on_the_book_subscription_resubscribes_and_books_wait_for_snapshots(
    feed: FakeFeed,
) -> None:
    async with client(feed) as (ws, rec):
        subscribes = sum(c["cmd"] == "subscribe" for c in feed.commands)
        await frame(feed, {"type": "error", "sid": 1, "msg": {"code": 25, "msg": "overflow"}})
        await until(lambda: any("code 25" in e.reason for e in rec.of(BookStale)))
        assert {e.ticker for e in rec.of(BookStale) if "code 25" in e.reason} == {"A", "B"}
        await until(lambda: sum(c["cmd"] == "subscribe" for c in feed.commands) > subscribes)
        assert await ws.wait_fresh(["A", "B"], 3.0)  # fresh again only from the new snapshots
        assert ws.yes_book("A") == feed.book("A")
        await feed.delta("A", True, 4000, 100)  # and the new subscription's deltas apply
        await until(lambda: ws.yes_book("A") == feed.book("A"))


async def test_code_10_on_the_lifecycle_subscription_resubscribes_and_reports_the_gap(
    feed: FakeFeed,
) -> None:
    async with client(feed, lifecycle=True) as (ws, rec):
        await until(lambda: 2 in ws._sid_channel)
        await frame(feed, {"type": "error", "sid": 2, "msg": {"code": 10, "msg": "channel error"}})
        await until(lambda: bool(rec.of(FeedGap)))
        (gap,) = rec.of(FeedGap)
        assert gap.channel == "market_lifecycle_v2" and "code 10" in gap.reason
        await until(
            lambda: (
                [c["params"]["channels"] for c in feed.commands if c["cmd"] == "subscribe"][-1]
                == ["market_lifecycle_v2"]
            )
        )
        assert not ws.is_stale("A")  # the books' subscription was not touched


async def test_a_lifecycle_seq_gap_keeps_the_message_that_revealed_it(feed: FakeFeed) -> None:
    async with client(feed, lifecycle=True) as (ws, rec):
        await until(lambda: 2 in ws._sid_channel)
        life = {"market_ticker": "A", "event_type": "activated"}
        await frame(feed, {"type": "market_lifecycle_v2", "sid": 2, "seq": 1, "msg": life})
        determined = {"market_ticker": "A", "event_type": "determined", "result": "yes"}
        await frame(feed, {"type": "market_lifecycle_v2", "sid": 2, "seq": 3, "msg": determined})
        await until(lambda: len(rec.of(LifecycleEvent)) == 2)
        assert [e.event_type for e in rec.of(LifecycleEvent)] == ["activated", "determined"]
        (gap,) = rec.of(FeedGap)
        assert gap.channel == "market_lifecycle_v2" and "1 -> 3" in gap.reason


async def test_event_fee_updates_are_reported(feed: FakeFeed) -> None:
    async with client(feed, lifecycle=True) as (_ws, rec):
        msg = {
            "event_ticker": "E-1",
            "fee_type_override": "margin_market_maker_program_fees",
            "fee_multiplier_override": 0.5,
        }
        await frame(feed, {"type": "event_fee_update", "sid": 2, "seq": 1, "msg": msg})
        await until(lambda: bool(rec.of(FeeUpdate)))
        assert rec.of(FeeUpdate) == [FeeUpdate("E-1", "margin_market_maker_program_fees", 0.5)]
