"""Which shard owns a market (DESIGN.md §7): a stable hash of the ticker, modulo the count."""

from __future__ import annotations

import zlib


def shard_of(ticker: str, shard_count: int) -> int:
    return zlib.crc32(ticker.encode()) % shard_count


def owns(ticker: str, shard_index: int, shard_count: int) -> bool:
    return shard_count <= 1 or shard_of(ticker, shard_count) == shard_index


def shard_share(limit: int, shard_count: int) -> int:
    """One shard's share of an account-wide limit: each executor checks only its own markets'
    orders, so with a 1/N share each the shards' sum never passes the limit (DESIGN.md §3
    across shards, until one shared exposure ledger checks the whole account)."""
    return limit // max(1, shard_count)
