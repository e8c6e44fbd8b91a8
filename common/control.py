"""The operator control channel (``dora:control``, DESIGN.md §3): listen and send.

``ControlListener`` runs as a background task in a process, parses each message (plain ``halt`` /
``resume`` / ``reload`` or JSON ``{"cmd": ..., "reason": ...}``) and hands commands to a callback.
A malformed message is logged and dropped; a lost connection is re-established.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from common.errors import SchemaError
from common.keys import Keys
from common.log import EventLogger
from common.messages import ControlCommand, encode_control, parse_control

Handler = Callable[[ControlCommand], Awaitable[None]]


class ControlListener:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, log: EventLogger, handler: Handler
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.log = log
        self.handler = handler
        self.subscribed = asyncio.Event()
        self.closing = False

    def _done(self) -> bool:
        # redis-py's get_message can swallow a cancellation inside its own timeout handling, so
        # the loop checks for a pending cancel (and the close flag) itself.
        task = asyncio.current_task()
        return self.closing or (task is not None and task.cancelling() > 0)

    async def close(self, task: asyncio.Task[None] | None, timeout_s: float = 2.0) -> None:
        """Stop ``task`` (running ``run``) and wait for it, never longer than ``timeout_s``."""
        self.closing = True
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=timeout_s)

    async def run(self) -> None:
        delay_s = 0.1
        while not self._done():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                # a cluster client learns the slots on its first command; a subscription before
                # any would find no node for the channel's slot
                await self.redis.initialize()
                await pubsub.subscribe(self.keys.control)
                self.subscribed.set()
                delay_s = 0.1
                while not self._done():
                    message = await pubsub.get_message(timeout=0.5)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        command = parse_control(message["data"])
                    except SchemaError as exc:
                        self.log.warning("bad_control_message", reason=str(exc))
                        continue
                    try:
                        await self.handler(command)
                    except Exception:
                        self.log.exception("control_handler_failed", cmd=command.cmd)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                self.log.warning("control_channel_lost", error=str(exc), retry_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
            finally:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)


async def send_control(
    redis: aioredis.Redis, keys: Keys, cmd: str, reason: str = "", source: str = ""
) -> int:
    """Publish a command; returns how many processes received it."""
    receivers: int = await redis.publish(keys.control, encode_control(cmd, reason, source))
    return receivers
