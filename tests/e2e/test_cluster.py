"""dora on a local Redis Cluster with two strategy/executor shard hosts (issue 23, DESIGN.md §7).

One stack for the module: three masters with one replica each, the core host (persister, risk,
marketdata, fills, web) and two shard hosts (strategy + executor each, their own supervisord),
16 markets under a tight inventory cap. A watcher polls the exchange's truth the whole time:
never two resting orders on one market side, never a position beyond the cap, whichever shard
quotes the market.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from cli.devstack import LocalStack, StackConfig
from common.numbers import parse_count
from common.redis_codec import decode_position
from common.sharding import shard_of
from tests.e2e.stack_watch import ExchangeWatcher, two_sided_markets, wait_until

CAP_CONTRACTS = 10
SHARDS = 2
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("redis-cli") is None, reason="redis-cli is needed to create a local cluster"
    ),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    base: Path = tmp_path_factory.mktemp("cluster")
    s = LocalStack(
        StackConfig(
            base_dir=base,
            markets=16,
            seed=11,
            cluster=True,
            shards=SHARDS,
            market_overrides={
                "max_inventory_yes": str(CAP_CONTRACTS),
                "max_inventory_no": str(CAP_CONTRACTS),
                "quote_size": "5",
            },
        )
    )
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def watcher(stack: LocalStack) -> Iterator[ExchangeWatcher]:
    with ExchangeWatcher(stack.control_url, stack.config.key_id, cap=CAP_CONTRACTS * 100) as w:
        yield w
    assert w.found.duplicate_side == []
    assert w.found.over_cap == []


@pytest.fixture(scope="module")
def rc(stack: LocalStack) -> redis.RedisCluster:
    client: redis.RedisCluster = stack.sync_redis()
    return client


def by_shard(tickers: set[str]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {i: set() for i in range(SHARDS)}
    for ticker in tickers:
        out[shard_of(ticker, SHARDS)].add(ticker)
    return out


def test_every_shard_quotes_its_markets(stack: LocalStack, watcher: ExchangeWatcher) -> None:
    assert set(stack.process_states()) >= {"strategy@0", "executor@0", "strategy@1", "executor@1"}
    info = stack.info()  # what dora demo --cluster writes to var/demo.json (DESIGN.md §8)
    assert info["redis_cluster"] is True and len(info["redis_nodes"]) == 6
    assert info["env"]["DORA_REDIS_CLUSTER"] == "true" and info["redis_url"] in info["redis_nodes"]
    mine = by_shard(set(stack.tickers))
    assert all(mine.values()), f"a shard owns no market: {mine}"

    def every_shard_quoting() -> bool:
        quoted = by_shard(two_sided_markets(watcher.account()))
        return all(len(quoted[i]) * 2 >= len(mine[i]) for i in range(SHARDS))

    assert wait_until(every_shard_quoting, 20) is not None, (
        f"two-sided by shard: {by_shard(two_sided_markets(watcher.account()))} of {mine}"
    )


def test_each_shard_writes_its_own_streams(stack: LocalStack, rc: redis.RedisCluster) -> None:
    for index in range(SHARDS):
        keys = stack.keys(index)
        assert wait_until(lambda k=keys: rc.xlen(k.stream("targets")) > 0, 10) is not None
        assert wait_until(lambda k=keys: rc.xlen(k.stream("orders")) > 0, 10) is not None
        # a shard's targets are only its own markets'
        for _, fields in rc.xrevrange(keys.stream("targets"), count=50):
            assert shard_of(_ticker(fields), SHARDS) == index


def _ticker(fields: dict[str, str]) -> str:
    from common.messages import decode_event

    _, payload = decode_event(fields)
    return str(payload["ticker"])


def test_fills_arrive_and_positions_stay_within_caps(watcher: ExchangeWatcher) -> None:
    assert wait_until(lambda: watcher.account()["fills"] >= 3, 45), "fewer than 3 fills in 45 s"


def test_the_exposure_cap_holds_across_shards_with_the_ledger(
    stack: LocalStack, watcher: ExchangeWatcher, rc: redis.RedisCluster
) -> None:
    """``max_total_exposure`` set to the exchange's worst case now + $6 while both shards trade:
    for 15 s the worst case from the exchange's own orders and positions never passes it. Both
    shards reserve from the one ledger in the account's slot (no 1/N share each)."""
    from common.numbers import format_money
    from tests.e2e.test_limits import worst_case

    keys = stack.keys()
    before = rc.hget(keys.cfg_global, "max_total_exposure") or "0"
    cap = worst_case(watcher.account()) + 6_000_000
    stack._cli("config", "set", f"max_total_exposure={format_money(cap, 2)}")
    try:
        worst, started = 0, time.monotonic()
        while time.monotonic() - started < 15:
            worst = max(worst, worst_case(watcher.account()))
            time.sleep(0.05)
        ledger = rc.hgetall(keys.ledger)
        print(f"\ncap ${cap / 1e6:.2f}: worst case at the exchange ${worst / 1e6:.2f}")
        assert worst <= cap
        tickers = {name.split(":", 1)[1] for name in ledger if name[:4] in ("pos:", "bid:", "ask:")}
        assert all(by_shard(tickers).values()), f"not every shard is in the ledger: {tickers}"
        assert int(ledger["total"]) > 0
    finally:
        stack._cli("config", "set", f"max_total_exposure={before}")


