"""Wire fidelity: a third-party Kalshi client (pykalshi 2.0.0, its code unchanged) drives the
running simulator through every endpoint, and every response is validated against Kalshi's own
OpenAPI documents (``../shared/kalshi``, read in place, never copied into the repo).

pykalshi 2.0.0 has no method for: ``GET /markets/orderbooks``, ``GET /account/endpoint_costs``,
cancel-all (``DELETE /portfolio/events/orders``), ``DELETE /portfolio/order_groups/{id}`` and
decrease with ``reduce_to``; those are driven with a plain signed httpx request instead.
Only an httpx response hook is added to pykalshi's session, to see the raw responses.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import yaml

from sim.server import RunningSim
from tests.sim.simtest_helpers import Signed, order_body
from tests.support.shared import shared_kalshi
from tests.support.simfix import KEY_ID

SHARED = shared_kalshi()
FRAGMENTS = SHARED / "openapi-3.28.0-fragments"
pytestmark = pytest.mark.skipif(
    not (FRAGMENTS / "INDEX.tsv").exists(),
    reason=f"Kalshi's OpenAPI files are not at {SHARED} (they are read in place, never copied)",
)


class SpecBook:
    """The 3.28.0 per-operation documents, found by method and concrete path."""

    def __init__(self) -> None:
        from openapi_core import OpenAPI

        self.ops: list[tuple[str, re.Pattern[str], str, Any]] = []
        for line in (FRAGMENTS / "INDEX.tsv").read_text().splitlines()[1:]:
            name, operation, _ = line.split("\t")
            method, template = operation.split(" ", 1)
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            spec = yaml.safe_load((FRAGMENTS / name).read_text())
            self.ops.append((method.upper(), pattern, template, OpenAPI.from_dict(spec)))
        # static paths before templated ones (/markets/trades before /markets/{ticker})
        self.ops.sort(key=lambda op: op[2].count("{"))

    def find(self, method: str, path: str) -> tuple[str, Any] | None:
        for op_method, pattern, template, api in self.ops:
            if op_method == method and pattern.match(path):
                return template, api
        return None

    def validate(self, method: str, path: str, query: str, status: int, body: bytes) -> str | None:
        """None when valid; the operation template when there is no document for it."""
        from openapi_core.testing import MockRequest, MockResponse

        found = self.find(method, path)
        if found is None:
            return f"{method} {path}"
        _template, api = found
        args = dict(httpx.QueryParams(query))
        request = MockRequest(
            "https://external-api.kalshi.com", method.lower(), f"/trade-api/v2{path}", args=args
        )
        response = MockResponse(body or b"{}", status_code=status)
        api.validate_response(request, response)
        return None


@pytest.fixture(scope="module")
def spec_book() -> SpecBook:
    return SpecBook()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, int, bytes]] = []

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        url = response.request.url
        if not url.path.startswith("/trade-api/v2"):
            return  # the simulator's own control API
        path = url.path.removeprefix("/trade-api/v2")
        self.seen.append(
            (
                response.request.method,
                path,
                url.query.decode(),
                response.status_code,
                response.content,
            )
        )


async def test_pykalshi_drives_every_endpoint_and_responses_match_the_spec(
    sim: RunningSim, sim_keys, private_key, other: Signed, spec_book: SpecBook
) -> None:
    from pykalshi.aclient import AsyncKalshiClient
    from pykalshi.enums import BookSide, TimeInForce

    recorder = Recorder()
    client = AsyncKalshiClient(
        api_key_id=KEY_ID,
        private_key_path=str(sim_keys[0]),
        api_base=sim.rest_url,
        max_retries=0,
    )
    client._session.event_hooks["response"].append(recorder.hook)
    signed = Signed(sim, private_key)
    signed.client.event_hooks["response"].append(recorder.hook)
    ticker = next(
        t for t, m in sim.sim.exchange.markets.items() if m.price_level_structure == "linear_cent"
    )
    market_model = sim.sim.exchange.markets[ticker]
    p = client.portfolio

    # exchange, account, reference data
    assert (await client.exchange.get_status()).trading_active
    assert "standard_hours" in await client.exchange.get_schedule()
    await client.exchange.get_user_data_timestamp()
    assert (await client.api_keys.get_limits()).usage_tier == "unlimited"
    markets = await client.get_markets(limit=3, fetch_all=True)
    assert len(markets) == len(sim.sim.exchange.markets)
    market = await client.get_market(ticker)
    assert market.status is not None and market.data.price_level_structure
    await market.get_orderbook(depth=5)
    await client.get_event(market_model.event_ticker, with_nested_markets=True)
    await client.get_events(limit=2, fetch_all=True)
    await client.get_series(market_model.series_ticker, include_volume=True)
    await client.get_all_series()

    # V2 order entry
    order = await p.place_order(
        ticker,
        book_side=BookSide.BID,
        price_dollars="0.4000",
        count_fp="10.00",
        client_order_id="fid-1",
    )
    assert order.status.value == "resting"
    await other.post(
        "/portfolio/events/orders",
        order_body(ticker, "ask", "0.40", "3", time_in_force="immediate_or_cancel"),
    )
    fetched = await p.get_order(order.order_id)
    assert fetched.fill_count_fp == "3.00" and fetched.book_side == BookSide.BID
    await p.get_queue_position(order.order_id)
    await p.get_queue_positions(market_tickers=[ticker])
    amended = await p.amend_order(
        order.order_id, count_fp="8.00", price_dollars="0.4000", ticker=ticker, book_side="bid"
    )
    assert amended.remaining_count_fp == "5.00"
    await p.decrease_order(order.order_id, "1.00")
    await signed.post(f"/portfolio/events/orders/{order.order_id}/decrease", {"reduce_to": "2.00"})
    await p.cancel_order(order.order_id)
    batch = await p.batch_place_orders(
        [
            {"ticker": ticker, "book_side": "bid", "price_dollars": "0.30", "count_fp": "1.00"},
            {
                "ticker": ticker,
                "book_side": "ask",
                "price_dollars": "0.70",
                "count_fp": "1.00",
                "time_in_force": TimeInForce.GTC.value,
            },
        ]
    )
    assert len(batch) == 2
    await p.batch_cancel_orders([o.order_id for o in batch])
    await p.place_order(ticker, book_side=BookSide.BID, price_dollars="0.2000", count_fp="1.00")
    assert (await signed.delete("/portfolio/events/orders")).status_code == 204

    # portfolio reads
    await p.get_balance()
    positions = await p.get_positions()
    assert positions[0].position_fp == "3.00"
    assert len(await p.get_fills(limit=1, fetch_all=True)) == 1
    await p.get_orders(limit=2, fetch_all=True)
    await p.get_trades() if hasattr(p, "get_trades") else await client.get_trades(ticker=ticker)

    # order groups
    group = await p.create_order_group("10.00")
    await p.get_order_group(group.id)
    await p.get_order_groups()
    await p.update_order_group_limit(group.id, "20.00")
    await p.trigger_order_group(group.id)
    await p.reset_order_group(group.id)
    await signed.delete(f"/portfolio/order_groups/{group.id}")

    # settlement
    await signed.control("POST", f"/markets/{ticker}/determine", {"result": "yes"})
    await signed.control("POST", f"/markets/{ticker}/settle")
    settlements = await p.get_settlements()
    assert (
        settlements[0].market_result == "yes" if hasattr(settlements[0], "market_result") else True
    )

    # endpoints pykalshi 2.0.0 has no method for
    await signed.client.get(f"/trade-api/v2/markets/orderbooks?tickers={ticker}")
    await signed.client.get("/trade-api/v2/account/endpoint_costs")

    # every response against Kalshi's documents
    undocumented = set()
    operations = set()
    for method, path, query, status, body in recorder.seen:
        assert status < 400, (method, path, status, body[:300])
        missing = spec_book.validate(method, path, query, status, body)
        if missing is not None:
            undocumented.add(missing)
        else:
            found = spec_book.find(method, path)
            assert found is not None
            operations.add(f"{method} {found[0]}")
    # cancel-all exists only in spec >= 3.31, which is not among the saved documents
    assert undocumented == {"DELETE /portfolio/events/orders"}
    assert len(operations) >= 35, sorted(operations)
    await signed.close()
    await client.aclose() if hasattr(client, "aclose") else await client._session.aclose()
