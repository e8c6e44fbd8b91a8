"""``dora:risk`` of the wrong type (a person's ``SET dora:risk x``): every read and write of the
risk process was refused with WRONGTYPE for ever. Now it replaces the key by a halt (its halt state
was lost, so trading must not resume by itself), logged as ``bad_key_replaced``, recorded and
announced like any halt, and every reader sees an ordinary halted state."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from cli.status_view import gather
from common.halt import is_halted
from common.log import EventLogger
from common.messages import ControlCommand, decode_event, parse_control
from common.redis_codec import decode_risk
from common.settings import Settings
from tests.services.test_risk import check, setup


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[tuple[str, dict[str, object]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append((record.getMessage(), getattr(record, "fields", {})))


def recording_log() -> tuple[EventLogger, Recorded]:
    logger = logging.getLogger("tests.risk_bad_key")
    logger.handlers[:] = [handler := Recorded()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return EventLogger(logger), handler


async def test_a_risk_key_of_the_wrong_type_is_replaced_by_a_halt(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    ctx.log, logged = recording_log()
    assert not (await check(service, ctx)).halted
    await aredis.set(k.risk, "x")
    control = aredis.pubsub()
    await control.subscribe(k.control)
    await control.get_message(timeout=1.0)  # the subscription's confirmation

    state = await check(service, ctx, 1_000)

    assert state.halted and "corrupted" in state.reason and "dora resume" in state.reason
    assert await aredis.type(k.risk) == "hash"
    stored = decode_risk(await aredis.hgetall(k.risk))  # what the executor and persister read
    assert stored.halted and stored.reason == state.reason and stored.last_check_ms
    assert await is_halted(aredis, k) == (True, state.reason)
    status = await gather(aredis, k)  # dora status and the dashboard
    assert status["risk"]["halted"] and "error" not in status["risk"], status["risk"]
    replaced = [f for e, f in logged.events if e == "bad_key_replaced"]
    assert len(replaced) == 1 and replaced[0]["key"] == k.risk, logged.events
    assert "WRONGTYPE" in str(replaced[0]["reason"])
    events = [decode_event(f) for _, f in await aredis.xrange(k.stream("pnl"))]
    assert ("risk", True) in {(kind, p.get("halted")) for kind, p in events}
    message = None
    for _ in range(20):
        message = await control.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            break
    assert message is not None and parse_control(message["data"]).cmd == "halt"
    await control.aclose()

    later = await check(service, ctx, 1_000)  # it never resumes by itself
    assert later.halted and later.reason == state.reason and not later.check_failures
    assert [e for e, _ in logged.events].count("bad_key_replaced") == 1
    await service.stop(ctx)


async def test_a_halt_heard_while_the_risk_key_is_of_the_wrong_type_is_recorded(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    await aredis.set(k.risk, "x")
    await service._on_control(ctx, ControlCommand("halt", "by hand"))
    stored = decode_risk(await aredis.hgetall(k.risk))
    assert stored.halted and "corrupted" in stored.reason
    await service.stop(ctx)
