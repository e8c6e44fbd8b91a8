"""The dashboard's HTTP surface against a real Redis and a moto DynamoDB: who may act, what a
control writes (exactly what the ``dora`` command writes), and what is refused."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from bench.synthetic import World, seed
from common.clock import Clock
from common.domain import RiskState
from common.dynamo import Dynamo
from common.dynamo.tables import TableNames, create_tables, make_client
from common.events import pnl_event
from common.keys import Keys
from common.log import register_secret, setup_logging
from common.messages import decode_event, parse_control
from common.redis_codec import decode_risk
from common.settings import load_settings
from common.streams import append
from services.web.app import make_app
from services.web.auth import CSRF_HEADER, SESSION_COOKIE, Auth
from services.web.state import WebState

TOKEN = "test-token-0123456789abcdef"
NOW_MS = 1_796_400_000_000


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger("dora")
    saved = (root.handlers[:], root.level, root.propagate)
    setup_logging("web", stream=stream)
    yield stream
    root.handlers[:], root.level, root.propagate = saved


@pytest.fixture
async def web_state(
    redis_url: str, moto_endpoint: str, log_text: io.StringIO
) -> AsyncIterator[WebState]:
    settings = load_settings(
        {
            "DORA_REDIS_URL": redis_url,
            "DORA_DYNAMODB_ENDPOINT": moto_endpoint,
            "DORA_WEB_TOKEN": TOKEN,
        },
        read_file=False,
    )
    register_secret(settings.web_token)
    create_tables(make_client(settings), TableNames.from_prefix(settings.table_prefix))
    redis: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await seed(redis, Keys(), World(3), NOW_MS)
    state = WebState(
        settings=settings,
        redis=redis,
        keys=Keys(),
        clock=Clock(),
        log=setup_logging("web", stream=log_text),
        auth=Auth(settings.web_token),
    )
    state.view = {"markets": []}
    yield state
    await redis.aclose()


@pytest.fixture
async def client(web_state: WebState) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(web_state), host="127.0.0.1")) as c:
        yield c


async def login(client: TestClient[Any, Any]) -> dict[str, str]:
    """Log in through ``?token=`` and return the headers a page of this origin sends."""
    response = await client.get(f"/?token={TOKEN}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    csrf = (await (await client.get("/api/session")).json())["csrf"]
    host = f"{client.host}:{client.port}"
    return {CSRF_HEADER: csrf, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}


async def test_the_token_starts_a_strict_httponly_session_and_leaves_the_address(
    client: TestClient[Any, Any], log_text: io.StringIO
) -> None:
    response = await client.get(f"/?token={TOKEN}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    session = await (await client.get("/api/session")).json()
    assert session["authenticated"] is True and len(session["csrf"]) == 64
    assert TOKEN not in log_text.getvalue()


async def test_a_wrong_token_starts_nothing(client: TestClient[Any, Any]) -> None:
    response = await client.get("/?token=wrong-token-0123456789", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/?login=failed"
    assert "Set-Cookie" not in response.headers
    assert (await (await client.get("/api/session")).json())["authenticated"] is False
    forged = {SESSION_COOKIE: "abc.0123"}
    answer = await client.get("/api/session", cookies=forged)
    assert (await answer.json())["authenticated"] is False


async def test_the_login_form_starts_a_session(client: TestClient[Any, Any]) -> None:
    host = f"http://{client.host}:{client.port}"
    response = await client.post(
        "/login", data={"token": TOKEN}, headers={"Origin": host}, allow_redirects=False
    )
    assert response.status == 303 and SESSION_COOKIE in response.headers["Set-Cookie"]
    other = await client.post(
        "/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"}
    )
    assert other.status == 403


async def test_halt_does_what_dora_halt_does(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    headers = await login(client)
    pubsub = web_state.redis.pubsub()
    await pubsub.subscribe(web_state.keys.control)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    response = await client.post("/api/halt", json={"reason": "news"}, headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["message"].startswith("halted: news")
    risk = await web_state.redis.hgetall(web_state.keys.risk)
    assert risk["halted"] == "1" and risk["reason"] == "news"
    message = await pubsub.get_message(timeout=2)
    assert message is not None
    command = parse_control(message["data"])
    assert (command.cmd, command.reason, command.source) == ("halt", "news", "web")
    (_, fields), *_ = await web_state.redis.xrevrange(web_state.keys.stream("pnl"), count=1)
    assert decode_event(fields) == (
        "risk",
        {"ts_ms": int(risk["halted_ms"]), "halted": True, "reason": "news"},
    )
    await pubsub.aclose()
    response = await client.post("/api/resume", json={}, headers=headers)
    assert response.status == 200
    assert await web_state.redis.hget(web_state.keys.risk, "halted") == "0"


async def test_halt_with_a_corrupted_risk_key_does_what_dora_halt_does(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    """The key replaced keeping the day, the operator's reason recorded, and the message says
    so (it was refused: nothing recorded until the risk process's next check)."""
    headers = await login(client)
    redis, k = web_state.redis, web_state.keys
    day = RiskState(day="2026-12-05", daily_pnl=-900_000, day_start_pnl=4_000_000)
    await append(redis, k, "pnl", "pnl", pnl_event(day, NOW_MS))
    await redis.set(k.risk, "oops")
    response = await client.post("/api/halt", json={"reason": "news"}, headers=headers)
    assert response.status == 200, await response.text()
    message = (await response.json())["message"]
    assert message.startswith("halted: news") and "corrupted" in message and "kept" in message
    state = decode_risk(await redis.hgetall(k.risk))
    assert state.halted and state.reason == "news"
    assert (state.day_start_pnl, state.daily_pnl) == (4_000_000, -900_000)


async def test_resume_with_a_corrupted_risk_key_does_what_dora_resume_does(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    """The key replaced keeping the day's starting PnL from the risk process's last record, then
    resumed; with no record, 409: replaced by a halt that says so, and a second resume lifts it."""
    headers = await login(client)
    redis, k = web_state.redis, web_state.keys
    day = RiskState(day="2026-12-05", daily_pnl=-900_000, day_start_pnl=4_000_000)
    await append(redis, k, "pnl", "pnl", pnl_event(day, NOW_MS))
    await redis.set(k.risk, "oops")
    response = await client.post("/api/resume", json={}, headers=headers)
    assert response.status == 200, await response.text()
    message = (await response.json())["message"]
    assert message.startswith("resumed") and "corrupted" in message and "kept" in message
    state = decode_risk(await redis.hgetall(k.risk))
    assert not state.halted and (state.day_start_pnl, state.daily_pnl) == (4_000_000, -900_000)

    await redis.delete(k.stream("pnl"))
    await redis.set(k.risk, "oops")
    response = await client.post("/api/resume", json={}, headers=headers)
    assert response.status == 409
    error = (await response.json())["error"]
    assert error.startswith("not resumed") and "no risk record" in error
    assert decode_risk(await redis.hgetall(k.risk)).halted
    response = await client.post("/api/resume", json={}, headers=headers)
    assert response.status == 200
    assert not decode_risk(await redis.hgetall(k.risk)).halted


async def test_config_uses_the_clis_validation_and_writes_nothing_on_bad_input(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    headers = await login(client)
    db = await web_state.dynamo()
    for body, message in [
        ({"changes": {"max_daily_loss": "-5"}}, "max_daily_loss must be > 0 dollars, was '-5'"),
        ({"changes": {"quote_size": "5"}}, "unknown global config field 'quote_size'"),
        ({"market": "T-1", "changes": {"quote_size": "500"}}, "quote_size must be <="),
        ({"market": "bad ticker", "changes": {"quote_size": "1"}}, "market_id must be"),
        ({"changes": {"max_daily_loss": 5.5}}, "max_daily_loss must be given as text"),
        ({"changes": {}}, "no field to change"),
    ]:
        response = await client.post("/api/config", json=body, headers=headers)
        assert response.status == 400, body
        assert message in (await response.json())["error"]
    assert db.config.get_global() is None and db.config.scan_markets() == []
    response = await client.post(
        "/api/config", json={"changes": {"max_daily_loss": "250"}}, headers=headers
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["message"] == "global config created: max_daily_loss=250.00 (version 1)"
    stored = db.config.get_global()
    assert stored is not None and str(stored["max_daily_loss"]) == "250.00"


async def test_enable_and_disable_a_market(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    headers = await login(client)
    db: Dynamo = await web_state.dynamo()
    response = await client.post("/api/markets/T-1/disable", headers=headers)
    assert response.status == 400 and "T-1 has no config" in (await response.json())["error"]
    response = await client.post("/api/markets/T-1/enable", headers=headers)
    assert (await response.json())["message"] == "market T-1 created and enabled (version 1)"
    response = await client.post("/api/markets/T-1/disable", headers=headers)
    assert (await response.json())["message"] == "market T-1 disabled (version 2)"
    item = db.config.get_market("T-1")
    assert item is not None and item["enabled"] is False


async def test_cancel_all_without_a_key_says_so(client: TestClient[Any, Any]) -> None:
    headers = await login(client)
    response = await client.post("/api/cancel-all", json={}, headers=headers)
    assert response.status == 503
    assert "DORA_KALSHI_KEY_ID" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),  # no session: read-only
        ({"Sec-Fetch-Site": "same-site"}, 403),  # another port of 127.0.0.1
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "http://127.0.0.1:1"}, 403),
        ({"Origin": "null"}, 403),
    ],
)
async def test_no_control_acts_without_the_session_or_from_elsewhere(
    client: TestClient[Any, Any], web_state: WebState, headers: dict[str, str], status: int
) -> None:
    if status == 403:  # even with the session and its CSRF token: only the origin is wrong
        good = await login(client)
        headers = {CSRF_HEADER: good[CSRF_HEADER], **headers}
    db = await web_state.dynamo()
    for path, body in [
        ("/api/halt", {"reason": "x"}),
        ("/api/resume", {}),
        ("/api/cancel-all", {}),
        ("/api/config", {"changes": {"max_daily_loss": "1"}}),
        ("/api/markets/T-1/enable", {}),
    ]:
        response = await client.post(path, json=body, headers=headers)
        assert response.status == status, (path, await response.text())
    assert await web_state.redis.hget(web_state.keys.risk, "halted") == "0"
    assert db.config.get_global() is None and db.config.get_market("T-1") is None


