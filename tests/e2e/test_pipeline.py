"""The whole pipeline under the repository's supervisord.conf against the simulator (issue 6).

One stack for the module: Redis, moto, the simulator and all six processes on 20 markets with a
tight inventory cap (10 contracts, 5 per quote) so the cap really binds. The tests run in order
and share a watcher that polls the exchange's truth the whole time: never two resting orders on
one market side, never a position beyond the cap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis

from cli.devstack import SERVICES, LocalStack, StackConfig
from common.keys import Keys
from common.numbers import parse_count
from common.redis_codec import decode_market, decode_position
from tests.e2e.stack_watch import ExchangeWatcher, two_sided_markets, wait_until

CAP_CONTRACTS = 10
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    base: Path = tmp_path_factory.mktemp("stack")
    s = LocalStack(
        StackConfig(
            base_dir=base,
            markets=20,
            seed=7,
            market_overrides={
                "max_inventory_yes": str(CAP_CONTRACTS),
                "max_inventory_no": str(CAP_CONTRACTS),
                "quote_size": "5",
            },
        )
    )
    s.start(processes=False)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def watcher(stack: LocalStack) -> Iterator[ExchangeWatcher]:
    with ExchangeWatcher(stack.control_url, stack.config.key_id, cap=CAP_CONTRACTS * 100) as w:
        yield w
    print(
        f"\nwatcher: {w.found.polls} polls, max |position| "
        f"{max(w.found.max_abs_position.values(), default=0) / 100:.0f} contracts (cap {CAP_CONTRACTS})"
    )
    assert w.found.duplicate_side == []
    assert w.found.over_cap == []


@pytest.fixture(scope="module")
def r(stack: LocalStack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url, decode_responses=True)


def quoting(watcher: ExchangeWatcher, at_least: int = 10) -> bool:
    return len(two_sided_markets(watcher.account())) >= at_least


def test_two_sided_quotes_within_5_s_of_start(stack: LocalStack, watcher: ExchangeWatcher) -> None:
    started = time.monotonic()
    stack.start_supervisord()
    took = wait_until(lambda: quoting(watcher), 15)
    assert took is not None, f"two-sided markets: {sorted(two_sided_markets(watcher.account()))}"
    since_start = time.monotonic() - started
    print(f"\ntwo-sided quotes on >=10/20 markets {since_start:.2f}s after supervisord start")
    assert since_start <= 5.0


def test_fills_arrive_and_positions_stay_within_caps(watcher: ExchangeWatcher) -> None:
    assert wait_until(lambda: watcher.account()["fills"] >= 5, 60), "fewer than 5 fills in 60 s"


def test_restart_each_process_while_trading(stack: LocalStack, watcher: ExchangeWatcher) -> None:
    for service in SERVICES:
        out = stack.supervisorctl("restart", service)
        assert "started" in out.stdout, out.stdout + out.stderr
        time.sleep(1.5)
    assert wait_until(lambda: quoting(watcher), 15), "quotes did not come back after the restarts"


def test_a_paused_market_is_not_quoted(
    stack: LocalStack, watcher: ExchangeWatcher, r: redis.Redis
) -> None:
    ticker = sorted(two_sided_markets(watcher.account()))[0]
    stack.sim_post(f"/markets/{ticker}/pause")
    paused_ms = stack.sim_get("/stats")["now_ms"]
    assert wait_until(
        lambda: decode_market(ticker, r.hgetall(f"dora:market:{ticker}")).status == "inactive", 2
    )
    time.sleep(2)
    log = stack.sim_get("/orders", key_id=stack.config.key_id, since_ms=paused_ms)["orders"]
    assert [o for o in log if o["ticker"] == ticker] == []
    assert all(o["ticker"] != ticker for o in watcher.account()["resting_orders"])
    stack.sim_post(f"/markets/{ticker}/resume")
    assert wait_until(lambda: ticker in two_sided_markets(watcher.account()), 10), (
        "not quoted after resume"
    )


def test_a_silent_executor_has_its_orders_cancelled_by_risk(
    stack: LocalStack, watcher: ExchangeWatcher
) -> None:
    assert stack.supervisorctl("stop", "executor").returncode == 0
    took = wait_until(lambda: not watcher.account()["resting_orders"], 15, interval_s=0.1)
    assert took is not None, "orders still resting 15 s after the executor stopped"
    print(f"executor stopped: risk cancelled everything {took:.1f}s later")
    assert stack.supervisorctl("start", "executor").returncode == 0
    assert wait_until(lambda: quoting(watcher), 15), "quotes did not come back with the executor"


def test_halt_contract(stack: LocalStack, watcher: ExchangeWatcher, r: redis.Redis) -> None:
    r.publish("dora:control", "halt")
    took = wait_until(lambda: not watcher.account()["resting_orders"], 5, interval_s=0.02)
    assert took is not None, "orders still resting 5 s after the halt"
    print(f"halt: zero resting orders {took * 1000:.0f} ms after PUBLISH dora:control halt")
    assert took <= 1.0
    halted_ms = stack.sim_get("/stats")["now_ms"]
    # durable: it survives a restart of every process, and nothing is accepted meanwhile
    for service in ("executor", "risk", "strategy"):
        stack.supervisorctl("restart", service)
    time.sleep(3)
    assert r.hget("dora:risk", "halted") == "1"
    assert stack.sim_get("/orders", key_id=stack.config.key_id, since_ms=halted_ms)["orders"] == []
    assert not watcher.account()["resting_orders"]


def test_positions_in_redis_equal_the_exchange(
    stack: LocalStack, watcher: ExchangeWatcher, r: redis.Redis
) -> None:
    keys = Keys()
    account = watcher.account()
    theirs = {
        t: parse_count(p["position_fp"], signed=True) for t, p in account["positions"].items()
    }
    ours = {
        keys.ticker_of(k, "pos"): decode_position("x", r.hgetall(k)).position
        for k in r.scan_iter("dora:pos:*")
    }
    assert {t: v for t, v in ours.items() if v} == {t: v for t, v in theirs.items() if v}


def test_every_fill_once_in_the_trade_log(stack: LocalStack, watcher: ExchangeWatcher) -> None:
    dynamo = boto3.client(
        "dynamodb",
        endpoint_url=stack.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    exchange_fills = watcher.account()["fills"]

    def logged_fills() -> int:
        paginator = dynamo.get_paginator("scan")
        fill_ids = [
            i["fill_id"]["S"]
            for page in paginator.paginate(TableName="dora_trade_log")
            for i in page["Items"]
            if "fill_id" in i
        ]
        assert len(fill_ids) == len(set(fill_ids)), "a fill is in the trade log twice"
        return len(fill_ids)

    assert wait_until(lambda: logged_fills() == exchange_fills, 20, 0.5) is not None, (
        f"trade log has {logged_fills()} fills, the exchange {exchange_fills}"
    )


def test_no_client_order_id_was_sent_twice(stack: LocalStack) -> None:
    log = stack.sim_get("/orders", key_id=stack.config.key_id)["orders"]
    coids = [o["client_order_id"] for o in log]
    assert len(coids) == len(set(coids)) and len(coids) > 20
