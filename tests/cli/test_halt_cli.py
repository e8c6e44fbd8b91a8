import os
import subprocess
import sys
from dataclasses import replace

import orjson
import redis

from common.domain import RiskState
from common.events import pnl_event
from common.keys import Keys
from common.messages import decode_event, encode_event
from common.redis_codec import decode_risk
from tests.support.procs import REPO


def dora(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DORA_REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_halt_is_durable_announced_and_lifted_only_by_resume(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(k.control)
    proc = dora("halt", "--reason", "fat finger", redis_url=redis_url)
    assert proc.returncode == 0 and "halted: fat finger" in proc.stdout
    state = decode_risk(r.hgetall(k.risk))
    assert state.halted and state.reason == "fat finger" and state.halted_ms > 0
    message = None
    for _ in range(20):  # the first read may be the (ignored) subscribe confirmation
        message = message or pubsub.get_message(timeout=0.2)
    assert message and orjson.loads(message["data"])["cmd"] == "halt"
    kind, payload = decode_event(r.xrange(k.stream("pnl"))[-1][1])
    assert kind == "risk" and payload["halted"] is True
    proc = dora("resume", redis_url=redis_url)
    assert proc.returncode == 0 and "was halted: fat finger" in proc.stdout
    assert not decode_risk(r.hgetall(k.risk)).halted


def test_unreachable_redis_and_bad_arguments_are_one_line() -> None:
    proc = dora("halt", redis_url="redis://127.0.0.1:1/0")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "cannot reach Redis" in proc.stderr
    proc = dora("halt", "--bogus", redis_url="redis://127.0.0.1:1/0")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    proc = dora("resume", redis_url="not-a-url")
    assert proc.returncode == 2 and "DORA_REDIS_URL" in proc.stderr


def test_halt_with_a_corrupted_risk_key_replaces_it_keeping_the_day(redis_url: str) -> None:
    """The kill switch with dora:risk of the wrong type (a person's SET): the record was refused
    (exit 2, nothing recorded until the risk process's next check). Now the key is replaced as
    the risk process would, keeping the day, with the operator's reason, and the line says so."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    day = RiskState(day="2026-12-06", daily_pnl=-900_000, day_start_pnl=4_000_000)
    add_risk_record(r, k, replace(day, last_check_ms=1_796_500_000_000))
    r.set(k.risk, "oops")
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(k.control)
    proc = dora("halt", "--reason", "wrong type", redis_url=redis_url)
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout.startswith("halted: wrong type"), proc.stdout
    assert "corrupted" in proc.stdout and "replaced" in proc.stdout and "kept" in proc.stdout
    state = decode_risk(r.hgetall(k.risk))
    assert state.halted and state.reason == "wrong type"
    assert (state.day, state.day_start_pnl, state.daily_pnl) == ("2026-12-06", 4_000_000, -900_000)
    kinds = [decode_event(f) for _, f in r.xrange(k.stream("pnl"))]
    assert [(kind, p["halted"], p["reason"]) for kind, p in kinds[1:]] == [
        ("risk", True, "wrong type")
    ]
    message = None
    for _ in range(20):
        message = message or pubsub.get_message(timeout=0.2)
    assert message and orjson.loads(message["data"])["cmd"] == "halt"
    assert orjson.loads(message["data"])["reason"] == "wrong type"
    assert pubsub.get_message(timeout=0.2) is None  # announced once


def add_risk_record(r: redis.Redis, k: Keys, state: RiskState) -> None:
    """The risk process's snapshot on the pnl stream (every few seconds)."""
    fields = encode_event("pnl", pnl_event(state, state.last_check_ms))
    r.xadd(k.stream("pnl"), fields)  # type: ignore[arg-type]


def test_resume_with_a_corrupted_risk_key_replaces_it_keeping_the_day(redis_url: str) -> None:
    """'dora resume' used to fail on WRONGTYPE until the risk process replaced the key at its
    next check; now it replaces it itself, from the same record, and resumes."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    day = RiskState(day="2026-12-06", daily_pnl=-900_000, day_start_pnl=4_000_000)
    add_risk_record(r, k, replace(day, last_check_ms=1_796_500_000_000))
    r.set(k.risk, "oops")
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(k.control)

    proc = dora("resume", "--reason", "checked", redis_url=redis_url)

    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1 and proc.stdout.startswith("resumed")
    assert "corrupted" in proc.stdout and "kept" in proc.stdout, proc.stdout
    state = decode_risk(r.hgetall(k.risk))
    assert not state.halted and state.reason == "checked"
    assert (state.day, state.day_start_pnl, state.daily_pnl) == ("2026-12-06", 4_000_000, -900_000)
    commands = []
    for _ in range(10):
        message = pubsub.get_message(timeout=0.1)
        if message:
            commands.append(orjson.loads(message["data"])["cmd"])
    assert commands == ["resume"]  # no halt announced behind it, which the risk process records
    kinds = [decode_event(f) for _, f in r.xrange(k.stream("pnl"))]
    assert [(kind, p["halted"]) for kind, p in kinds[1:]] == [("risk", True), ("risk", False)]


def test_resume_with_a_corrupted_risk_key_and_no_record_of_the_day_stays_halted(
    redis_url: str,
) -> None:
    """No record to keep the day's starting PnL from: the key is replaced by a halt that says so,
    exit 2 with one line; a second 'dora resume' accepts that the day counts from now."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    r.set(k.risk, "oops")

    proc = dora("resume", redis_url=redis_url)

    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not resumed" in proc.stderr and "no risk record" in proc.stderr
    assert "'dora resume' again" in proc.stderr
    state = decode_risk(r.hgetall(k.risk))
    assert state.halted and "no risk record" in state.reason
    proc = dora("resume", redis_url=redis_url)
    assert proc.returncode == 0 and "was halted: risk state key" in proc.stdout
    assert not decode_risk(r.hgetall(k.risk)).halted


def test_a_halt_edited_by_hand_is_still_a_halt_until_resume(redis_url: str) -> None:
    """``HSET dora:risk halted 0`` is no resume: ``dora status`` still shows the halt and its
    reason, and ``dora resume`` lifts it (it says what it lifted)."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    assert dora("halt", "--reason", "fat finger", redis_url=redis_url).returncode == 0
    r.hset(k.risk, "halted", "0")
    proc = dora("status", "--json", redis_url=redis_url)
    assert proc.returncode == 0, proc.stderr
    risk = orjson.loads(proc.stdout)["risk"]
    assert risk["halted"] is True and risk["reason"] == "fat finger"
    assert "HALTED: fat finger" in dora("status", redis_url=redis_url).stdout
    proc = dora("resume", redis_url=redis_url)
    assert proc.returncode == 0 and "was halted: fat finger" in proc.stdout
    assert not decode_risk(r.hgetall(k.risk)).halted
    assert "HALTED" not in dora("status", redis_url=redis_url).stdout
