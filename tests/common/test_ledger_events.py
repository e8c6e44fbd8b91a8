"""The ledger's event parts on a real Redis: after any sequence of reservations, releases and
rebuilds, the worst loss the scripts keep (per-market parts, the event's sums, a sorted set of
each market's YES-less-NO loss) equals ``common.event_loss.event_worst_loss`` of the parts, and a
reservation is refused exactly when it would raise the worst loss past the limit."""

from __future__ import annotations

import random
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.event_loss import MarketLoss, event_worst_loss
from common.keys import Keys
from common.ledger import NO_CAP, EventPart, Ledger, read_event_worst

KINDS = ("py", "pn", "b", "a")
EVENT = "KXEV-26"


def worst(parts: dict[str, dict[str, int]], exclusive: bool) -> int:
    losses = [MarketLoss(*(m.get(k, 0) for k in KINDS)) for m in parts.values()]
    return event_worst_loss(losses, exclusive)


def rises(before: dict[str, int], after: dict[str, int]) -> bool:
    """Whether either outcome's loss of one market rises (its loss if YES: ``py`` + ``a``,
    if NO: ``pn`` + ``b``)."""

    def outcomes(p: dict[str, int]) -> tuple[int, int]:
        return p.get("py", 0) + p.get("a", 0), p.get("pn", 0) + p.get("b", 0)

    (yb, nb), (ya, na) = outcomes(before), outcomes(after)
    return ya > yb or na > nb


def random_parts(rng: random.Random) -> dict[str, int]:
    kinds = rng.sample(KINDS, rng.randint(1, 4))
    out = {}
    for kind in kinds:
        low = -5_000_000 if kind in ("py", "pn") else 0  # a position can gain in one outcome
        out[kind] = rng.randrange(low, 5_000_000, 10_000)
    return out


async def ledger_of(r: aioredis.Redis, k: Keys) -> Ledger:
    await r.set(k.lease("executor"), "7:test")
    ledger = Ledger(r, k, k.lease("executor"), lambda: 7)
    await ledger.load()
    return ledger


def execute_on(r: aioredis.Redis) -> Any:
    async def execute(queue: Any) -> Any:
        pipe = r.pipeline(transaction=False)
        queue(pipe)
        return (await pipe.execute())[0]

    return execute


@pytest.mark.parametrize("exclusive", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_scripts_keep_the_events_worst_loss_exactly(
    aredis: aioredis.Redis, exclusive: bool, seed: int
) -> None:
    rng = random.Random(seed)
    k = Keys()
    ledger = await ledger_of(aredis, k)
    execute = execute_on(aredis)
    tickers = [f"{EVENT}-M{i}" for i in range(12)]
    model: dict[str, dict[str, int]] = {}
    denied = passed = 0
    for step in range(250):
        ticker = rng.choice(tickers)
        if step % 50 == 49:  # a restart: the owner puts back what it knows
            events = {t: EventPart(EVENT, exclusive, dict(p)) for t, p in model.items() if p}
            answer = await ledger.rebuild(lambda t: True, {}, events)
            assert answer.ok
        else:
            new = random_parts(rng)
            now = {kind: model.get(ticker, {}).get(kind, 0) for kind in new}
            limit = NO_CAP if rng.random() < 0.3 else rng.randrange(0, 40_000_000, 100_000)
            after = {**model, ticker: {**model.get(ticker, {}), **new}}
            expect_denied = (
                limit != NO_CAP
                and rises(model.get(ticker, {}), after[ticker])
                and worst(after, exclusive) > limit
            )
            event = EventPart(EVENT, exclusive, new, limit, before=now)
            answer = await ledger.reserve(execute, ticker, {}, NO_CAP, event=event)
            assert answer.outcome == ("event_denied" if expect_denied else "ok"), step
            if answer.ok:
                model = after
                passed += 1
            else:
                denied += 1
        assert await read_event_worst(aredis, k, EVENT) == worst(model, exclusive), step
    assert passed > 50 and denied > 10  # both ways were exercised


async def test_a_rebuild_drops_the_layout_before_and_keeps_other_owners_parts(
    aredis: aioredis.Redis,
) -> None:
    k = Keys()
    await aredis.hset(k.ledger, "event:OLD", '{"x": true, "m": {}}')  # the layout before
    ledger = await ledger_of(aredis, k)
    execute = execute_on(aredis)
    mine, theirs = f"{EVENT}-A", f"{EVENT}-B"
    for ticker, parts in ((mine, {"pn": 3_000_000}), (theirs, {"py": 2_000_000, "b": 500_000})):
        event = EventPart(EVENT, True, parts, NO_CAP)
        assert (await ledger.reserve(execute, ticker, {}, NO_CAP, event=event)).ok
    assert await read_event_worst(aredis, k, EVENT) == 3_500_000 + 1_500_000
    answer = await ledger.rebuild(lambda t: t == mine, {}, {})  # this owner holds nothing now
    assert answer.ok
    assert not await aredis.hexists(k.ledger, "event:OLD")
    assert await read_event_worst(aredis, k, EVENT) == 500_000 + 1_500_000
    await ledger.rebuild(lambda t: True, {}, {})
    assert await read_event_worst(aredis, k, EVENT) is None
    assert not await aredis.exists(k.ledger_event(EVENT))


async def test_a_stale_part_of_the_other_side_never_masks_a_rise_past_the_limit(
    aredis: aioredis.Redis,
) -> None:
    """Short 5 at $0.04 with a bid for 5 at $0.95 closing it; 2 of the bid fill. The ask's pass
    writes the position's new parts (loss if NO -$2.88) while the bid's pass, still working,
    has not written its part down (5 contracts: $4.75): for a moment the market's loss if NO
    reads $1.87. A new ask raising the loss if YES from $0.20 to $0.40 left the event's worst
    (the larger outcome) where it was and passed, $0.08 over the limit once the bid's part was
    written (seen in the short chaos run)."""
    k = Keys()
    ledger = await ledger_of(aredis, k)
    execute = execute_on(aredis)
    limit = 60_000_000

    async def step(ticker: str, parts: dict[str, int], now: dict[str, int], cap: int) -> str:
        event = EventPart(EVENT, False, parts, cap, before=now)
        return (await ledger.reserve(execute, ticker, {}, NO_CAP, event=event)).outcome

    others = {"py": 0, "pn": 0, "b": 0, "a": 59_760_000}
    assert await step("X", others, others, NO_CAP) == "ok"
    held = {"py": 200_000, "pn": -4_800_000, "b": 4_750_000, "a": 0}
    assert await step("M", held, held, NO_CAP) == "ok"
    assert await read_event_worst(aredis, k, EVENT) == 59_960_000
    filled = {"py": 200_000, "pn": -2_880_000}  # the ask's pass: the position's new parts
    ask = await step("M", {**filled, "a": 200_000}, {**filled, "a": 0}, limit)
    assert ask == "event_denied"
    # once the bid's pass has written its part (3 left), the same ask is still $0.08 over
    assert await step("M", {"b": 2_850_000, "py": 120_000}, {"b": 2_850_000}, NO_CAP) == "ok"
    ask = await step("M", {"py": 120_000, "pn": -2_880_000, "a": 200_000}, {"a": 0}, limit)
    assert ask == "event_denied"
