"""Which shard owns a market (DESIGN.md §7): a stable hash of the ticker, modulo the count."""

from __future__ import annotations

import zlib


def shard_of(ticker: str, shard_count: int) -> int:
    return zlib.crc32(ticker.encode()) % shard_count


def owns(ticker: str, shard_index: int, shard_count: int) -> bool:
    return shard_count <= 1 or shard_of(ticker, shard_count) == shard_index
