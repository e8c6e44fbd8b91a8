"""``dora status`` with one value corrupted by hand in Redis (a field that is not a number, a key
of the wrong type): that market or panel is marked with the key and the reason, the rest shown as
usual, ``--json`` stays one object with an ``errors`` list. It used to fail whole, one line."""

from __future__ import annotations

import orjson
import pytest
import redis

from common.book import BookState, YesBook
from common.config import MarketConfig
from common.domain import Position
from common.keys import Keys
from common.redis_codec import encode_book, encode_market_config, encode_position
from tests.support.procs import run_dora

K = Keys()
GOOD, BAD = "KX-GOOD", "KX-BAD"


def seed(r: redis.Redis) -> None:
    for ticker in (GOOD, BAD):
        r.sadd(K.cfg_markets, ticker)
        r.hset(
            K.cfg_market(ticker),
            mapping=encode_market_config(MarketConfig(ticker, enabled=True), 1),
        )
        book = BookState(ticker, YesBook(((4000, 100),), ((4400, 100),)), 1, 0, 0, False)
        r.hset(K.book(ticker), mapping=encode_book(book))
        r.hset(K.pos(ticker), mapping=encode_position(Position(ticker, 300, 1_200_000)))
    r.hset(K.risk, mapping={"halted": "0", "daily_pnl": "-2500000"})


def status(redis_url: str) -> tuple[dict[str, object], str]:
    env = {"DORA_REDIS_URL": redis_url}
    proc = run_dora("status", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    text = run_dora("status", env=env)
    assert text.returncode == 0, text.stderr
    return orjson.loads(proc.stdout), text.stdout


@pytest.mark.parametrize(
    ("corrupt", "key"),
    [
        (lambda r: r.hset(K.pos(BAD), "position", "three"), K.pos(BAD)),
        (lambda r: (r.delete(K.pos(BAD)), r.set(K.pos(BAD), "300")), K.pos(BAD)),
        (lambda r: r.rpush(K.targets(BAD), "x"), K.targets(BAD)),
        (lambda r: r.set(K.market(BAD), "closed"), K.market(BAD)),
        (lambda r: (r.delete(K.orders(BAD)), r.sadd(K.orders(BAD), "o")), K.orders(BAD)),
        (lambda r: (r.delete(K.cfg_market(BAD)), r.set(K.cfg_market(BAD), "1")), K.cfg_market(BAD)),
        (lambda r: r.hset(K.book(BAD), "depth", "{not json"), K.book(BAD)),
    ],
    ids=["pos-field", "pos-type", "targets-type", "market-type", "orders-type", "cfg-type", "book"],
)
def test_one_corrupt_market_value_marks_only_that_market(
    redis_url: str, corrupt: object, key: str
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    seed(r)
    corrupt(r)  # type: ignore[operator]
    view, text = status(redis_url)
    markets = {m["ticker"]: m for m in view["markets"]}  # type: ignore[attr-defined]
    assert set(markets) == {GOOD, BAD}
    assert markets[GOOD]["position"] == 300 and markets[GOOD]["corrupt"] == []
    assert markets[GOOD]["best_ask"] == 4400
    assert [e for e in markets[BAD]["corrupt"] if e.startswith(f"{key}: ")], markets[BAD]
    assert any(e.startswith(f"{key}: ") for e in view["errors"])  # type: ignore[attr-defined]
    assert view["risk"]["daily_pnl"] == -2_500_000  # type: ignore[index]
    [bad_line] = [line for line in text.splitlines() if line.startswith(BAD)]
    assert f"CORRUPT: {key}: " in bad_line
    [good_line] = [line for line in text.splitlines() if line.startswith(GOOD)]
    assert "CORRUPT" not in good_line and " 3 " in good_line
    assert "daily PnL -$2.50" in text


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda r: (r.delete(K.risk), r.set(K.risk, "halted")),
        lambda r: r.hset(K.risk, "daily_pnl", "lots"),
    ],
    ids=["risk-type", "risk-field"],
)
def test_an_unreadable_risk_hash_marks_the_risk_panel_and_keeps_the_markets(
    redis_url: str, corrupt: object
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    seed(r)
    corrupt(r)  # type: ignore[operator]
    view, text = status(redis_url)
    risk = view["risk"]
    assert risk["error"].startswith(f"{K.risk}: ")  # type: ignore[index]
    assert risk["error"] in view["errors"]  # type: ignore[index, operator]
    assert [m["position"] for m in view["markets"]] == [300, 300]  # type: ignore[attr-defined]
    assert "risk state UNREADABLE" in text and f"unreadable ({K.risk}: " in text
    assert GOOD in text and BAD in text


def test_unreadable_heartbeat_exchange_and_fills_are_named_and_the_rest_shown(
    redis_url: str,
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    seed(r)
    r.hset(K.hb("executor"), "ts_ms", "1")  # a hash where a string is kept
    r.set(K.hb("risk"), orjson.dumps({"pid": 1, "ts_ms": "yesterday"}).decode())
    r.set(K.exchange, "open")
    r.hset(K.stream("fills"), "type", "fill")
    view, text = status(redis_url)
    errors = view["errors"]
    for key in (K.hb("executor"), K.hb("risk"), K.exchange, K.stream("fills")):
        assert any(e.startswith(f"{key}: ") for e in errors), (key, errors)  # type: ignore[attr-defined]
    assert view["processes"]["executor"]["alive"] is False  # type: ignore[index]
    assert len(view["markets"]) == 2  # type: ignore[arg-type]
    assert "heartbeat of executor unreadable" in text and f"unreadable {K.stream('fills')}" in text


def test_a_wrong_type_market_list_is_named_not_cannot_reach(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    seed(r)
    r.delete(K.cfg_markets)
    r.set(K.cfg_markets, GOOD)
    view, text = status(redis_url)
    assert view["markets"] == [] and view["errors"][0].startswith(f"{K.cfg_markets}: WRONGTYPE")  # type: ignore[index]
    assert "cannot reach" not in text


def test_a_wrongtype_answer_is_not_reported_as_cannot_reach_redis(redis_url: str) -> None:
    """Other commands that meet a key of the wrong type say Redis answered, not that it is down."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.hset(K.risk, "halted", "1")
    r.set(K.stream("pnl"), "resumed")  # ``dora resume`` records on the pnl stream
    proc = run_dora("resume", "--reason", "test", env={"DORA_REDIS_URL": redis_url})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot reach" not in proc.stderr and "WRONGTYPE" in proc.stderr, proc.stderr
    assert "answered with an error" in proc.stderr
