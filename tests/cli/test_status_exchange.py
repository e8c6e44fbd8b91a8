"""``dora status`` shows the exchange's state and next pause (``dora:exchange``) and why a
market is not quoted (``dora:market:{t}``'s ``unquotable_reason``), in text and in JSON."""

from __future__ import annotations

import orjson
import redis

from common.calendar import ExchangeState, Pause, QuotingState
from common.config import MarketConfig
from common.domain import MarketMeta, MarketStatus
from common.grid import PriceGrid
from common.keys import Keys
from common.redis_codec import encode_exchange, encode_market, encode_market_config
from tests.support.procs import run_dora

START, END = 1_893_657_600_000, 1_893_664_800_000  # Thursday 2030-01-03 08:00-10:00 UTC (03:00 ET)


def test_status_shows_the_exchange_and_why_a_market_is_not_quoted(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    r.sadd(k.cfg_markets, "KX-1")
    r.hset(
        k.cfg_market("KX-1"), mapping=encode_market_config(MarketConfig("KX-1", enabled=True), 1)
    )
    meta = MarketMeta(
        "KX-1",
        MarketStatus.UNKNOWN,
        0,
        PriceGrid.linear_cent(),
        problem="unknown market status 'x'",
    )
    r.hset(k.market("KX-1"), mapping=encode_market(meta))
    state = ExchangeState(trading_active=False, next_pause=Pause(START, END, "schedule"))
    r.hset(
        k.exchange, mapping=encode_exchange(state, QuotingState(False, "trading inactive", None))
    )
    status = orjson.loads(run_dora("status", "--json", env={"DORA_REDIS_URL": redis_url}).stdout)
    assert status["exchange"]["next_pause_start_ms"] == START and not status["exchange"]["quoting"]
    assert status["markets"][0]["unquotable"] == "unknown market status 'x'"
    text = run_dora("status", env={"DORA_REDIS_URL": redis_url}).stdout
    assert "exchange: TRADING PAUSED" in text and "next pause Thu 08:00:00 UTC" in text
    assert "quotes pulled: trading inactive" in text
    assert "NOT QUOTED: unknown market status 'x'" in text
