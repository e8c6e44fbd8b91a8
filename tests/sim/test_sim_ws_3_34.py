"""The simulator's WebSocket messages against Kalshi's AsyncAPI document (``asyncapi-2.0.0.yaml``
in ``shared/kalshi``, read in place) with the changes of the newer AsyncAPI that CHANGES-3.34.md
lists: ``seq`` on every ``trade`` and ``market_lifecycle_v2`` message, ``exchange_index``
required on ``user_order`` (and ``status`` ``unknown``, null ``created_ts_ms``/``created_time``,
``last_update_reason``), ``margin_market_maker_program_fees`` in ``event_fee_update``. Every
channel dora uses is driven and every message it gets must validate."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sim.server import RunningSim
from tests.sim.simtest_helpers import Signed, WsClient, order_body
from tests.support.shared import shared_kalshi

ASYNCAPI = shared_kalshi() / "asyncapi-2.0.0.yaml"
pytestmark = pytest.mark.skipif(
    not ASYNCAPI.exists(), reason=f"Kalshi's AsyncAPI document is not at {ASYNCAPI}"
)
MESSAGES = {  # message type -> its payload schema in the document
    "orderbook_snapshot": "orderbookSnapshotPayload",
    "orderbook_delta": "orderbookDeltaPayload",
    "ticker": "tickerPayload",
    "trade": "tradePayload",
    "fill": "fillPayload",
    "user_order": "userOrderPayload",
    "market_position": "marketPositionPayload",
    "order_group_updates": "orderGroupUpdatesPayload",
    "market_lifecycle_v2": "marketLifecycleV2Payload",
    "event_fee_update": "eventFeeUpdatePayload",
    "subscribed": "subscribedResponsePayload",
    "ok": "okResponsePayload",
    "error": "errorResponsePayload",
}


def schemas_3_34() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI.read_text())
    schemas: dict[str, Any] = copy.deepcopy(document["components"]["schemas"])
    for name in ("tradePayload", "marketLifecycleV2Payload"):
        schemas[name]["required"] = sorted({*schemas[name]["required"], "seq"})
        schemas[name]["properties"]["seq"] = {"$ref": "#/components/schemas/sequenceNumber"}
    order = schemas["userOrderPayload"]["properties"]["msg"]
    order["required"] = sorted({*order["required"], "exchange_index"})
    order["properties"]["exchange_index"] = {"type": "integer"}
    order["properties"]["last_update_reason"] = {"type": ["string", "null"]}
    for field in ("created_ts_ms", "created_time"):
        if field in order["properties"]:
            order["properties"][field] = {"anyOf": [order["properties"][field], {"type": "null"}]}
    status = order["properties"].get("status", {})
    if "enum" in status:
        status["enum"] = [*status["enum"], "unknown"]
    fee = schemas["eventFeeUpdatePayload"]["properties"]["msg"]["properties"]
    override = fee.get("fee_type_override", {})
    if "enum" in override:
        override["enum"] = [*override["enum"], "margin_market_maker_program_fees"]
    return {"components": {"schemas": schemas}}


def validator_for(root: dict[str, Any], name: str) -> Draft202012Validator:
    resource: Resource[Any] = Resource(contents=root, specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:kalshi", resource)
    schema = {"$ref": f"urn:kalshi#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


async def test_every_message_dora_reads_validates_against_the_3_34_asyncapi(
    sim: RunningSim, private_key: Any, client: Signed, other: Signed
) -> None:
    root = schemas_3_34()
    exchange = sim.sim.exchange
    ticker = next(
        t for t, m in sorted(exchange.markets.items()) if m.price_level_structure == "linear_cent"
    )
    event_ticker = exchange.markets[ticker].event_ticker
    sockets = []
    for use_yes_price in (False, True):
        ws = await WsClient(sim, private_key).connect()
        channels = ["orderbook_delta", "ticker", "trade", "fill", "user_orders"]
        channels += ["market_positions", "order_group_updates", "market_lifecycle_v2"]
        await ws.send(
            "subscribe",
            {"channels": channels, "market_ticker": ticker, "use_yes_price": use_yes_price},
        )
        for _ in channels:
            await ws.until(lambda m: m["type"] == "subscribed")
        sockets.append(ws)
    group = (await client.post("/portfolio/order_groups/create", {"contracts_limit": 100})).json()
    await client.post(
        "/portfolio/events/orders",
        order_body(ticker, "bid", "0.45", "10", order_group_id=group["order_group_id"]),
    )
    await other.post(
        "/portfolio/events/orders",
        order_body(ticker, "ask", "0.45", "4", time_in_force="immediate_or_cancel"),
    )
    await client.control(
        "POST",
        f"/events/{event_ticker}/fees",
        {"fee_type": "quadratic_with_maker_fees", "fee_multiplier": 0.5},
    )
    await client.control("POST", f"/markets/{ticker}/pause")
    await client.control("POST", f"/markets/{ticker}/resume")
    await client.control("POST", f"/markets/{ticker}/determine", {"result": "yes"})
    invalid: list[str] = []
    seen: set[str] = set()
    for ws in sockets:
        await ws.sync()
        for message in ws.received:
            kind = message.get("type")
            if kind not in MESSAGES:
                continue
            seen.add(kind)
            name = MESSAGES[kind]
            if kind == "ok" and isinstance(message.get("msg"), list):
                name = "listSubscriptionsResponsePayload"
            for error in validator_for(root, name).iter_errors(message):
                invalid.append(f"{kind}: {error.json_path}: {error.message}"[:300])
        await ws.close()
    assert invalid == []
    assert {
        "orderbook_snapshot",
        "orderbook_delta",
        "ticker",
        "trade",
        "fill",
        "user_order",
        "market_position",
        "order_group_updates",
        "market_lifecycle_v2",
        "event_fee_update",
        "subscribed",
    } <= seen
