"""Writing the keys marketdata owns (``dora:book:{t}``, ``dora:market:{t}``) when one of them
has been replaced by a value of the wrong type (a person's ``SET`` where marketdata keeps a hash).

A non-transactional pipeline runs every write and then raised the first WRONGTYPE: every step
that published that market's book failed, and the step backoff held back every other market's
books. Marketdata derives these keys from the exchange, so a key of the wrong type is deleted
(logged) and written whole by the next write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from common.direct_redis import DirectRedis, run_pipeline
from common.runtime import Context


async def execute_owned(
    ctx: Context,
    pipe: Any,
    owned: Sequence[tuple[str, str] | None],
    direct: DirectRedis | None = None,
) -> set[str]:
    """Run ``pipe`` (on ``direct`` when given); ``owned``: per queued command, (market, key) when
    it writes a key marketdata owns, else None. The markets whose key was of the wrong type
    (deleted: write them again); any other error is raised as before."""
    results = await run_pipeline(pipe, direct, raise_on_error=False)
    bad: dict[str, str] = {}
    for write, result in zip(owned, results, strict=True):
        if not isinstance(result, Exception):
            continue
        if write is None or not isinstance(result, ResponseError):
            raise result
        ticker, key = write
        ctx.log.warning("bad_key_replaced", market=ticker, key=key, reason=str(result))
        bad[key] = ticker
    if bad:
        await ctx.redis.delete(*bad)
    return set(bad.values())
