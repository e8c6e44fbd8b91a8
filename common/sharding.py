"""Which shard owns a market (DESIGN.md §7): a stable hash of the ticker, modulo the count; and
the names of the sharded processes' instances (their heartbeats and leases)."""

from __future__ import annotations

import zlib

SHARDED_SERVICES = ("strategy", "executor")  # one instance per shard, ``executor-N``


def shard_of(ticker: str, shard_count: int) -> int:
    return zlib.crc32(ticker.encode()) % shard_count


def owns(ticker: str, shard_index: int, shard_count: int) -> bool:
    return shard_count <= 1 or shard_of(ticker, shard_count) == shard_index


def instance_name(service: str, shard_index: int, shard_count: int) -> str:
    """One instance of ``service``: ``executor-1`` with shards, else ``executor``; its heartbeat
    (``dora:hb:{name}``) and, for the executor, its lease are named so."""
    if service in SHARDED_SERVICES and shard_count > 1:
        return f"{service}-{shard_index}"
    return service


def instance_names(service: str, shard_count: int) -> list[str]:
    """Every instance of ``service``: one per shard for the sharded ones."""
    if service not in SHARDED_SERVICES:
        return [service]
    return [instance_name(service, i, shard_count) for i in range(max(1, shard_count))]


def executor_name(shard_index: int, shard_count: int) -> str:
    return instance_name("executor", shard_index, shard_count)


def strategy_name(shard_index: int, shard_count: int) -> str:
    return instance_name("strategy", shard_index, shard_count)


def executor_names(shard_count: int) -> list[str]:
    return instance_names("executor", shard_count)
