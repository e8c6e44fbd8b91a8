"""The dashboard in a real headless browser against the running stack (issue 22's "must show").

One stack for the module (Redis, moto, the simulator, the six processes and ``web`` under the
repository's supervisord.conf, 8 markets) and one chromium (Debian's, through its chromedriver).
The tests run in order: listed and matching ``dora status``, changing by itself, halt / resume /
cancel-all with the token, config, and then without the token and from another site.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from bench.browser import chromium, missing
from cli.devstack import LocalStack, StackConfig
from common.dynamo import Dynamo
from common.settings import load_settings
from tests.support.procs import free_port, run_dora

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing() is not None, reason=missing() or ""),
]
CONTROLS = ("halt", "resume", "cancel-all", "market-enable", "market-disable", "config-apply")
ROWS_JS = """
return Object.fromEntries([...document.querySelectorAll('#markets tbody tr')].map(
  tr => [tr.dataset.ticker, {...tr.dataset}]));
"""


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    s = LocalStack(StackConfig(base_dir=tmp_path_factory.mktemp("webstack"), markets=8, seed=5))
    s.start()
    yield s
    s.stop()
    log = (s.var_dir / "log" / "web.log").read_text()
    assert s.web_token not in log  # given in URLs and forms all along, never logged


@pytest.fixture(scope="module")
def browser(stack: LocalStack) -> Iterator[Any]:
    with chromium(1400, 1000) as driver:
        yield driver


@pytest.fixture(scope="module")
def r(stack: LocalStack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url, decode_responses=True)


@pytest.fixture(scope="module")
def dynamo(stack: LocalStack) -> Dynamo:
    return Dynamo.from_settings(load_settings(stack.env(), read_file=False))


def base_url(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.web_port}/"


def on_dashboard(stack: LocalStack, browser: Any) -> None:
    """The dashboard open with an operator session and its controls usable: opened (with the
    token) unless this browser is already on it, as a test run alone starts from a blank page."""
    if browser.current_url != base_url(stack):
        browser.get(stack.dashboard_url)

    def usable() -> bool:
        found = [browser.find_elements("id", c) for c in CONTROLS[:3]]
        return all(f and f[0].is_enabled() for f in found)

    assert wait_until(usable, 10), (
        "the dashboard's controls are not usable 10 s after opening it with the token"
    )


def rows(browser: Any) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = browser.execute_script(ROWS_JS)
    return found


def resting(stack: LocalStack, ticker: str | None = None) -> int:
    orders = stack.sim_get(f"/accounts/{stack.config.key_id}")["resting_orders"]
    return sum(1 for o in orders if ticker is None or o["ticker"] == ticker)


def text(browser: Any, element_id: str) -> str:
    value: str = browser.find_element("id", element_id).text
    return value


def status_json(stack: LocalStack) -> dict[str, Any]:
    proc = run_dora("status", "--json", env=stack.env())
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _ours(row: dict[str, str]) -> dict[str, Any]:
    def num(name: str) -> int | None:
        return int(row[name]) if row.get(name, "") != "" else None

    return {
        "best_bid": num("bid"),
        "best_ask": num("ask"),
        "position": num("position"),
        "realized_pnl": num("realized"),
        "unrealized_pnl": num("unrealized"),
        "bid_quote": num("ourBid"),
        "ask_quote": num("ourAsk"),
    }


def _theirs(market: dict[str, Any]) -> dict[str, Any]:
    quotes = market["quotes"]
    return {
        "best_bid": market.get("best_bid"),
        "best_ask": market.get("best_ask"),
        "position": market["position"],
        "realized_pnl": market["realized_pnl"],
        "unrealized_pnl": market["unrealized_pnl"],
        "bid_quote": quotes["bid"]["price"] if "bid" in quotes else None,
        "ask_quote": quotes["ask"]["price"] if "ask" in quotes else None,
    }


def test_every_market_is_listed_within_5_s_and_matches_dora_status(
    stack: LocalStack, browser: Any
) -> None:
    started = time.monotonic()
    browser.get(stack.dashboard_url)
    listed = wait_until(lambda: set(rows(browser)) >= set(stack.tickers), 5)
    took = time.monotonic() - started
    print(f"\nall {len(stack.tickers)} markets listed {took:.2f}s after opening the page")
    assert listed, f"listed: {sorted(rows(browser))}, expected {stack.tickers}"
    assert browser.current_url == base_url(stack)  # the token left the address bar
    # The market keeps moving: compare when the page, read before and after `dora status`,
    # did not change meanwhile (the book feed is held back for a few seconds to find such a
    # moment quickly; fills still come).
    stack.sim_post("/faults", {"stall_book_feed_s": 6})
    mismatch: dict[str, Any] = {}
    for _ in range(20):
        before = rows(browser)
        status = status_json(stack)
        after = rows(browser)
        if before != after:
            continue
        theirs = {m["ticker"]: _theirs(m) for m in status["markets"]}
        ours = {t: _ours(row) for t, row in after.items()}
        mismatch = {t: (ours.get(t), theirs.get(t)) for t in theirs if ours.get(t) != theirs[t]}
        risk = browser.find_element("id", "risk-card").get_attribute("data-daily-pnl")
        if not mismatch and set(ours) == set(theirs) and risk == str(status["risk"]["daily_pnl"]):
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"page and 'dora status --json' never agreed: {mismatch}")
    assert any(v["position"] for v in ours.values()) or any(
        v["bid_quote"] for v in ours.values()
    ), "nothing traded or quoted: the comparison would be empty"


def test_the_page_changes_by_itself_as_the_market_trades(browser: Any) -> None:
    browser.execute_script("window.__sameDocument = true;")
    first = rows(browser)
    seq = int(browser.find_element("tag name", "body").get_attribute("data-seq"))
    assert wait_until(lambda: rows(browser) != first, 20, 0.2), "no row changed in 20 s"
    assert int(browser.find_element("tag name", "body").get_attribute("data-seq")) > seq
    assert browser.execute_script("return window.__sameDocument === true;")  # never reloaded
    assert text(browser, "live") == "live"


def test_halt_leaves_nothing_resting_within_1_s_and_the_page_shows_it(
    stack: LocalStack, browser: Any, r: redis.Redis, dynamo: Dynamo
) -> None:
    on_dashboard(stack, browser)
    assert wait_until(lambda: resting(stack) >= 4, 15, 0.1), "not quoting before the halt"
    browser.find_element("id", "halt-reason").send_keys("browser test")
    started = time.monotonic()
    browser.find_element("id", "halt").click()
    assert wait_until(lambda: resting(stack) == 0, 5, 0.02), "orders still resting 5 s later"
    took = time.monotonic() - started
    print(
        f"\nhalt button: zero resting orders at the simulator {took * 1000:.0f} ms after the click"
    )
    assert took <= 1.0
    assert wait_until(lambda: text(browser, "trading-state") == "HALTED", 2)
    assert text(browser, "halt-reason-shown") == "browser test"
    assert r.hget("dora:risk", "halted") == "1" and r.hget("dora:risk", "reason") == "browser test"
    stored = wait_until(lambda: (s := dynamo.state.get_risk()) and s.risk.halted and s, 10, 0.2)
    assert stored, "the halt did not reach DynamoDB's risk_state"
    time.sleep(1.5)
    assert resting(stack) == 0  # and nothing new is sent while halted


def test_resume_brings_quoting_back(stack: LocalStack, browser: Any, r: redis.Redis) -> None:
    browser.find_element("id", "resume").click()
    assert wait_until(lambda: resting(stack) >= 4, 15, 0.1), "no quotes 15 s after resume"
    assert wait_until(lambda: text(browser, "trading-state") == "TRADING", 2)
    assert r.hget("dora:risk", "halted") == "0"


def resting_ids(stack: LocalStack) -> set[str]:
    orders = stack.sim_get(f"/accounts/{stack.config.key_id}")["resting_orders"]
    return {o["order_id"] for o in orders}


def test_cancel_all_cancels_at_the_exchange(stack: LocalStack, browser: Any) -> None:
    assert wait_until(lambda: resting(stack) >= 4, 15, 0.1)
    before = resting_ids(stack)
    browser.find_element("id", "cancel-all").click()
    # the bot is not halted: what it quotes after the last cancel is said apart, not a failure
    found = wait_until(
        lambda: re.fullmatch(
            r"cancelled every resting order of subaccount 0; 0 left"
            r"(; \d+ placed since by a running executor \('dora halt' stops it quoting\))?",
            text(browser, "control-message"),
        ),
        10,
    )
    assert found, text(browser, "control-message")
    assert not before & resting_ids(stack)  # every order resting at the click was cancelled


def _global_versions(r: redis.Redis, dynamo: Dynamo) -> tuple[Any, Any]:
    stored = dynamo.config.get_global() or {}
    return stored.get("version"), r.hget("dora:cfg:global", "version")


def _set_config(browser: Any, target: str, field: str, value: str) -> str:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "config-target")).select_by_value(target)
    Select(browser.find_element("id", "config-field")).select_by_value(field)
    box = browser.find_element("id", "config-value")
    box.clear()
    box.send_keys(value)
    browser.execute_script("document.getElementById('config-message').textContent = '';")
    browser.find_element("id", "config-apply").click()
    message: str = wait_until(lambda: text(browser, "config-message"), 10)
    return message


def test_a_bad_config_value_shows_the_clis_message_and_changes_nothing(
    stack: LocalStack, browser: Any, r: redis.Redis, dynamo: Dynamo
) -> None:
    versions = _global_versions(r, dynamo)
    cli = run_dora("config", "set", "max_daily_loss=-5", env=stack.env())
    assert cli.returncode == 2
    message = _set_config(browser, "", "max_daily_loss", "-5")
    assert message == cli.stderr.strip().removeprefix("dora: ")
    assert "error" in browser.find_element("id", "config-message").get_attribute("class")
    time.sleep(2)  # the mirror's next pass would show a write
    assert _global_versions(r, dynamo) == versions


def test_a_market_is_reconfigured_disabled_and_enabled_from_its_row(
    stack: LocalStack, browser: Any, r: redis.Redis
) -> None:
    ticker = stack.tickers[0]
    browser.find_element("css selector", f'#markets tr[data-ticker="{ticker}"]').click()
    assert wait_until(lambda: text(browser, "detail-ticker") == ticker, 5)
    message = _set_config(browser, ticker, "quote_size", "4")
    assert message.startswith(f"market {ticker} updated: quote_size=4.00"), message
    assert wait_until(lambda: r.hget(f"dora:cfg:market:{ticker}", "quote_size") == "4.00", 10)
    browser.find_element("id", "market-disable").click()
    assert wait_until(lambda: r.hget(f"dora:cfg:market:{ticker}", "enabled") == "0", 10)
    assert wait_until(lambda: resting(stack, ticker) == 0, 10, 0.1), "still quoted when disabled"
    browser.find_element("id", "market-enable").click()
    assert wait_until(lambda: r.hget(f"dora:cfg:market:{ticker}", "enabled") == "1", 10)
    assert wait_until(lambda: resting(stack, ticker) > 0, 15, 0.1), "not quoted once enabled"


POST_JS = """
const done = arguments[arguments.length - 1];
const posts = [["/api/halt", {reason: "x"}], ["/api/cancel-all", {}],
               ["/api/config", {changes: {max_daily_loss: "1"}}]];
