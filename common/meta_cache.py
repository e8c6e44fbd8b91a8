"""Market meta decoded from its Redis hash (``dora:market:{ticker}``), decoded again only when
the hash changed.

The executor's risk refresh and the strategy's sweep read every market's hash about once a
second, and a market's hash rarely changes; decoding one (its price grid's JSON included) costs
~12 µs of the event loop, comparing it with the hash read before ~0.1 µs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.domain import MarketMeta
from common.redis_codec import decode_market


class MetaCache:
    def __init__(self) -> None:
        self._read: dict[str, tuple[Mapping[str, Any], MarketMeta]] = {}

    def decode(self, ticker: str, fields: Mapping[str, Any]) -> MarketMeta:
        """``decode_market(ticker, fields)``, raising ``SchemaError`` as it does."""
        known = self._read.get(ticker)
        if known is not None and known[0] == fields:
            return known[1]
        meta = decode_market(ticker, fields)
        self._read[ticker] = (fields, meta)
        return meta
