import os
import subprocess
import sys

import orjson
import redis

from common.keys import Keys
from common.messages import decode_event
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


def test_halt_goes_out_even_when_the_risk_key_refuses_the_record(redis_url: str) -> None:
    """The kill switch with dora:risk of the wrong type (a person's SET): the record fails, the
    halt is still announced (the executor stops on the message, risk replaces the key with a
    halt), and the one line says both."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    k = Keys()
    r.set(k.risk, "oops")
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(k.control)
    proc = dora("halt", "--reason", "wrong type", redis_url=redis_url)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "halt announced to 1 process(es)" in proc.stderr and "WRONGTYPE" in proc.stderr
    message = None
    for _ in range(20):
        message = message or pubsub.get_message(timeout=0.2)
    assert message and orjson.loads(message["data"])["cmd"] == "halt"
    assert orjson.loads(message["data"])["reason"] == "wrong type"