async def test_a_session_without_its_csrf_token_cannot_act(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    headers = await login(client)
    for csrf in ("", "0" * 64):
        response = await client.post("/api/halt", headers={**headers, CSRF_HEADER: csrf})
        assert response.status == 403
    assert await web_state.redis.hget(web_state.keys.risk, "halted") == "0"


async def test_only_loopback_names_are_served(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/session", headers={"Host": "rebind.evil.example"})
    assert response.status == 421
    response = await client.get("/", headers={"Host": f"localhost:{client.port}"})
    assert response.status == 200
    for name in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
        assert name in response.headers
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_the_page_and_its_assets_come_from_dora_itself(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/")).text()
    assert 'id="halt"' in page and 'id="resume"' in page and 'id="cancel-all"' in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN
    for asset in ("/static/app.js", "/static/chart.js", "/static/style.css"):
        response = await client.get(asset)
        assert response.status == 200 and "https://" not in await response.text()


async def test_events_start_with_the_full_view(
    client: TestClient[Any, Any], web_state: WebState
) -> None:
    web_state.full_message = lambda: b'event: full\ndata: {"seq":7}\n\n'
    response = await client.get("/api/events")
    assert response.headers["Content-Type"] == "text/event-stream"
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 2)
    assert first == b"retry: 1000\n\n"
    full = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 2)
    assert orjson.loads(full.split(b"data: ", 1)[1]) == {"seq": 7}
    web_state.hub.publish(b"event: delta\ndata: {}\n\n")
    delta = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 2)
    assert delta.startswith(b"event: delta")
    response.close()
