"""What the processes read back from Redis under bad input: control messages, hashes, working
orders, heartbeats and stream entries (common/redis_codec.py, common/messages.py). Redis holds strings,
so hashes are fuzzed as str -> str maps; JSON values are written with the standard library so that numbers beyond 64 bits and NaN are in them too (real field names with junk values, junk names, encodings of valid
values mutated). The answer is a value or ``SchemaError`` (or ``ConfigError`` for the config
mirror): a documented error the caller logs and skips, never another exception.

Config items themselves (DynamoDB items -> MarketConfig/GlobalConfig) are fuzzed in
tests/persister/test_mirror_fuzz.py; not repeated here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import messages, redis_codec
from common.domain import Order, OrderStatus, Side
from common.errors import ConfigError, SchemaError
from common.marks import Mark, SeenBook
from common.messages import CONTROL_COMMANDS
from tests.fuzz.strategies import JUNK

DOCUMENTED = (SchemaError, ConfigError)

FIELD_NAMES = [
    # book, market, position, targets, risk, fv: every field name decode_* reads
    "price",
    "ts_ms",
    "confidence",
    "best_bid",
    "best_ask",
    "bid_size",
    "ask_size",
    "seq",
    "updated_ms",
    "stale",
    "stale_reason",
    "depth",
    "status",
    "close_ms",
    "grid",
    "fee_type",
    "fee_multiplier_pct",
    "position",
    "cost",
    "realized_pnl",
    "fees",
    "last_fill_ms",
    "bid_price",
    "bid_size",
    "ask_price",
    "bid_reason",
    "ask_reason",
    "reason",
    "computed_ms",
    "book_ms",
    "fair_price",
    "halted",
    "halted_ms",
    "daily_pnl",
    "exposure",
    "checked_ms",
    "version",
    "enabled",
    "quote_size",
    "min_spread",
]
TEXT_VALUE = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", "1", "0", "-1", "nan", "inf", "1e400", "0x10", " 5 ", "None", "[]", "{}"]),
)
HASH = st.dictionaries(
    st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), TEXT_VALUE, max_size=12
)

DECODERS: dict[str, Callable[[dict[str, str]], Any]] = {
    "decode_book": lambda f: redis_codec.decode_book("KX", f),
    "decode_market": lambda f: redis_codec.decode_market("KX", f),
    "decode_position": lambda f: redis_codec.decode_position("KX", f),
    "decode_targets": lambda f: redis_codec.decode_targets("KX", f),
    "decode_market_config": lambda f: redis_codec.decode_market_config("KX", f),
    "decode_global_config": redis_codec.decode_global_config,
    "decode_risk": redis_codec.decode_risk,
    "decode_exchange": redis_codec.decode_exchange,
    "decode_fv": redis_codec.decode_fv,
}


def test_every_hash_decoder_is_fuzzed() -> None:
    found = {n for n in dir(redis_codec) if n.startswith("decode_")}
    others = {"decode_order", "decode_heartbeat", "decode_mark"}  # fuzzed below, not hashes
    assert found - set(DECODERS) - others == set()


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(DECODERS)), fields=HASH)
def test_hash_decoders_answer_a_value_or_a_documented_error(
    name: str, fields: dict[str, str]
) -> None:
    try:
        DECODERS[name](fields)
    except DOCUMENTED as exc:
        assert str(exc)


VALID_MARK = orjson.loads(
    redis_codec.encode_mark(Mark(5000, "book", SeenBook(4900, None, 1_800_000_000_000)))
)
VALID_ORDER = orjson.loads(
    redis_codec.encode_order(
        Order("KX", Side.BID, 5600, 1000, "c-1", "o-1", OrderStatus.RESTING, 0, 1000, 1, 2)
    )
)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40),
        JUNK.map(lambda v: json.dumps(v)),
        st.dictionaries(st.sampled_from(sorted(VALID_ORDER)), JUNK, max_size=4).map(
            lambda d: json.dumps({**VALID_ORDER, **d})
        ),
        st.dictionaries(st.sampled_from(sorted(VALID_MARK)), JUNK, max_size=3).map(
            lambda d: json.dumps({**VALID_MARK, **d})
        ),
    )
)
def test_order_heartbeat_event_decoders(raw: str | bytes) -> None:
    for decode in (
        redis_codec.decode_order,
        redis_codec.decode_mark,
        redis_codec.decode_heartbeat,
        lambda v: messages.decode_event({"type": "fill", "data": v}),
        lambda v: messages.decode_event({b"type": b"x", b"data": v}),
    ):
        try:
            decode(raw)
        except DOCUMENTED as exc:
            assert str(exc)


@settings(max_examples=400, deadline=None)
@given(
    message=st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        st.sampled_from(CONTROL_COMMANDS).flatmap(
            lambda c: st.sampled_from([c, c.upper(), f" {c} why", f"{c}\x00"])
        ),
        st.dictionaries(
            st.sampled_from(["cmd", "reason", "source", "x"]),
            st.one_of(st.sampled_from(CONTROL_COMMANDS), JUNK),
            max_size=4,
        ).map(lambda d: json.dumps(d)),
        JUNK.map(lambda v: json.dumps(v)),
    )
)
def test_parse_control_answers_a_command_or_schema_error(message: str | bytes) -> None:
    try:
        command = messages.parse_control(message)
    except SchemaError as exc:
        assert "control" in str(exc)
        return
    assert command.cmd in CONTROL_COMMANDS
    assert len(command.reason) <= 500 and len(command.source) <= 100


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("halt", "halt"),
        (b"RESUME now", "resume"),
        ('{"cmd": "halt", "reason": 5}', "halt"),
        ('{"cmd": "reload", "source": null}', "reload"),
    ],
)
def test_parse_control_known_commands(message: str | bytes, expected: str) -> None:
    assert messages.parse_control(message).cmd == expected