def test_keys_are_spread_over_every_master(stack: LocalStack) -> None:
    masters = stack.cluster.masters_now()
    assert len(masters) == 3
    counts = {}
    for node in masters:
        plain = redis.Redis(port=node.port, decode_responses=True)
        counts[node.port] = sum(1 for _ in plain.scan_iter("dora:*", count=500))
        plain.close()
    assert all(n > 0 for n in counts.values()), counts
    keys = stack.keys()
    # the hot per-market keys of the two shards and the account's ledger: three masters
    homes = {
        stack.cluster.master_of(key_slot(key.encode())).port
        for key in (keys.book(_of_shard(stack, 0)), keys.book(_of_shard(stack, 1)), keys.risk)
    }
    assert len(homes) == 3, counts


def _of_shard(stack: LocalStack, index: int) -> str:
    return next(t for t in stack.tickers if shard_of(t, SHARDS) == index)


def test_positions_in_redis_equal_the_exchange(
    stack: LocalStack, watcher: ExchangeWatcher, rc: redis.RedisCluster
) -> None:
    """Both shards go on trading here, so one look can catch a fill the exchange has made and
    the fills process has not yet applied (or the other way round, the two reads a moment
    apart): the two must agree within a few seconds. A fill counted twice or lost never heals
    (nothing sets positions from the exchange's while the fills process runs)."""
    keys = stack.keys()
    seen: list[tuple[dict[str, int], dict[str, int]]] = []

    def agree() -> bool:
        theirs = {
            t: parse_count(p["position_fp"], signed=True)
            for t, p in watcher.account()["positions"].items()
        }
        ours = {
            keys.ticker_of(k, "pos"): decode_position("x", rc.hgetall(k)).position
            for k in rc.scan_iter(match=keys.pattern("pos"))
        }
        seen.append(({t: v for t, v in ours.items() if v}, {t: v for t, v in theirs.items() if v}))
        return seen[-1][0] == seen[-1][1]

    assert wait_until(agree, 10, 0.2) is not None, f"ours, theirs at the last look: {seen[-1]}"


def test_a_master_killed_while_trading_fails_over_and_trading_goes_on(
    stack: LocalStack, watcher: ExchangeWatcher
) -> None:
    """SIGKILL the master holding shard 0's keys (its books, targets and streams): its replica
    is promoted, and shard 0 quotes again with orders accepted after the failover."""
    shard0 = by_shard(set(stack.tickers))[0]
    slot = key_slot(stack.keys(0).stream("md").encode())
    dead = stack.cluster.kill_master(slot)
    killed_ms = stack.sim_get("/stats")["now_ms"]
    promoted = stack.cluster.wait_promoted(slot, dead)
    print(f"\nmaster :{dead.port} killed, replica :{promoted.port} promoted")
    stack.cluster.start_node(dead.port)  # it rejoins as a replica

    def shard0_trading_again() -> bool:
        orders = stack.sim_get("/orders", key_id=stack.config.key_id, since_ms=killed_ms)
        placed = {o["ticker"] for o in orders["orders"]} & shard0
        quoted = two_sided_markets(watcher.account()) & shard0
        return bool(placed) and len(quoted) * 2 >= len(shard0)

    took = wait_until(shard0_trading_again, 30, interval_s=0.2)
    assert took is not None, "shard 0 did not trade again within 30 s of the failover"
    print(f"shard 0 quoting again {took:.1f}s after the promotion")
    states = stack.process_states()
    assert all(states[p] == "RUNNING" for p in stack.expected_processes()), states


def test_halt_from_any_node_clears_every_shard_within_1_s(
    stack: LocalStack, watcher: ExchangeWatcher, rc: redis.RedisCluster
) -> None:
    mine = by_shard(set(stack.tickers))
    assert wait_until(lambda: all(by_shard(two_sided_markets(watcher.account())).values()), 15), (
        "not every shard was quoting before the halt"
    )
    # a plain client on the last node (a replica): PUBLISH reaches every node of the cluster
    node = redis.Redis(port=stack.cluster.ports[-1], decode_responses=True)
    node.publish("dora:control", "halt")
    node.close()
    took = wait_until(lambda: not watcher.account()["resting_orders"], 5, interval_s=0.02)
    assert took is not None, f"orders still resting 5 s after the halt: {mine}"
    print(f"\ncluster halt: zero resting orders on both shards {took * 1000:.0f} ms later")
    assert took <= 1.0
    halted_ms = stack.sim_get("/stats")["now_ms"]
    time.sleep(2)
    assert rc.hget(stack.keys().risk, "halted") == "1"
    assert stack.sim_get("/orders", key_id=stack.config.key_id, since_ms=halted_ms)["orders"] == []
