"""``python -m services.web`` as supervisord runs it: heartbeat, SIGTERM, a taken port, bad
settings, and the token kept out of its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis

from tests.support.procs import REPO, free_port, wait_for

TOKEN = "proc-token-0123456789abcdef"
pytestmark = pytest.mark.slow


def start_web(redis_url: str, port: int, **env: str) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DORA_")}
    environ.update(
        {
            "DORA_REDIS_URL": redis_url,
            "DORA_WEB_PORT": str(port),
            "DORA_WEB_TOKEN": TOKEN,
            "DORA_DYNAMODB_ENDPOINT": "http://127.0.0.1:9",  # no DynamoDB: no history, no harm
            "DORA_HEARTBEAT_INTERVAL_MS": "200",
            **env,
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "services.web"],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def _lines(proc: subprocess.Popen[bytes]) -> list[dict[str, object]]:
    assert proc.stderr is not None
    return [orjson.loads(line) for line in proc.stderr.read().splitlines() if line.startswith(b"{")]


def test_serves_beats_and_stops_cleanly_on_sigterm(redis_url: str, r: redis.Redis) -> None:
    port = free_port()
    proc = start_web(redis_url, port)
    try:
        wait_for(lambda: r.get("dora:hb:web"), 15, "the web heartbeat")
        beat = orjson.loads(r.get("dora:hb:web") or "{}")
        assert beat["pid"] == proc.pid and "tick_ms" in beat
        view = httpx.get(f"http://127.0.0.1:{port}/api/view", timeout=5).json()
        assert view["risk"]["halted"] is False and "markets" in view
        answer = httpx.get(f"http://127.0.0.1:{port}/?token={TOKEN}", timeout=5)
        assert answer.status_code == 303 and "dora_session=" in answer.headers["set-cookie"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    assert r.get("dora:hb:web") is None
    lines = _lines(proc)
    events = [line["event"] for line in lines]
    assert "listening" in events and events[-1] == "stopped"
    assert TOKEN not in orjson.dumps(lines).decode()


def test_a_taken_port_is_retried_not_a_crash_loop(redis_url: str, r: redis.Redis) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    proc = start_web(redis_url, port)
    try:
        time.sleep(3)
        assert proc.poll() is None  # still running, retrying
        holder.close()
        wait_for(lambda: r.get("dora:hb:web"), 30, "the web heartbeat once the port is free")
        assert httpx.get(f"http://127.0.0.1:{port}/api/session", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        holder.close()
        proc.kill()
    assert "start_failed_retrying" in [line["event"] for line in _lines(proc)]


def test_a_bad_token_setting_stops_it_with_one_line(redis_url: str) -> None:
    proc = start_web(redis_url, free_port(), DORA_WEB_TOKEN="short")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "DORA_WEB_TOKEN must be at least 16 characters" in lines[0]
    assert "short" not in lines[0].split("was", 1)[1]