Promise.all(posts.map(([path, body]) => fetch(path, {method: "POST", body: JSON.stringify(body),
  headers: {"Content-Type": "application/json", "X-Dora-CSRF": arguments[0]}})
  .then(r => r.status))).then(done);
"""


def test_without_the_token_no_control_acts(
    stack: LocalStack, browser: Any, r: redis.Redis, dynamo: Dynamo
) -> None:
    browser.delete_all_cookies()
    browser.get(base_url(stack) + "?token=not-the-token-0123456789")
    assert wait_until(lambda: text(browser, "control-message") == "wrong token", 5)
    assert wait_until(lambda: text(browser, "who") == "read-only", 5)
    assert not any(browser.find_element("id", c).is_enabled() for c in CONTROLS)
    assert browser.find_element("id", "login-form").is_displayed()
    assert wait_until(lambda: resting(stack) >= 4, 15, 0.1)
    versions = _global_versions(r, dynamo)
    statuses = browser.execute_async_script(POST_JS, "")
    assert statuses == [401, 401, 401]
    time.sleep(1.5)
    assert r.hget("dora:risk", "halted") == "0" and resting(stack) >= 1
    assert _global_versions(r, dynamo) == versions


ATTACK_PAGE = """<!doctype html><html><body>
<form id="f" method="post" action="http://127.0.0.1:{port}/api/halt" enctype="text/plain">
<input name='{{"reason":"csrf","x":"' value='"}}'></form>
<script>
for (const [path, body] of [["/api/cancel-all", "{{}}"],
    ["/api/config", '{{"changes":{{"max_daily_loss":"1"}}}}']]) {{
  fetch("http://127.0.0.1:{port}" + path, {{method: "POST", mode: "no-cors",
    credentials: "include", body, headers: {{"Content-Type": "text/plain"}}}});
}}
setTimeout(() => document.getElementById("f").submit(), 300);
</script></body></html>"""


def _serve(page: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def test_a_cross_site_post_is_refused_even_with_a_session(
    stack: LocalStack, browser: Any, r: redis.Redis, dynamo: Dynamo
) -> None:
    browser.get(stack.dashboard_url)  # a logged-in operator's browser...
    assert wait_until(lambda: text(browser, "who") == "operator", 5)
    assert wait_until(lambda: resting(stack) >= 4, 15, 0.1)
    versions = _global_versions(r, dynamo)
    web_log = stack.var_dir / "log" / "web.log"
    refused_before = web_log.read_text().count('"control_refused"')
    server, port = _serve(ATTACK_PAGE.format(port=stack.web_port))
    try:
        for host in ("127.0.0.1", "localhost"):  # ...visits a page of the same site, then another
            browser.get(f"http://{host}:{port}/")
            time.sleep(2.5)
    finally:
        server.shutdown()
    assert r.hget("dora:risk", "halted") == "0"
    assert resting(stack) >= 1
    assert _global_versions(r, dynamo) == versions
    refused = web_log.read_text().count('"control_refused"') - refused_before
    assert refused >= 4, f"{refused} refusals logged"  # each POST reached it and was refused
    browser.get(base_url(stack))
    assert wait_until(lambda: text(browser, "who") == "operator", 5)  # the session still holds


def test_the_page_loads_nothing_from_elsewhere(browser: Any, stack: LocalStack) -> None:
    browser.get(base_url(stack))
    time.sleep(1)
    entries = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    own = f"http://127.0.0.1:{stack.web_port}/"
    assert entries and all(name.startswith(own) for name in entries), entries
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [e for e in errors if own + "api/" not in e["message"]], errors


def test_stack_info_has_the_dashboard(stack: LocalStack) -> None:
    info = stack.info()
    assert info["dashboard_url"] == f"{base_url(stack)}?token={stack.web_token}"
    assert info["dashboard_token"] == stack.web_token == info["env"]["DORA_WEB_TOKEN"]
