"""The REST surface over HTTP: auth, errors, pagination, order entry, groups, limits, faults."""

from __future__ import annotations

import time

import httpx

from sim.auth import auth_headers, generate_key_pair
from sim.server import RunningSim
from tests.sim.simtest_helpers import Signed, order_body


def first_ticker(sim: RunningSim, series: str = "SIMQ") -> str:
    return next(t for t, m in sim.sim.exchange.markets.items() if m.series_ticker == series)


async def test_missing_bad_and_stale_signatures_get_kalshis_401(client: Signed):
    plain = await client.client.get("/trade-api/v2/portfolio/balance")
    assert plain.status_code == 401
    assert plain.json()["error"]["code"] == "authentication_error"
    headers = client.headers("GET", "/portfolio/balance")
    bad = await client.client.get(
        "/trade-api/v2/portfolio/balance",
        headers={**headers, "KALSHI-ACCESS-SIGNATURE": headers["KALSHI-ACCESS-SIGNATURE"][::-1]},
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["details"] == "INCORRECT_API_KEY_SIGNATURE"
    stale = auth_headers(
        client.key_id,
        client.key,
        "GET",
        "/trade-api/v2/portfolio/balance",
        int(time.time() * 1000) - 120_000,
    )
    resp = await client.client.get("/trade-api/v2/portfolio/balance", headers=stale)
    assert resp.status_code == 401 and resp.json()["error"]["details"] == "STALE_TIMESTAMP"
    # the query string is not signed
    ok = await client.client.get(
        "/trade-api/v2/portfolio/fills?limit=5", headers=client.headers("GET", "/portfolio/fills")
    )
    assert ok.status_code == 200


async def test_ed25519_keys_are_accepted(sim: RunningSim):
    from cryptography.hazmat.primitives import serialization

    private_pem, public_pem = generate_key_pair("ed25519")
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        resp = await http.post(
            "/_sim/keys", json={"key_id": "ed", "public_key_pem": public_pem.decode()}
        )
        assert resp.status_code == 200
    key = serialization.load_pem_private_key(private_pem, password=None)
    signed = Signed(sim, key, "ed")  # type: ignore[arg-type]
    resp = await signed.get("/portfolio/balance")
    assert resp.status_code == 200 and resp.json()["balance_dollars"] == "10000.0000"
    await signed.close()


async def test_public_market_data(client: Signed, sim: RunningSim):
    status = (await client.client.get("/trade-api/v2/exchange/status")).json()
    assert status["trading_active"] is True
    schedule = (await client.client.get("/trade-api/v2/exchange/schedule")).json()
    assert "standard_hours" in schedule["schedule"]
    first = (await client.client.get("/trade-api/v2/markets?limit=4")).json()
    assert len(first["markets"]) == 4 and first["cursor"]
    rest = (
        await client.client.get(f"/trade-api/v2/markets?limit=4&cursor={first['cursor']}")
    ).json()
    assert len(rest["markets"]) == 2 and rest["cursor"] == ""
    tickers = [m["ticker"] for m in first["markets"] + rest["markets"]]
    assert tickers == sorted(sim.sim.exchange.markets)
    market = first["markets"][0]
    assert market["price_ranges"] and market["status"] == "active"
    assert market["price_level_structure"] in ("linear_cent", "deci_cent", "tapered_deci_cent")
    missing = await client.client.get("/trade-api/v2/markets/NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    series = (await client.client.get("/trade-api/v2/series/SIMMF")).json()["series"]
    assert series["fee_type"] == "quadratic_with_maker_fees"
    event = (await client.client.get(f"/trade-api/v2/events/{market['event_ticker']}")).json()
    assert {m["ticker"] for m in event["markets"]} >= {market["ticker"]}
    costs = (await client.client.get("/trade-api/v2/account/endpoint_costs")).json()
    assert costs["default_cost"] == 10
    assert {
        "method": "DELETE",
        "path": "/trade-api/v2/portfolio/events/orders/{order_id}",
        "cost": 2,
    } in costs["endpoint_costs"]


async def test_order_entry_round_trip(client: Signed, other: Signed, sim: RunningSim):
    ticker = first_ticker(sim)
    created = await client.post(
        "/portfolio/events/orders", order_body(ticker, "bid", "0.40", "10", client_order_id="c-1")
    )
    assert created.status_code == 201, created.text
    ack = created.json()
    assert ack["remaining_count"] == "10.00" and ack["fill_count"] == "0.00"
    dup = await client.post(
        "/portfolio/events/orders", order_body(ticker, "bid", "0.40", "10", client_order_id="c-1")
    )
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "order_already_exists"
    cross = await other.post(
        "/portfolio/events/orders", order_body(ticker, "ask", "0.40", "1", post_only=True)
    )
    assert cross.status_code == 400
    assert cross.json()["error"] == {
        "code": "invalid_order",
        "message": "invalid order",
        "details": "post only cross",
    }
    taken = (
        await other.post(
            "/portfolio/events/orders",
            order_body(ticker, "ask", "0.39", "4", time_in_force="immediate_or_cancel"),
        )
    ).json()
    assert taken["fill_count"] == "4.00" and taken["remaining_count"] == "0.00"
    assert taken["average_fill_price"] == "0.4000"
    order = (await client.get(f"/portfolio/orders/{ack['order_id']}")).json()["order"]
    assert order["fill_count_fp"] == "4.00" and order["remaining_count_fp"] == "6.00"
    assert order["status"] == "resting" and order["book_side"] == "bid"
    queue = (await client.get(f"/portfolio/orders/{ack['order_id']}/queue_position")).json()
    assert queue == {"queue_position_fp": "0.00"}
    amended = await client.post(
        f"/portfolio/events/orders/{ack['order_id']}/amend",
        {"ticker": ticker, "side": "bid", "price": "0.40", "count": "7.00"},
    )
    assert amended.status_code == 200 and amended.json()["remaining_count"] == "3.00"
    decreased = await client.post(
        f"/portfolio/events/orders/{ack['order_id']}/decrease", {"reduce_by": "1"}
    )
    assert decreased.json()["remaining_count"] == "2.00"
    cancelled = (await client.delete(f"/portfolio/events/orders/{ack['order_id']}")).json()
    assert cancelled["reduced_by"] == "2.00"
    again = (await client.delete(f"/portfolio/events/orders/{ack['order_id']}")).json()
    assert again["reduced_by"] == "0.00"
    fills = (await client.get("/portfolio/fills")).json()["fills"]
    assert [f["count_fp"] for f in fills] == ["4.00"] and fills[0]["is_taker"] is False
    positions = (await client.get("/portfolio/positions")).json()["market_positions"]
    assert positions[0]["position_fp"] == "4.00"
    other_positions = (await other.get("/portfolio/positions")).json()["market_positions"]
    assert other_positions[0]["position_fp"] == "-4.00"
    balance = (await client.get("/portfolio/balance")).json()
    assert balance["balance_dollars"] == "9998.4000"


async def test_batches_cancel_all_and_errors(client: Signed, sim: RunningSim):
    ticker = first_ticker(sim)
    batch = (
        await client.post(
            "/portfolio/events/orders/batched",
            {
                "orders": [
                    order_body(ticker, "bid", "0.30", "1"),
                    order_body(ticker, "bid", "0.305", "1"),  # off grid
                    order_body("NOPE", "bid", "0.30", "1"),
                    order_body(ticker, "ask", "0.70", "2", client_order_id="b-4"),
                ]
            },
        )
    ).json()["orders"]
    assert ["error" not in item for item in batch] == [True, False, False, True]
    assert batch[1]["error"]["code"] == "invalid_parameters"
    assert batch[2]["error"]["code"] == "not_found"
    cancelled = (
        await client.delete(
            "/portfolio/events/orders/batched",
            {"orders": [{"order_id": batch[0]["order_id"]}, {"order_id": "missing"}]},
        )
    ).json()["orders"]
    assert cancelled[0]["reduced_by"] == "1.00" and "error" not in cancelled[0]
    assert cancelled[1]["error"]["code"] == "not_found"
    resp = await client.delete("/portfolio/events/orders")
    assert resp.status_code == 204
    resting = (await client.get("/portfolio/orders?status=resting")).json()["orders"]
    assert resting == []
    missing = await client.post("/portfolio/events/orders", {"ticker": ticker})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_parameters"
    poor = await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.99", "20000"))
    assert poor.json()["error"]["code"] == "available_balance_too_low"
    legacy = await client.post("/portfolio/orders", {"ticker": ticker})
    assert legacy.status_code == 400
    assert legacy.json()["error"]["message"] == "Please switch to the V2 endpoints"


async def test_orders_pagination_and_queue_positions(client: Signed, sim: RunningSim):
    ticker = first_ticker(sim)
    ids = []
    for i in range(7):
        ack = (
            await client.post(
                "/portfolio/events/orders", order_body(ticker, "bid", f"0.{10 + i}", "1")
            )
        ).json()
        ids.append(ack["order_id"])
    seen, cursor = [], ""
    while True:
        page = (
            await client.get(f"/portfolio/orders?limit=3{'&cursor=' + cursor if cursor else ''}")
        ).json()
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    queue = (await client.get(f"/portfolio/orders/queue_positions?market_tickers={ticker}")).json()
    assert {q["order_id"] for q in queue["queue_positions"]} == set(ids)


async def test_order_groups(client: Signed, other: Signed, sim: RunningSim):
    ticker = first_ticker(sim)
    created = await client.post("/portfolio/order_groups/create", {"contracts_limit_fp": "5.00"})
    assert created.status_code == 201
    group_id = created.json()["order_group_id"]
    ack = (
        await client.post(
            "/portfolio/events/orders",
            order_body(ticker, "bid", "0.40", "10", order_group_id=group_id),
        )
    ).json()
    group = (await client.get(f"/portfolio/order_groups/{group_id}")).json()
    assert group["orders"] == [ack["order_id"]] and group["contracts_limit_fp"] == "5.00"
    await other.post(
        "/portfolio/events/orders",
        order_body(ticker, "ask", "0.40", "5", time_in_force="immediate_or_cancel"),
    )
    order = (await client.get(f"/portfolio/orders/{ack['order_id']}")).json()["order"]
    assert order["status"] == "canceled"  # 5 matched in 15 s: the group triggered
    refused = await client.post(
        "/portfolio/events/orders", order_body(ticker, "bid", "0.40", "1", order_group_id=group_id)
    )
    assert refused.status_code == 400
    assert (await client.put(f"/portfolio/order_groups/{group_id}/reset", {})).json() == {}
    assert (
        await client.put(f"/portfolio/order_groups/{group_id}/limit", {"contracts_limit_fp": "50"})
    ).status_code == 200
    assert (await client.put(f"/portfolio/order_groups/{group_id}/trigger", {})).status_code == 200
    listed = (await client.get("/portfolio/order_groups")).json()["order_groups"]
    assert listed[0]["id"] == group_id and listed[0]["contracts_limit_fp"] == "50.00"
    assert (await client.delete(f"/portfolio/order_groups/{group_id}")).status_code == 200
    assert (await client.get(f"/portfolio/order_groups/{group_id}")).status_code == 404


async def test_rate_limits_answer_kalshis_429(start_sim, private_key):
    running = await start_sim(agents=False, rate_tier="basic")
    client = Signed(running, private_key)
    ticker = first_ticker(running)
    limits = (await client.get("/account/limits")).json()
    assert limits["usage_tier"] == "basic" and limits["write"] == {
        "refill_rate": 100,
        "bucket_capacity": 100,
    }
    codes = []
    for _ in range(15):  # basic: 100 write tokens, 10 per create
        resp = await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.10", "1"))
        codes.append(resp.status_code)
    assert codes.count(201) >= 10 and 429 in codes
    rejected = await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.10", "1"))
    if rejected.status_code == 429:
        assert rejected.json() == {"error": "too many requests"}
    stats = (await client.control("GET", "/stats")).json()
    assert stats["http_429"] >= 1
    await client.close()


async def test_faults_and_control(client: Signed, sim: RunningSim):
    ticker = first_ticker(sim)
    set_fault = await client.control("POST", "/faults", {"error_5xx_rate": 1.0})
    assert set_fault.status_code == 200
    resp = await client.get("/portfolio/balance")
    assert resp.status_code == 500
    await client.control("POST", "/faults", {"clear": True, "burst_429_s": 5})
    assert (await client.get("/portfolio/balance")).status_code == 429
    await client.control("POST", "/faults", {"clear": True, "latency_ms": 120})
    started = time.monotonic()
    assert (await client.get("/portfolio/balance")).status_code == 200
    assert time.monotonic() - started >= 0.1
    await client.control("POST", "/faults", {"clear": True})
    bad = await client.control("POST", "/faults", {"nonsense": 1})
    assert bad.status_code == 400
    ack = (
        await client.post(
            "/portfolio/events/orders",
            order_body(ticker, "bid", "0.40", "3", client_order_id="log-1"),
        )
    ).json()
    log = (await client.control("GET", f"/orders?key_id={client.key_id}")).json()["orders"]
    assert [o["client_order_id"] for o in log] == ["log-1"]
    assert (await client.control("POST", f"/markets/{ticker}/pause")).json()["status"] == "inactive"
    refused = await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.40", "1"))
    assert refused.json()["error"]["code"] == "MARKET_INACTIVE"
    assert (await client.control("POST", f"/markets/{ticker}/resume")).json()["status"] == "active"
    order = (await client.get(f"/portfolio/orders/{ack['order_id']}")).json()["order"]
    assert order["status"] == "canceled"  # reactivation cancels resting orders
    assert (
        await client.control("POST", f"/markets/{ticker}/close_date", {"close_in_s": 3600})
    ).status_code == 200
    assert (await client.control("POST", f"/markets/{ticker}/close")).json()["status"] == "closed"
    determined = (
        await client.control("POST", f"/markets/{ticker}/determine", {"result": "yes"})
    ).json()
    assert determined == {"ticker": ticker, "status": "determined", "result": "yes"}
    assert (await client.control("POST", f"/markets/{ticker}/settle")).json()[
        "status"
    ] == "finalized"
    account = (await client.control("GET", f"/accounts/{client.key_id}")).json()
    assert account["available_dollars"] == "10000.0000" and account["resting_orders"] == []
    stats = (await client.control("GET", "/stats")).json()
    assert stats["http_5xx_injected"] == 1 and stats["money_conserved"] is True
