"""The executor's lease after a kill -9: supervisord starts the next executor at once, and the
dead one's lease (TTL 5 s) used to keep the shard unquoted until it expired (the recovery bench's
executor took 4.8 s against its 3 s goal). A holder that is a process of this host that no longer
runs is taken over at once; a live one, or one of another host, is waited for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import redis.asyncio as aioredis

from common.keys import Keys
from common.log import get_logger
from services.executor.lease import Lease, dead_here


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def holder(pid: int, host: str | None = None) -> str:
    return f"41:executor@{host or socket.gethostname()}:{pid}"


def test_only_a_process_of_this_host_that_no_longer_runs_is_dead() -> None:
    assert dead_here(holder(dead_pid()))
    assert not dead_here(holder(os.getppid()))  # alive
    assert not dead_here(holder(os.getpid()))  # ourselves
    assert not dead_here(holder(dead_pid(), host="another-host"))
    assert not dead_here("41:first")  # no host, no pid: a name given by hand


async def test_the_lease_of_a_killed_executor_is_taken_over_at_once(
    aredis: aioredis.Redis,
) -> None:
    k = Keys()
    key = k.lease("executor")
    await aredis.set(key, holder(dead_pid()), px=5_000)
    lease = Lease(aredis, k, "executor", get_logger("executor"))
    assert await lease.try_acquire() == ""
    assert await aredis.get(key) == lease.value


async def test_a_live_holder_or_one_of_another_host_is_waited_for(
    aredis: aioredis.Redis,
) -> None:
    k = Keys()
    key = k.lease("executor")
    for held in (holder(os.getppid()), holder(dead_pid(), host="another-host")):
        await aredis.set(key, held, px=5_000)
        lease = Lease(aredis, k, "executor", get_logger("executor"))
        assert await lease.try_acquire() == held
        assert await aredis.get(key) == held
