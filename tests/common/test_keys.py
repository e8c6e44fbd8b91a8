import pytest

from common.keys import Keys


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
