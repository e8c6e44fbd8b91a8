"""dora status, cancel-all and demo: each with good and bad input, as subprocesses."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

from common.book import BookState, YesBook
from common.config import MarketConfig
from common.domain import Position, Side, make_client_order_id
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.wire.orders import OrderRequest
from common.keys import Keys
from common.redis_codec import encode_book, encode_market_config, encode_position
from tests.support.procs import REPO, run_dora
from tests.support.simfix import KEY_ID, StartSim

dora = run_dora


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_status_shows_markets_quotes_positions_and_risk(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    r.sadd(k.cfg_markets, "KX-1")
    r.hset(
        k.cfg_market("KX-1"), mapping=encode_market_config(MarketConfig("KX-1", enabled=True), 1)
    )
    r.hset(
        k.book("KX-1"),
        mapping=encode_book(
            BookState("KX-1", YesBook(((4000, 100),), ((4400, 100),)), 1, 0, 0, False)
        ),
    )
    r.hset(k.pos("KX-1"), mapping=encode_position(Position("KX-1", 300, 1_200_000)))
    r.hset(k.risk, mapping={"halted": "1", "reason": "fat finger", "daily_pnl": "-2500000"})
    r.set(k.hb("executor"), orjson.dumps({"pid": 1, "ts_ms": 1}).decode())
    proc = dora("status", "--json", env={"DORA_REDIS_URL": redis_url})
    assert proc.returncode == 0, proc.stderr
    status = orjson.loads(proc.stdout)
    [market] = status["markets"]
    assert market["ticker"] == "KX-1" and market["position"] == 300 and market["best_ask"] == 4400
    assert status["risk"]["halted"] and status["processes"]["executor"]["alive"]
    assert not status["processes"]["risk"]["alive"]
    text = dora("status", env={"DORA_REDIS_URL": redis_url}).stdout
    assert "HALTED: fat finger" in text and "KX-1" in text and "daily PnL -$2.50" in text


def test_status_says_trading_is_switched_off(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    env = {"DORA_REDIS_URL": redis_url}
    status = orjson.loads(dora("status", "--json", env=env).stdout)
    assert status["trading_enabled"] is True  # no global config mirrored yet: the default
    r.hset(Keys().cfg_global, mapping={"trading_enabled": "0", "version": "2"})
    status = orjson.loads(dora("status", "--json", env=env).stdout)
    assert status["trading_enabled"] is False
    assert "TRADING DISABLED (trading_enabled=false)" in dora("status", env=env).stdout


def test_status_bad_input() -> None:
    one_line_error(
        dora("status", env={"DORA_REDIS_URL": "redis://127.0.0.1:1/0"}), "cannot reach Redis"
    )
    one_line_error(dora("status", "--colour"), "unrecognized arguments")


@pytest.mark.slow
def test_a_store_that_accepts_but_never_answers_is_one_line_within_seconds() -> None:
    """A listening socket nobody accepts from: the connection is made, no answer ever comes.
    redis-py retried the timed-out read three times (20 s); boto three tries of 5 s (15 s)."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        url = f"127.0.0.1:{server.getsockname()[1]}"
        for argv, env, needle in (
            (("status",), {"DORA_REDIS_URL": f"redis://{url}/0"}, "cannot reach Redis"),
            (("config", "show"), {"DORA_DYNAMODB_ENDPOINT": f"http://{url}"}, "Read timeout"),
        ):
            started = time.monotonic()
            proc = dora(*argv, env=env)
            elapsed_s = time.monotonic() - started
            one_line_error(proc, needle)
            assert elapsed_s < 10, (argv, elapsed_s)


def test_no_redis_cluster_node_answering_is_one_line_too() -> None:
    """redis-py's RedisClusterException (no node reachable) is not a RedisError."""
    env = {"DORA_REDIS_URL": "redis://127.0.0.1:1/0", "DORA_REDIS_CLUSTER": "true"}
    for command in ("status", "halt", "resume"):
        one_line_error(dora(command, env=env), "cannot reach Redis")


async def test_cancel_all_cancels_everything_at_the_exchange(
    start_sim: StartSim, signer: Signer, sim_keys: tuple[Path, bytes, bytes]
) -> None:
    running = await start_sim()
    client = KalshiClient.create(running.rest_url, signer)
    ticker = (await client.get_markets())[0].ticker
    for n in range(3):
        await client.place_order(
            OrderRequest(
                ticker,
                Side.BID,
                1000 + 100 * n,
                100,
                make_client_order_id("t", ticker, Side.BID, n),
            )
        )
    assert len(await client.get_open_orders()) == 3
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DORA_")},
        "DORA_KALSHI_ENV": "sim",
        "DORA_KALSHI_BASE_URL": running.rest_url,
        "DORA_KALSHI_KEY_ID": KEY_ID,
        "DORA_KALSHI_PRIVATE_KEY_PATH": str(sim_keys[0]),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "cancel-all",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "cancelled every resting order of subaccount 0; 0 left"
    assert await client.get_open_orders() == []
    await client.aclose()


def test_cancel_all_bad_input() -> None:
    one_line_error(
        dora("cancel-all", env={"DORA_KALSHI_KEY_ID": "k"}), "no Kalshi private key source"
    )
    one_line_error(
        dora(
            "cancel-all",
            env={"DORA_KALSHI_KEY_ID": "k", "DORA_KALSHI_PRIVATE_KEY_PATH": "/nope.pem"},
        ),
        "/nope.pem",
    )
    with_key = {"DORA_KALSHI_KEY_ID": "k", "DORA_KALSHI_PRIVATE_KEY_PATH": "/nope.pem"}
    one_line_error(
        dora("cancel-all", "--market", "KX 1; rm", env=with_key),
        "--market must be a market ticker",
    )


def test_demo_bad_input() -> None:
    one_line_error(dora("demo", "--headless"), "--headless needs --duration")
    one_line_error(dora("demo", "--markets", "0"), "--markets must be between 1 and 500")
    one_line_error(dora("demo", "--duration", "1"), "--duration must be between 5 and 86400")
    one_line_error(dora("demo", "--markets", "many"), "invalid int value")


def test_demo_refuses_an_unknown_scenario_before_starting_anything() -> None:
    proc = dora("demo", "--scenario", "no-such", "--headless", "--duration", "10")
    one_line_error(proc, "--scenario: unknown scenario 'no-such'")
    assert "starting Redis" not in proc.stdout + proc.stderr


def test_every_command_has_help() -> None:
    listing = dora("--help").stdout
    for command in (
        "demo",
        "sim",
        "status",
        "halt",
        "resume",
        "cancel-all",
        "config",
        "markets",
        "tables",
    ):
        assert command in listing
        proc = dora(command, "--help")
        assert proc.returncode == 0 and "usage: dora" in proc.stdout, command


def test_demo_refuses_a_bad_pause_schedule_in_one_line() -> None:
    one_line_error(
        dora("demo", "--pause-schedule", "sometimes", "--headless", "--duration", "10"),
        "--pause-schedule",
    )
