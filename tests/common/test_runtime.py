import asyncio
import gc
import importlib
import io
import os
import signal
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest
import redis

from common.clock import ManualClock
from common.errors import ConfigError
from common.log import get_logger, register_secret, setup_logging
from common.runtime import Context, Deferred, loop_factory, run_loop, run_service
from common.settings import Settings
from tests.support.procs import REPO, wait_for


def start_sample(
    redis_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "DORA_REDIS_URL": redis_url,
        "DORA_HEARTBEAT_INTERVAL_MS": "100",
        "DORA_HEARTBEAT_TTL_MS": "2000",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.sample_service", *args],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigterm_drains_exits_zero_and_clears_heartbeat(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    proc = start_sample(redis_url)
    try:
        wait_for(lambda: r.get("dora:hb:sample"), 10, "the heartbeat")
        heartbeat = orjson.loads(r.get("dora:hb:sample") or "{}")
        assert heartbeat["pid"] == proc.pid and 0 < r.pttl("dora:hb:sample") <= 2000
        wait_for(lambda: int(r.get("sample:steps") or 0) > 3, 10, "steps")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert r.get("sample:drained") == "1"
    assert r.get("dora:hb:sample") is None
    lines = [orjson.loads(line) for line in proc.stderr.read().splitlines()]  # type: ignore[union-attr]
    events = [line["event"] for line in lines]
    assert "started" in events and "stopping" in events and events[-1] == "stopped"
    assert all(line["service"] == "sample" for line in lines)


@pytest.mark.slow
def test_second_signal_exits_at_once(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    proc = start_sample(redis_url, "--slow-stop")
    try:
        wait_for(lambda: r.get("dora:hb:sample"), 10, "the heartbeat")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the first signal is being handled: stop() is now draining (slowly)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert r.get("sample:drained") is None


@pytest.mark.parametrize(
    ("env", "loop_module"), [({}, "uvloop"), ({"DORA_UVLOOP": "false"}, "asyncio.unix_events")]
)
def test_a_process_runs_on_uvloop_unless_told_not_to(
    redis_url: str, env: dict[str, str], loop_module: str
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    proc = start_sample(redis_url, env=env)
    try:
        wait_for(lambda: r.get("sample:loop"), 10, "the sample's start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert r.get("sample:loop") == loop_module


def test_without_uvloop_installed_the_loop_is_asyncios(monkeypatch: pytest.MonkeyPatch) -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_loop(which()) == "uvloop"
    assert run_loop(which(), uvloop=False) == "asyncio.unix_events"
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert loop_factory() is None
    assert run_loop(which()) == "asyncio.unix_events"


@pytest.mark.parametrize(
    ("args", "env", "lowered_by"),
    [
        (["--cold"], {}, 10),  # the default DORA_COLD_NICE
        (["--cold"], {"DORA_COLD_NICE": "5"}, 5),
        (["--cold"], {"DORA_COLD_NICE": "0"}, 0),
        ([], {"DORA_COLD_NICE": "5"}, 0),  # the trading path is never lowered
    ],
)
def test_a_process_off_the_trading_path_runs_at_a_lower_cpu_priority(
    redis_url: str, args: list[str], env: dict[str, str], lowered_by: int
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.delete("sample:nice")  # the last case's
    proc = start_sample(redis_url, *args, env=env)
    try:
        wait_for(lambda: r.get("sample:nice"), 20, "the sample's start")
    finally:
        proc.kill()
        proc.wait(10)
    assert int(r.get("sample:nice") or -1) == min(19, os.nice(0) + lowered_by)


@pytest.mark.parametrize(
    ("module", "cold"),
    [
        ("services.marketdata.service", False),
        ("services.strategy.service", False),
        ("services.executor.service", False),
        ("services.persister.service", True),
        ("services.risk.service", True),
        ("services.fills.service", False),  # positions: risk compares them live
        ("services.web.service", True),
    ],
)
def test_only_the_processes_off_the_tick_to_order_path_are_cold(
    monkeypatch: pytest.MonkeyPatch, module: str, cold: bool
) -> None:
    service = importlib.import_module(module)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(service, "service_main", lambda *a, **kw: seen.update(kw) or 0)
    assert service.main() == 0
    assert seen.get("cold", False) is cold


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"DORA_KALSHI_ENV": "staging"},
            "DORA_KALSHI_ENV must be one of prod, demo, sim, was 'staging'",
        ),
        ({"DORA_REDIS_URL": "redis//nohost"}, "DORA_REDIS_URL must be a redis://"),
    ],
)
def test_bad_settings_stop_the_process_with_one_line(
    redis_url: str, env: dict[str, str], reason: str
) -> None:
    proc = start_sample(redis_url, env=env)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in lines[0]


def test_missing_key_source_stops_a_kalshi_process_with_one_line(redis_url: str) -> None:
    code = (
        "import sys; from common.runtime import service_main; "
        "sys.exit(service_main(lambda s: None, [], needs_kalshi=True))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        timeout=20,
        env={**os.environ, "DORA_REDIS_URL": redis_url, "DORA_KALSHI_KEY_ID": "k1"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "no Kalshi private key source" in lines[0]


class Flaky:
    """Fails start twice (as if the exchange were down), then fails one step."""

    name = "flaky"

    def __init__(self) -> None:
        self.starts = 0
        self.steps = 0
        self.stopped = False

    async def start(self, ctx: Context) -> None:
        self.starts += 1
        if self.starts < 3:
            raise ConnectionError("not yet")

    async def step(self, ctx: Context) -> None:
        self.steps += 1
        if self.steps == 1:
            raise RuntimeError("one bad message")
        ctx.stopping.set()

    async def stop(self, ctx: Context) -> None:
        self.stopped = True


async def test_start_is_retried_and_a_failed_step_never_ends_the_process(
    settings: Settings,
) -> None:
    service = Flaky()
    code = await asyncio.wait_for(run_service(service, settings, clock=ManualClock()), 20)
    assert code == 0 and service.starts == 3 and service.steps == 2 and service.stopped


async def test_objects_alive_after_start_are_frozen_out_of_the_collector(
    settings: Settings,
) -> None:
    """A full collection scans only what the loop created: the startup objects (modules,
    clients) were most of the strategy's and made its collections take up to 100 ms."""
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        await asyncio.wait_for(run_service(Flaky(), settings, clock=ManualClock()), 20)
        assert gc.get_freeze_count() > 1_000
    finally:
        gc.unfreeze()


async def test_a_deferred_service_is_built_with_retries_then_started_and_stopped(
    settings: Settings,
) -> None:
    """Clients that need the running context are built before the service object; a build that
    fails for a passing reason is retried like a start."""
    builds: list[Context] = []
    service = Flaky()

    async def build(ctx: Context) -> Flaky:
        builds.append(ctx)
        if len(builds) < 2:
            raise ConnectionError("exchange not up yet")
        return service

    deferred = Deferred("flaky", build)
    code = await asyncio.wait_for(run_service(deferred, settings, clock=ManualClock()), 20)
    assert code == 0 and len(builds) == 2 and builds[0].name == "flaky"
    assert service.starts == 3 and service.stopped


async def test_a_config_error_while_building_exits_2(settings: Settings) -> None:
    async def build(ctx: Context) -> Flaky:
        raise ConfigError("DORA_KALSHI_PRIVATE_KEY_PATH: no such file")

    assert await run_service(Deferred("bad", build), settings) == 2


class BadConfig(Flaky):
    async def start(self, ctx: Context) -> None:
        raise ConfigError("quote_size must be > 0, was -5")


async def test_config_error_at_start_exits_2(settings: Settings) -> None:
    assert await run_service(BadConfig(), settings) == 2


def test_json_log_lines_never_carry_a_secret() -> None:
    stream = io.StringIO()
    setup_logging("unit", "debug", stream)
    secret = "super-secret-token-value-123456"
    register_secret(secret)
    log = get_logger("unit")
    log.info("placed", market="KX", price=5600, note=f"token {secret}")
    log.error(
        "oops", detail="-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----"
    )
    try:
        raise ValueError(f"bad {secret}")
    except ValueError:
        log.exception("failed")
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert (
        lines[0]["event"] == "placed" and lines[0]["market"] == "KX" and lines[0]["price"] == 5600
    )
    text = stream.getvalue()
    assert secret not in text and "MIIabc" not in text and "[REDACTED]" in text


def test_trace_stages_split_a_sample_and_refuse_malformed_ones() -> None:
    from common.trace import STAGES, stages

    total, per = stages("1000,1200,1500,2500,2600,4000")  # type: ignore[misc]
    assert total == 3000
    assert per == dict(zip(STAGES, (200, 300, 1000, 100, 1400), strict=True))
    for bad in ("1,2,3", "a,b,c,d,e,f", "0,1,2,3,4,5", ""):
        assert stages(bad) is None
