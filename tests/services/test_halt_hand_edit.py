"""A halt is lifted only by a resume (DESIGN.md §3), even when ``dora:risk`` is edited by hand.

``redis-cli HSET dora:risk halted 0`` (or ``HDEL dora:risk halted``) used to lift a recorded
halt: the executor took ``halted 0`` with an unchanged ``halted_ms`` for a resume and quoted
again, and the risk process and ``dora status`` believed it. A resume now leaves its own mark
(``resumed_ms``, after the halt's ``halted_ms``): ``halted 0`` without it is still a halt, the
risk process writes ``halted 1`` back and says so, and only a real resume (``lift_halt``, ``dora
resume``) lifts it, at once, even in the millisecond of the halt.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.halt import is_halted, lift_halt, set_halt
from common.keys import Keys
from common.messages import ControlCommand
from common.redis_codec import decode_risk
from common.settings import Settings
from tests.services.test_executor import FakeExchange, publish, seed, started, steps
from tests.services.test_risk import check, setup

Edit = Callable[[aioredis.Redis, Keys], Awaitable[Any]]


class Events(logging.Handler):
    """The events logged (their names) while attached to the ``dora`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(record.getMessage())


async def hset_halted_0(r: aioredis.Redis, k: Keys) -> None:
    await r.hset(k.risk, "halted", "0")


async def hdel_halted(r: aioredis.Redis, k: Keys) -> None:
    await r.hdel(k.risk, "halted")


EDITS = pytest.mark.parametrize("edit", [hset_halted_0, hdel_halted], ids=["hset_0", "hdel"])


@EDITS
async def test_a_hand_edit_does_not_let_the_executor_send_orders(
    settings: Settings, aredis: aioredis.Redis, edit: Edit
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
        await set_halt(aredis, k, "news", ctx.clock.now_ms(), "cli")
        await service.safety.on_control(ControlCommand("halt", "news"))
        await steps(service, ctx)
        assert exchange.orders == {}
        await edit(aredis, k)
        heard = Events()
        logging.getLogger("dora").addHandler(heard)
        try:
            await service.safety.on_control(ControlCommand("resume"))  # a bare PUBLISH after it
        finally:
            logging.getLogger("dora").removeHandler(heard)
        assert "resume_not_recorded" in heard.events  # the operator is told what lifts it
        await publish(aredis, k, "KX", 4200, 4400)
        await steps(service, ctx)
        assert exchange.orders == {}  # still halted: no resume was recorded
        assert service.safety.halt.halted
        await lift_halt(aredis, k, "checked", ctx.clock.now_ms(), "cli")
        await service.safety.on_control(ControlCommand("resume"))
        await publish(aredis, k, "KX", 4200, 4400)
        await steps(service, ctx)
        assert sorted(o.price for o in exchange.orders.values()) == [4200, 4400]
    finally:
        await service.stop(ctx)


@EDITS
async def test_an_executor_started_after_a_hand_edit_stays_halted(
    settings: Settings, aredis: aioredis.Redis, edit: Edit
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    await set_halt(aredis, k, "before the restart", 1, "cli")
    await edit(aredis, k)
    assert await is_halted(aredis, k) == (True, "before the restart")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert exchange.orders == {} and service.safety.halt.halted
    finally:
        await service.stop(ctx)


async def test_a_resume_in_the_millisecond_of_the_halt_lifts_it_at_once(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    service, ctx = await started(settings, aredis, exchange)
    try:
        now = ctx.clock.now_ms()
        await set_halt(aredis, k, "oops", now, "cli")
        await service.safety.on_control(ControlCommand("halt", "oops"))
        await lift_halt(aredis, k, "undo", now, "cli")  # the same millisecond
        assert not decode_risk(await aredis.hgetall(k.risk)).halted
        await service.safety.on_control(ControlCommand("resume"))
        assert not service.safety.halt.halted
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2
    finally:
        await service.stop(ctx)


async def test_a_halt_in_the_millisecond_of_a_resume_is_not_lifted_by_a_hand_edit(
    aredis: aioredis.Redis,
) -> None:
    k = Keys()
    await set_halt(aredis, k, "first", 50, "cli")
    await lift_halt(aredis, k, "undo", 50, "cli")
    await set_halt(aredis, k, "again", 50, "cli")  # all three in one millisecond
    await aredis.hset(k.risk, "halted", "0")
    assert await is_halted(aredis, k) == (True, "again")
    await lift_halt(aredis, k, "checked", 50, "cli")
    assert await is_halted(aredis, k) == (False, "checked")


@EDITS
async def test_the_risk_process_puts_the_halt_back_and_says_so(
    settings: Settings, aredis: aioredis.Redis, edit: Edit
) -> None:
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    sent: list[tuple[str, str, str]] = []
    assert service.alerter is not None
    send = service.alerter.alert

    async def spy(kind: str, subject: str, message: str) -> bool:
        sent.append((kind, subject, message))
        return await send(kind, subject, message)

    service.alerter.alert = spy  # type: ignore[method-assign]
    try:
        await check(service, ctx)
        await set_halt(aredis, k, "fat finger", ctx.clock.now_ms(), "cli")
        before = await aredis.hgetall(k.risk)
        assert (await check(service, ctx, 1_000)).halted
        await edit(aredis, k)
        sent.clear()

        state = await check(service, ctx, 1_000)

        assert state.halted and state.reason == "fat finger"
        after = await aredis.hgetall(k.risk)
        assert after["halted"] == "1" and after["reason"] == "fat finger"
        assert after["halted_ms"] == before["halted_ms"]
        told = [s for s in sent if "by hand" in s[1] + s[2]]
        assert told and "dora resume" in told[0][2]
        await lift_halt(aredis, k, "checked", ctx.clock.now_ms(), "cli")
        assert not (await check(service, ctx, 1_000)).halted
        assert (await aredis.hgetall(k.risk))["halted"] == "0"  # a real resume is left alone
    finally:
        await service.stop(ctx)


async def test_a_record_an_older_dora_resumed_is_not_a_halt_after_the_upgrade(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """An older dora's resume wrote ``halted 0`` with the resume's ``halted_ms`` and no
    ``resumed_ms``: believed as it says (an upgrade must not halt a resumed deployment)."""
    k, exchange = Keys(), FakeExchange(aredis, Keys())
    await seed(aredis, k, "KX")
    await aredis.hset(k.risk, mapping={"halted": "0", "reason": "checked", "halted_ms": "77"})
    assert await is_halted(aredis, k) == (False, "checked")
    service, ctx = await started(settings, aredis, exchange)
    try:
        await publish(aredis, k, "KX", 4100, 4500)
        await steps(service, ctx)
        assert len(exchange.orders) == 2 and not service.safety.halt.halted
    finally:
        await service.stop(ctx)


async def test_a_halt_an_older_dora_recorded_gets_its_mark_and_stays_put(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """A halt recorded before the mark (``halted 1``, no ``resumed_ms``): the risk process gives
    it ``resumed_ms 0`` at its next check, so a later hand edit of the flag is no resume."""
    service, ctx, _ = await setup(aredis, settings)
    k = ctx.keys
    try:
        await check(service, ctx)
        now = ctx.clock.now_ms()
        await aredis.hset(k.risk, mapping={"halted": "1", "reason": "old", "halted_ms": str(now)})
        await aredis.hdel(k.risk, "resumed_ms")
        assert (await check(service, ctx, 1_000)).halted
        assert (await aredis.hgetall(k.risk))["resumed_ms"] == "0"
        await aredis.hset(k.risk, "halted", "0")
        assert await is_halted(aredis, k) == (True, "old")
        assert (await check(service, ctx, 1_000)).halted
        assert (await aredis.hgetall(k.risk))["halted"] == "1"
    finally:
        await service.stop(ctx)
