"""``dora cancel-all``, the kill switch (issue 19.3, 19.4): it cancels first, never needs to parse
a whole listing, works with every process and Redis down, and touches no other subaccount."""

from __future__ import annotations

import asyncio
import copy
import functools
import io
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from common.commands import CANCEL_ATTEMPTS, CancelAllResult, cancel_everything
from common.domain import Side, make_client_order_id
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.transport import CANCEL_RETRY
from common.kalshi.wire.orders import OrderRequest
from tests.fuzz.strategies import JUNK, mutate
from tests.kalshi.test_wire import ORDER
from tests.support.fake_kalshi import FakeKalshi, _id, fake_kalshi
from tests.support.procs import free_port, run_dora
from tests.support.simfix import KEY_ID, StartSim

DORAS = 2  # dora's subaccount in these tests; 0 is someone else's


async def place(client: KalshiClient, ticker: str, n: int, coid: str | None = None) -> None:
    await client.place_order(
        OrderRequest(
            ticker, Side.BID, 200, 100, coid or make_client_order_id("t", ticker, Side.BID, n)
        )
    )


async def test_with_every_process_and_redis_down_it_clears_dora_subaccount_only(
    start_sim: StartSim, signer: Signer, sim_keys: tuple[Path, bytes, bytes]
) -> None:
    running = await start_sim()
    dora = KalshiClient.create(running.rest_url, signer, subaccount=DORAS)
    someone = KalshiClient.create(running.rest_url, signer, subaccount=0)
    tickers = [m.ticker for m in await dora.get_markets()][:2]
    for n, ticker in enumerate(tickers * 2):
        await place(dora, ticker, n)
    await place(someone, tickers[0], 99, coid="manual-bid-1")  # not dora's, not its subaccount
    assert len(await dora.get_open_orders()) == 4
    env = {
        "DORA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: Redis down
        "DORA_KALSHI_ENV": "sim",
        "DORA_KALSHI_BASE_URL": running.rest_url,
        "DORA_KALSHI_KEY_ID": KEY_ID,
        "DORA_KALSHI_PRIVATE_KEY_PATH": str(sim_keys[0]),
        "DORA_KALSHI_SUBACCOUNT": str(DORAS),
    }
    proc = await asyncio.to_thread(run_dora, "cancel-all", env=env)  # the sim serves meanwhile
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"cancelled every resting order of subaccount {DORAS}; 0 left"
    assert await dora.get_open_orders() == []
    [kept] = await someone.get_open_orders()  # the other subaccount's order still rests
    assert kept.client_order_id == "manual-bid-1"
    await dora.aclose()
    await someone.aclose()


def resting(n: int) -> dict[str, Any]:
    order = copy.deepcopy(ORDER)
    order.update(order_id=f"o-{n}", client_order_id=f"c-{n}", status="resting")
    return order


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), good=st.integers(0, 4), route_missing=st.booleans())
def test_malformed_orders_never_stop_it_cancelling_everything(
    data: st.DataObject, good: int, route_missing: bool
) -> None:
    """Fuzz at the caller: whatever the listing holds, every order whose id can be read is
    cancelled (through the cancel-all route, or by id when it is missing), and an order without
    one is reported, never the end of the kill switch."""
    items: list[Any] = [resting(n) for n in range(good)]
    for n in range(data.draw(st.integers(0, 3), label="malformed orders")):
        items.append(mutate(data, resting(100 + n)))
    items.extend(data.draw(st.lists(JUNK, max_size=2), label="junk items"))
    items = data.draw(st.permutations(items), label="order")

    async def go() -> None:
        fake = FakeKalshi(orders=items, cancel_all_status=404 if route_missing else 204)
        async with fake_kalshi(fake):
            client = KalshiClient.create(fake.url, None, subaccount=DORAS)
            try:
                left, unreadable = await cancel_everything(client)
            finally:
                await client.aclose()
        first = fake.requests[0]
        assert first[:2] == ("DELETE", "/portfolio/events/orders"), "it must cancel first"
        assert first[2] == {"subaccount": str(DORAS)}
        with_id = {o["order_id"] for o in items if isinstance(o, dict) and _readable_id(o)}
        assert not with_id & fake.ids(), "an order whose id could be read still rests"
        assert left == 0
        assert len(unreadable) == len(items) - len(with_id) if route_missing else not unreadable

    asyncio.run(go())


