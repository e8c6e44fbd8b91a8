"""Which shard owns a market (DESIGN.md §7): a stable hash of the ticker, modulo the count."""

from __future__ import annotations

import zlib


def shard_of(ticker: str, shard_count: int) -> int:
    return zlib.crc32(ticker.encode()) % shard_count


def owns(ticker: str, shard_index: int, shard_count: int) -> bool:
    return shard_count <= 1 or shard_of(ticker, shard_count) == shard_index


def executor_name(shard_index: int, shard_count: int) -> str:
    """The executor of a shard: its heartbeat (``dora:hb:{name}``) and lease are named so."""
    return f"executor-{shard_index}" if shard_count > 1 else "executor"


def strategy_name(shard_index: int, shard_count: int) -> str:
    """The strategy of a shard: its heartbeat (``dora:hb:{name}``) is named so."""
    return f"strategy-{shard_index}" if shard_count > 1 else "strategy"


def executor_names(shard_count: int) -> list[str]:
    return [executor_name(i, shard_count) for i in range(max(1, shard_count))]
