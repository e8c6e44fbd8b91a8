"""One executor per shard: a lease in Redis with a fencing token (DESIGN.md §7).

``dora:lease:{executor name}`` holds ``token:owner`` with a TTL (``SET NX PX``); the token comes
from ``INCR dora:lease:fence``, so a later holder always has a larger one. The holder renews it
every third of the TTL; a second executor configured with the same shard waits, saying once who
holds it, and takes over when the holder dies and the lease expires (at once when the holder
was a process of this host that no longer runs: a kill -9 and supervisord's restart). Every ledger write (and so
every new order: ``common.ledger``) carries the token and is refused unless it is the lease's: an
old executor that was paused and wakes up cannot add risk, even before it notices.

Executors configured with different shard counts would own overlapping markets under different
lease names, so every holder also renews ``dora:lease:layout`` (its shard count, same TTL): an
executor whose count differs waits while that layout is live, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import redis.asyncio as aioredis

from common.keys import Keys
from common.log import EventLogger

LEASE_TTL_MS = 5_000

# KEYS: lease, fence. ARGV: our value, ttl. Renew ours; take it again when it is gone (Redis lost
# its data: the fence counter is raised to our token so no later holder gets a smaller one).
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not held then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local token = tonumber(string.match(ARGV[1], '^(%d+):'))
  if tonumber(redis.call('GET', KEYS[2]) or '0') < token then
    redis.call('SET', KEYS[2], token)
  end
  return 1
end
return 0
"""


# KEYS: lease. ARGV: the holder's value as read, ours, ttl. Take it over only if it still holds.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


def owner_name(name: str) -> str:
    return f"{name}@{socket.gethostname()}:{os.getpid()}"


def dead_here(holder: str) -> bool:
    """Whether the lease's ``holder`` (``token:name@host:pid``) is a process of this host that no
    longer runs (killed: supervisord starts the next one at once, and waiting out the TTL for a
    holder that cannot renew would keep the shard unquoted for seconds)."""
    _, _, owner = holder.partition(":")
    place = owner.rpartition("@")[2]
    host, _, pid = place.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


class Lease:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        name: str,
        log: EventLogger,
        owner: str = "",
        shard_count: int = 1,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.key = keys.lease(name)
        self.name = name
        self.log = log
        self.owner = owner or owner_name(name)
        self.layout = str(max(1, shard_count))
        self.token = 0
        self.lost = ""  # why we no longer hold it ("" while we do)
        # until when (``time.monotonic``) the lease is ours by this process's own clock: half
        # the TTL after the last renewal or take was sent (``fresh``)
        self.fresh_until = 0.0
        self._renew = redis.register_script(_RENEW)
        self._take_over = redis.register_script(_TAKE_OVER)

    @property
    def fresh(self) -> bool:
        """Whether the lease is ours by this process's own clock: taken or renewed less than
        half its TTL ago, counted from before the request left. A process paused past that
        (stopped, swapped out) finds it stale when it wakes, before it hears of a new holder:
        what it would send on the strength of the lease alone goes through the ledger's fenced
        step instead (``services.executor.ahead``)."""
        return not self.lost and time.monotonic() < self.fresh_until

    def _held_from(self, sent: float) -> None:
        self.fresh_until = sent + LEASE_TTL_MS / 2000

    @property
    def value(self) -> str:
        return f"{self.token}:{self.owner}"

    async def _layout_problem(self) -> str:
        """Claim (or keep) the live layout for our shard count: "" when it is ours, else why not."""
        key = self.keys.lease_layout
        if await self.redis.set(key, self.layout, nx=True, px=LEASE_TTL_MS):
            return ""
        live = str(await self.redis.get(key) or "")
        if live in ("", self.layout):
            await self.redis.set(key, self.layout, px=LEASE_TTL_MS)
            return ""
        return f"executors of {live} shards are running; this one is configured for {self.layout}"

    async def try_acquire(self) -> str:
        """Take the lease if it is free: "" when ours, else who holds it (or why not)."""
        layout = await self._layout_problem()
        if layout:
            return layout
        token = int(await self.redis.incr(self.keys.lease_fence))
        value = f"{token}:{self.owner}"
        sent = time.monotonic()
        if await self.redis.set(self.key, value, nx=True, px=LEASE_TTL_MS):
            self.token, self.lost = token, ""
            self._held_from(sent)
            return ""
        holder = str(await self.redis.get(self.key) or "")
        if holder and dead_here(holder):
            args = [holder, value, LEASE_TTL_MS]
            sent = time.monotonic()
            if await self._take_over(keys=[self.key], args=args):
                self.token, self.lost = token, ""
                self._held_from(sent)
                self.log.warning("lease_taken_from_dead_holder", lease=self.name, holder=holder)
                return ""
        return holder

    async def acquire(self, stopping: asyncio.Event, poll_s: float = LEASE_TTL_MS / 3000) -> bool:
        """Wait until the lease is ours (False: asked to stop first). Says once why it waits."""
        if self.token and await self.renew():
            return True  # ours already (a start tried again)
        said = ""
        while not stopping.is_set():
            holder = await self.try_acquire()
            if not holder:
                self.log.info("lease_acquired", lease=self.name, token=self.token)
                return True
            if holder != said:
                self.log.warning(
                    "lease_held_waiting",
                    lease=self.name,
                    holder=holder,
                    reason=f"another executor holds shard {self.name}; taking over when it "
                    "stops renewing",
                )
                said = holder
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), poll_s)
        return False

    async def renew(self) -> bool:
        """Keep the lease (or take it back when Redis lost it); False once another holds it."""
        await self.redis.set(self.keys.lease_layout, self.layout, px=LEASE_TTL_MS)
        keys = [self.key, self.keys.lease_fence]
        sent = time.monotonic()
        if await self._renew(keys=keys, args=[self.value, LEASE_TTL_MS]):
            if self.lost:
                self.log.info("lease_back", lease=self.name, token=self.token)
            self.lost = ""
            self._held_from(sent)
            return True
        self.fresh_until = 0.0
        holder = str(await self.redis.get(self.key) or "")
        if not self.lost:
            self.log.error("lease_lost", lease=self.name, holder=holder)
        self.lost = f"lease {self.name} held by {holder}"
        return False

    async def run(self) -> None:
        """Renew every third of the TTL. A lease lost to another executor is not taken back:
        this one adds no risk from then on (its memory of the shard is no longer the truth)."""
        while True:
            try:
                await self.renew()
            except Exception as exc:  # Redis away: the outage watch pulls the quotes
                self.log.warning("lease_renew_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(LEASE_TTL_MS / 3000)

    async def release(self) -> None:
        """A clean stop hands the shard over at once."""
        self.fresh_until = 0.0
        script = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
        await self.redis.eval(script, 1, self.key, self.value)