def _readable_id(order: dict[str, Any]) -> bool:
    return isinstance(order.get("order_id"), str) and bool(order["order_id"])


class Requoting(FakeKalshi):
    """A running executor: after each cancel, a new quote rests (``stuck``: ids the
    exchange never cancels)."""

    def __init__(self, orders: list[Any], stuck: set[str]) -> None:
        super().__init__(orders=orders)
        self.stuck = stuck
        self.placed = 0

    async def handle(self, request: Any) -> Any:
        kept = [o for o in self.orders if _id(o) in self.stuck]
        answer = await super().handle(request)
        self.orders += [o for o in kept if o not in self.orders]  # refused: still resting
        if request.method == "DELETE":  # the cancel-all route or a batch
            self.placed += 1
            self.orders.append(resting(500 + self.placed))
        return answer


@pytest.mark.parametrize("stuck", [set(), {"o-1"}])
def test_orders_placed_after_its_last_cancel_are_not_left_behind(stuck: set[str]) -> None:
    """A cancel-all while the executor still quotes (a cancel-all does not halt): what the bot
    placed after the last cancel is reported as placed since, not as an order it failed to
    cancel (the dashboard showed a failure, '1 left', for a new quote); one the exchange keeps
    refusing is left."""

    async def go() -> tuple[int, list[str], set[str]]:
        fake = Requoting([resting(n) for n in range(3)], stuck)
        async with fake_kalshi(fake):
            client = KalshiClient.create(fake.url, None, subaccount=DORAS)
            placed_since: list[str] = []
            try:
                left, _ = await cancel_everything(client, placed_since=placed_since)
            finally:
                await client.aclose()
        return left, placed_since, fake.ids()

    left, placed_since, still = asyncio.run(go())
    assert left == len(stuck)
    assert placed_since == [f"o-{501 + CANCEL_ATTEMPTS}"]  # the newest quote only
    assert still == {*stuck, *placed_since}
    result = CancelAllResult(DORAS, None, left, 0, len(placed_since))
    assert result.clean == (not stuck)
    assert result.message.startswith(f"cancelled every resting order of subaccount {DORAS}; ")
    assert "1 placed since by a running executor ('dora halt' stops it quoting)" in result.message


class Stamped(io.StringIO):
    """stderr, remembering when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.lines.extend((time.monotonic(), line) for line in text.splitlines() if line)
        return super().write(text)


def test_an_exchange_that_never_answers_is_told_at_the_first_timeout_not_after_a_minute(
    sim_keys: tuple[Path, bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel is retried for up to a minute (a kill switch must try hard); a progress line
    says what is retried and for how long at most as soon as the first attempt times out, and
    the final line is the one it always was. Timeouts are shortened here, not the retries."""
    import common.connect

    timeout_s = 0.3
    monkeypatch.setattr(
        common.connect,
        "kalshi_client",
        functools.partial(common.connect.kalshi_client, timeout_s=timeout_s),
    )
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:  # accepts, never answers
        for name, value in {
            "DORA_KALSHI_ENV": "sim",
            "DORA_KALSHI_BASE_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "DORA_KALSHI_KEY_ID": KEY_ID,
            "DORA_KALSHI_PRIVATE_KEY_PATH": str(sim_keys[0]),
            "DORA_KALSHI_SUBACCOUNT": str(DORAS),
        }.items():
            monkeypatch.setenv(name, value)
        err = Stamped()
        monkeypatch.setattr(sys, "stderr", err)
        started = time.monotonic()
        code = main(["cancel-all"])
        ended = time.monotonic()
    assert code == 2
    [(told_at, progress), (_, final)] = err.lines
    assert told_at - started < timeout_s + 1.0, "the first timeout must be told at once"
    assert ended - told_at > 3 * timeout_s, "the retries go on after the line"
    assert progress.startswith("dora cancel-all: DELETE /portfolio/events/orders: no answer")
    worst_s = 5 * (3.0 + timeout_s) + sum(0.05 * 2**n for n in range(5))  # connect + answer
    assert progress.endswith(
        f"; retrying up to {CANCEL_RETRY.max_attempts - 1} more times, for at most {worst_s:.0f} s"
    ), progress
    assert final.startswith("dora: the exchange refused: ") and "no answer" in final, final
