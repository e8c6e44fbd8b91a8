"""Cluster-mode key names (DESIGN.md §7): every multi-key write stays in one slot."""

from __future__ import annotations

from redis.crc import key_slot

from common.keys import STREAMS, Keys
from common.sharding import shard_of
from common.stream_read import by_slot

TICKERS = [f"KX-{i}" for i in range(40)]


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_plain_names_do_not_change_without_cluster_mode() -> None:
    k = Keys("dora:", shard_count=4, shard_index=2)
    assert k.book("T") == "dora:book:T" and k.pos("T") == "dora:pos:T"
    assert k.stream("md", "T") == "dora:stream:md" and k.streams("orders") == ["dora:stream:orders"]
    assert k.risk == "dora:risk" and k.fill_ids == "dora:fills:seen"
    assert k.pattern("orders") == "dora:orders:*"


def test_a_markets_quoting_keys_and_its_shards_streams_share_one_slot() -> None:
    k = Keys("dora:", cluster=True, shard_count=3)
    for ticker in TICKERS:
        shard = shard_of(ticker, 3)
        same = {k.book(ticker), k.market(ticker), k.orders(ticker), k.targets(ticker)}
        same |= {k.stream(s, ticker) for s in ("md", "targets", "orders", "decisions")}
        assert {slot(key) for key in same} == {slot(f"{{g{shard}}}")}
        assert k.book(ticker) == f"dora:{{g{shard}}}:book:{ticker}"
        assert k.ticker_of(k.orders(ticker), "orders") == ticker


def test_the_account_ledger_is_one_slot() -> None:
    """What the fills ledger, the restore, the halt record and the config mirror change in one
    MULTI (services/fills/ledger.py, persister/restore.py, common/halt.py, persister/mirror.py)."""
    k = Keys("dora:", cluster=True, shard_count=2)
    ledger = [k.pos(t) for t in TICKERS] + [k.fee_rounding(t) for t in TICKERS]
    ledger += [k.fill_ids, k.fills_meta, k.restored, k.risk, k.stream("fills"), k.stream("pnl")]
    ledger += [k.cfg_global, k.cfg_markets, k.cfg_invalid, k.cfg_market("T")]
    assert len({slot(key) for key in ledger}) == 1
    assert k.ticker_of(k.pos("A-B"), "pos") == "A-B"


def test_a_shard_process_reads_its_own_streams() -> None:
    k = Keys("dora:", cluster=True, shard_count=2, shard_index=1)
    assert k.stream("md") == "dora:{g1}:stream:md"
    assert k.streams("orders") == ["dora:{g0}:stream:orders", "dora:{g1}:stream:orders"]
    assert k.streams("fills") == ["dora:{acct}:stream:fills"]
    assert {k.stream_name(key) for key in k.streams("md")} == {"md"}
    assert k.pattern("orders") == "dora:{g*}:orders:*" and k.pattern("pos") == "dora:{acct}:pos:*"
    assert all(k.stream(s) for s in STREAMS)


def test_shard_tags_land_on_different_masters_of_an_even_three_way_split() -> None:
    """The justification of the tag names: ``{g0}``, ``{g1}``, ``{g2}`` and ``{acct}`` fall in
    three different thirds of the slots (redis-cli --cluster create splits evenly), so two shards
    and the account use every master of the demo's cluster."""
    third = {f"{{g{i}}}": slot(f"{{g{i}}}") * 3 // 16384 for i in range(3)}
    assert len(set(third.values())) == 3
    assert third["{g0}"] != slot("{acct}") * 3 // 16384 != third["{g1}"]


def test_reads_are_grouped_by_slot_hot_stream_first() -> None:
    k = Keys("dora:", cluster=True, shard_count=2, shard_index=0)
    ids = {k.stream("md"): "1-0", k.stream("fills"): "2-0", k.stream("targets"): "3-0"}
    groups = by_slot(ids)
    assert groups == [
        {k.stream("md"): "1-0", k.stream("targets"): "3-0"},
        {k.stream("fills"): "2-0"},
    ]
