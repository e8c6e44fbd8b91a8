"""The executor's market meta, kept from the full refresh's reads (``Markets.note_meta``)."""

from __future__ import annotations

from unittest import mock

from common import meta_cache
from common.domain import MarketMeta, MarketStatus, PriceGrid
from common.redis_codec import decode_market, encode_market
from services.executor.state import Markets

T = "KXM-1"


def fields(status: MarketStatus, close_ms: int = 10**13) -> dict[str, str]:
    return encode_market(MarketMeta(T, status, close_ms, PriceGrid.linear_cent()))


def test_a_market_hash_read_again_unchanged_is_not_decoded_again() -> None:
    markets = Markets()
    with mock.patch.object(meta_cache, "decode_market", wraps=decode_market) as decode:
        markets.note_meta(T, fields(MarketStatus.ACTIVE))
        first = markets.meta[T]
        markets.note_meta(T, fields(MarketStatus.ACTIVE))
        assert decode.call_count == 1
        assert markets.meta[T] is first
        markets.note_meta(T, fields(MarketStatus.INACTIVE))
        assert decode.call_count == 2
    assert markets.meta[T].status is MarketStatus.INACTIVE


def test_a_meta_set_from_another_read_is_replaced_by_the_hash_read_now() -> None:
    """A pass's guard sets ``meta`` from a read of its own: a refresh reading the hash the
    refresh had decoded before must not leave the guard's (other) meta standing."""
    markets = Markets()
    markets.note_meta(T, fields(MarketStatus.ACTIVE))
    markets.meta[T] = decode_market(T, fields(MarketStatus.INACTIVE))  # the guard's read
    markets.note_meta(T, fields(MarketStatus.ACTIVE))
    assert markets.meta[T].status is MarketStatus.ACTIVE


def test_a_hash_that_does_not_decode_keeps_the_meta_in_hand() -> None:
    markets = Markets()
    markets.note_meta(T, fields(MarketStatus.ACTIVE))
    markets.note_meta(T, {**fields(MarketStatus.ACTIVE), "close_ms": "soon"})
    assert markets.meta[T].status is MarketStatus.ACTIVE
