import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.book import BookState, YesBook
from common.config import GlobalConfig, MarketConfig
from common.domain import (
    MarketMeta,
    MarketStatus,
    Order,
    OrderStatus,
    Position,
    Quote,
    RiskState,
    Side,
    Targets,
)
from common.errors import SchemaError
from common.grid import PriceGrid
from common.messages import decode_event, encode_event, parse_control
from common.redis_codec import (
    decode_book,
    decode_global_config,
    decode_market,
    decode_market_config,
    decode_order,
    decode_position,
    decode_risk,
    decode_targets,
    encode_book,
    encode_global_config,
    encode_market,
    encode_market_config,
    encode_order,
    encode_position,
    encode_risk,
    encode_targets,
)


def test_round_trips() -> None:
    book = BookState(
        "T", YesBook(((4000, 100),), ((4200, 50), (4300, 7))), 9, 1, 2, True, "seq_gap"
    )
    assert decode_book("T", encode_book(book)) == book
    meta = MarketMeta("T", MarketStatus.ACTIVE, 99, PriceGrid.linear_cent(), updated_ms=5)
    assert decode_market("T", encode_market(meta)) == meta
    pos = Position("T", -300, -1_500_000, 20, 7, 123)
    assert decode_position("T", encode_position(pos)) == pos
    order = Order("T", Side.ASK, 5500, 1000, "c1", "o1", OrderStatus.RESTING, 100, 900, 1, 2)
    assert decode_order(encode_order(order)) == order
    targets = Targets("T", Quote(Side.BID, 4100, 500, "join"), None, "ok", 10, 9, 4200)
    assert decode_targets("T", encode_targets(targets)) == targets
    mc = MarketConfig("T", enabled=True)
    assert decode_market_config("T", encode_market_config(mc, 3)) == mc
    gc = GlobalConfig(loop_interval_ms=250)
    assert decode_global_config(encode_global_config(gc, 1)) == gc
    risk = RiskState(True, "halt", 1, -5, -2, -3, 4, 9, "2026-11-24", 7)
    assert decode_risk(encode_risk(risk)) == risk
    assert decode_event(encode_event("fill", {"a": 1})) == ("fill", {"a": 1})


def test_hash_values_are_plain_strings() -> None:
    fields = encode_book(BookState("T", YesBook(), 0, 0, 0, False))
    assert all(isinstance(v, str) for v in fields.values())


@pytest.mark.parametrize(
    ("message", "cmd", "reason"),
    [
        ("halt", "halt", ""),
        ("HALT fat finger", "halt", "fat finger"),
        ('{"cmd":"halt","reason":"ops"}', "halt", "ops"),
        (b"resume", "resume", ""),
        ("reload", "reload", ""),
    ],
)
def test_control_messages(message: str | bytes, cmd: str, reason: str) -> None:
    parsed = parse_control(message)
    assert (parsed.cmd, parsed.reason) == (cmd, reason)


@given(st.one_of(st.text(), st.binary()))
def test_control_garbage_is_an_error_never_a_crash(message: str | bytes) -> None:
    with contextlib.suppress(SchemaError):
        parse_control(message)


@pytest.mark.parametrize("bad", [{}, {"depth": "{"}, {"depth": '{"bids": [[1]]}'}])
def test_bad_book_hash_is_a_schema_error(bad: dict[str, str]) -> None:
    with pytest.raises(SchemaError):
        decode_book("T", bad)


def test_a_market_status_dora_does_not_know_decodes_as_unknown_never_an_error() -> None:
    fields = encode_market(MarketMeta("T", MarketStatus.ACTIVE, 99, PriceGrid.linear_cent()))
    meta = decode_market("T", {**fields, "status": "suspended_for_review"})
    assert meta.status is MarketStatus.UNKNOWN and not meta.is_open
    assert decode_market("T", {k: v for k, v in fields.items() if k != "status"}).status == (
        MarketStatus.UNKNOWN
    )


def test_fv_round_trips_and_rejects_what_does_not_read() -> None:
    import pytest as _pytest

    from common.errors import SchemaError
    from common.fair_inputs import ExternalFair
    from common.redis_codec import decode_fv, encode_fv

    value = ExternalFair(6_150, 1_800_000_000_000, 75)
    assert decode_fv(encode_fv(value)) == value
    assert decode_fv({}) is None
    assert decode_fv({"price": "6150", "ts_ms": "5"}) == ExternalFair(6_150, 5, 100)
    for bad in (
        {"price": "x", "ts_ms": "5"},
        {"ts_ms": "5"},
        {"price": "6150", "ts_ms": "5", "confidence": "1.5"},
        {"price": "6150", "ts_ms": "5", "confidence": "high"},
        {"price": "6150", "ts_ms": "5", "confidence": "NaN"},
    ):
        with _pytest.raises(SchemaError):
            decode_fv(bad)


@pytest.mark.parametrize(
    ("fields", "halted"),
    [
        ({"halted": "0"}, False),  # a record with nothing else: never halted
        ({}, False),
        ({"halted": "1", "halted_ms": "5"}, True),
        ({"halted": "0", "halted_ms": "5", "resumed_ms": "0"}, True),  # by hand: no resume
        ({"halted_ms": "5", "resumed_ms": "0"}, True),  # the flag deleted by hand
        # written before resumes left a mark (no resumed_ms at all): the flag is believed
        ({"halted": "0", "halted_ms": "5"}, False),
        ({"halted": "1", "halted_ms": "5"}, True),
        ({"halted": "0", "halted_ms": "5", "resumed_ms": "6"}, False),  # a resume after it
        ({"halted": "0", "halted_ms": "5", "resumed_ms": "5"}, True),  # not after it
        ({"halted": "1", "halted_ms": "5", "resumed_ms": "6"}, True),  # the flag says so
    ],
)
def test_only_a_resume_recorded_after_the_halt_lifts_it(
    fields: dict[str, str], halted: bool
) -> None:
    assert decode_risk(fields).halted is halted
