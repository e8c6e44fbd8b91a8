"""Whatever is put into the config table, the mirror neither crashes nor mirrors garbage."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import fakeredis
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import GlobalConfig, MarketConfig
from common.config_cache import ConfigCache
from common.dynamo import Dynamo
from common.dynamo.codec import to_attrs
from common.dynamo.config_store import validate_global_item, validate_market_item
from common.errors import ConfigError
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_global_config, decode_market_config
from services.persister.mirror import ConfigMirror

K = Keys()
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
DECIMALS = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(-(10**20), 10**20),
    st.integers(-25, 25),
)
SCALARS = st.one_of(
    TEXT,
    st.integers(-(10**38) + 1, 10**38 - 1),
    DECIMALS,
    st.booleans(),
    st.none(),
    st.binary(max_size=4),
    st.sampled_from(["0.05", "1", "10", "true", "no", "", "2026-01-01T00:00:00Z", "-3", "1e3"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(TEXT.filter(bool), inner, max_size=3)
    ),
    max_leaves=4,
) | st.frozensets(TEXT.filter(bool), min_size=1, max_size=3).map(set)
NAMES = st.sampled_from([*MarketConfig.FIELDS, *GlobalConfig.FIELDS, "version"]) | TEXT.filter(
    lambda s: bool(s) and s not in ("market_id", "key")
)
FIELDS = st.dictionaries(NAMES, VALUES, max_size=8)
TICKERS = st.sampled_from(["KXA", "KXB", "KX-C.1"]) | TEXT.filter(bool)


def put(db: Dynamo, table: str, item: dict[str, Any]) -> bool:
    try:
        db.client.put_item(TableName=table, Item=to_attrs(item))
        return True
    except ClientError:  # something DynamoDB itself would refuse: it never reaches the table
        return False


def empty_tables(db: Dynamo) -> None:
    for raw in db.client.scan(TableName="dora_market_config")["Items"]:
        db.client.delete_item(TableName="dora_market_config", Key={"market_id": raw["market_id"]})
    db.client.delete_item(TableName="dora_state", Key={"key": {"S": "global_config"}})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.lists(st.sampled_from(["KXA", "KXB"]), unique=True),
    items=st.lists(st.tuples(TICKERS, FIELDS), max_size=5, unique_by=lambda t: t[0]),
    global_fields=st.none() | FIELDS,
)
def test_no_item_crashes_the_mirror_and_only_valid_items_are_mirrored(
    db: Dynamo,
    seed: list[str],
    items: list[tuple[str, dict[str, Any]]],
    global_fields: dict[str, Any] | None,
) -> None:
    empty_tables(db)
    for ticker in seed:  # a valid config first, so "keeps its last valid config" is exercised
        db.config.update_market(ticker, {"enabled": True}, "2026-01-01T00:00:00Z")
    asyncio.run(_check(db, items, global_fields))


async def _check(
    db: Dynamo, items: list[tuple[str, dict[str, Any]]], global_fields: dict[str, Any] | None
) -> None:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    mirror = ConfigMirror(db.config, K, get_logger("fuzz"))
    await mirror.run_once(redis)
    before = {t: decode_market_config(t, f) for t, f in mirror.markets.items()}
    global_before = decode_global_config(mirror.global_fields or {})
    stored = {}
    for ticker, fields in items:
        item = {**fields, "market_id": ticker}
        if put(db, "dora_market_config", item):
            stored[ticker] = db.config.get_market(ticker)
    raw_global = None
    if global_fields is not None and put(
        db, "dora_state", {**global_fields, "key": "global_config"}
    ):
        raw_global = db.config.get_global()

    await mirror.run_once(redis)  # must not raise, whatever the items are
    await mirror.run_once(redis)  # and a second pass changes nothing more
    invalid = await redis.hgetall(K.cfg_invalid)
    mirrored = await redis.smembers(K.cfg_markets)
    for ticker, raw in stored.items():
        try:
            config, version = validate_market_item(raw)
        except ConfigError as exc:
            label = ticker if ticker in mirrored or ticker in before else repr(ticker)[:100]
            if label in invalid:
                assert invalid[label] == str(exc)
            else:
                assert repr(ticker)[:100] in invalid
            if ticker in mirrored:
                kept = decode_market_config(ticker, await redis.hgetall(K.cfg_market(ticker)))
                assert kept == before.get(ticker, MarketConfig(ticker, enabled=False))
            continue
        fields = await redis.hgetall(K.cfg_market(ticker))
        assert decode_market_config(ticker, fields) == config
        assert int(fields["version"]) >= version and ticker not in invalid
    glob = decode_global_config(await redis.hgetall(K.cfg_global))
    if raw_global is not None:
        try:
            expected, _ = validate_global_item(raw_global)
        except ConfigError:
            assert "(global)" in invalid and glob == global_before  # the last valid one
        else:
            assert glob == expected
    cache = ConfigCache(K, get_logger("fuzz"))  # what every process does with the mirror
    await cache.refresh(redis, 0)
    await redis.aclose()
