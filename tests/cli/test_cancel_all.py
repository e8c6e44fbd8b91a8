"""``dora cancel-all``, the kill switch (issue 19.3, 19.4): it cancels first, never needs to parse
a whole listing, works with every process and Redis down, and touches no other subaccount."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.commands import CANCEL_ATTEMPTS, CancelAllResult, cancel_everything
from common.domain import Side, make_client_order_id
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
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
