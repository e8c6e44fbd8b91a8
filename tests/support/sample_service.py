"""A minimal real process built on the runtime, for the runtime's own tests.

Each step counts in Redis; stop() records that it drained. ``--slow-stop`` makes stop() take a
while so a second signal can be shown to exit at once; ``--cold`` runs it as a process off the
trading path (at ``DORA_COLD_NICE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from common.runtime import Context, service_main
from common.settings import Settings


def session() -> str:
    """This process's session, process group and scheduling group: "<sid> <pgid> <autogroup>"."""
    autogroup = Path("/proc/self/autogroup")
    group = autogroup.read_text().strip() if autogroup.exists() else "none"
    return f"{os.getsid(0)} {os.getpgrp()} {group}"


class Counter:
    name = "sample"

    def __init__(self, settings: Settings, slow_stop: bool) -> None:
        self.slow_stop = slow_stop

    async def start(self, ctx: Context) -> None:
        await ctx.redis.set("sample:started", "1")
        # which event loop the runtime chose (uvloop's, or asyncio's with DORA_UVLOOP=false)
        await ctx.redis.set("sample:loop", type(asyncio.get_running_loop()).__module__)
        await ctx.redis.set("sample:nice", os.nice(0))  # its CPU priority (``cold``)
        await ctx.redis.set("sample:session", session())  # ``own_session``

    async def step(self, ctx: Context) -> None:
        await ctx.redis.incr("sample:steps")
        ctx.status["steps"] = int(await ctx.redis.get("sample:steps") or 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stopping.wait(), 0.05)

    async def stop(self, ctx: Context) -> None:
        if self.slow_stop:
            await asyncio.sleep(30)
        await ctx.redis.set("sample:drained", "1")


if __name__ == "__main__":
    slow, cold = "--slow-stop" in sys.argv, "--cold" in sys.argv
    argv = [a for a in sys.argv[1:] if a not in ("--slow-stop", "--cold")]
    sys.exit(service_main(lambda s: Counter(s, slow), argv, cold=cold))
