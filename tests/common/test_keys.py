from pathlib import Path

import pytest

from common.keys import STREAMS, Keys


def test_key_names_follow_the_design() -> None:
    k = Keys("dora:")
    assert k.book("KX-1") == "dora:book:KX-1"
    assert k.cfg_market("KX-1") == "dora:cfg:market:KX-1" and k.cfg_global == "dora:cfg:global"
    assert k.stream("fills") == "dora:stream:fills" and k.control == "dora:control"
    assert k.hb("executor") == "dora:hb:executor" and k.risk == "dora:risk"
    assert k.ticker_of(k.pos("A-B"), "pos") == "A-B"
    with pytest.raises(ValueError):
        k.stream("nope")
    assert k.order_groups == "dora:groups"
    assert k.trace_samples == "dora:trace:tick_to_order_us"
    assert Keys("x:").pos("T") == "x:pos:T" and Keys("x:").pattern("pos") == "x:pos:*"


def every_key(keys: Keys) -> list[str]:
    """Each key ``Keys`` builds, with ``{x}`` where a ticker, service or bucket goes."""
    names = [n for n in dir(Keys) if not n.startswith("_")]
    built = []
    skip = {"prefix", "pattern", "ticker_of", "stream", "streams", "stream_name", "shard_prefix"}
    skip |= {"cluster", "shard_count", "shard_index", "acct", "hb_all"}
    for name in sorted(set(names) - skip):
        member = getattr(keys, name)
        built.append(member if isinstance(member, str) else member("{x}"))
    return built + [keys.stream(name) for name in STREAMS]


def test_docs_redis_md_lists_every_key() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "redis.md").read_text()
    keys = every_key(Keys("dora:"))
    assert len(keys) >= 20
    missing = [key for key in keys if f"`{key.split('{')[0]}" not in doc]
    assert missing == []
