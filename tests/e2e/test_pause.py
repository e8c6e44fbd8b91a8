"""The exchange's weekly pause, compressed, end to end on the local stack (issue 20, item 5):
the simulator schedules a trading pause 40 s after it starts, for 12 s, published in its
schedule. dora pulls its quotes ``pause_lead_s`` (10 s here) before it, sends no create or
amend into it (the exchange would refuse them), and quotes again by itself once it is over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from cli.devstack import LocalStack, StackConfig
from tests.e2e.stack_watch import two_sided_markets, wait_until

pytestmark = pytest.mark.slow
FIRST_PAUSE_S, PAUSE_S, LEAD_S = 40, 12, 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    base: Path = tmp_path_factory.mktemp("pause")
    s = LocalStack(
        StackConfig(
            base_dir=base,
            markets=8,
            seed=5,
            sim_args=["--pause-schedule", f"every:3600:{PAUSE_S}:{FIRST_PAUSE_S}"],
            env={"DORA_PAUSE_LEAD_S": str(LEAD_S), "DORA_EXCHANGE_POLL_MS": "1000"},
        )
    )
    s.start()
    yield s
    s.stop()


def test_quotes_are_pulled_before_the_pause_nothing_is_refused_and_quoting_resumes(
    stack: LocalStack,
) -> None:
    answer = httpx.get(f"{stack.sim_url}/exchange/schedule", timeout=10).json()
    schedule = answer["schedule"]["maintenance_windows"]
    start = _ms(schedule[0]["start_datetime"]) / 1000
    end = _ms(schedule[0]["end_datetime"]) / 1000
    account_url = f"{stack.control_url}/accounts/{stack.config.key_id}"

    def resting() -> int:
        return len(httpx.get(account_url, timeout=5).json()["resting_orders"])

    assert wait_until(lambda: len(two_sided_markets(_account(account_url))) >= 4, 40) is not None
    assert time.time() < start - LEAD_S, "the stack came up too late to see the lead"
    samples: list[tuple[float, int]] = []
    while time.time() < end + 1:
        samples.append((time.time(), resting()))
        time.sleep(0.25)
    before_lead = [n for t, n in samples if t < start - LEAD_S - 1]
    in_pause = [n for t, n in samples if start + 0.5 <= t < end]
    assert before_lead and max(before_lead) > 0  # quoting until the lead
    assert in_pause and max(in_pause) == 0  # pulled before the pause, nothing during it
    pulled_at = next(t for t, n in samples if t >= start - LEAD_S and n == 0)
    assert pulled_at < start, f"quotes were still resting {pulled_at - start:.1f}s into the pause"
    stats = httpx.get(f"{stack.control_url}/stats", timeout=5).json()
    assert stats.get("refused_trading_paused", 0) == 0  # no create or amend sent into it
    took = wait_until(lambda: len(two_sided_markets(_account(account_url))) >= 4, 30)
    assert took is not None, "dora did not quote again after the pause"
    exchange = orjson.loads(stack._cli("status", "--json"))["exchange"]
    assert exchange["trading_active"] and exchange["quoting"]  # dora status says so too
    print(
        f"\npause {start:.0f}-{end:.0f}: quotes gone {start - pulled_at:.1f}s before it, "
        f"two-sided again {took:.1f}s after it ended"
    )


def _account(url: str) -> dict[str, object]:
    data: dict[str, object] = httpx.get(url, timeout=5).json()
    return data


def _ms(text: str) -> int:
    from common.kalshi.wire.fields import parse_time_ms

    return parse_time_ms(text, "schedule")
