"""Secrets never appear in logs or exceptions.

- Every log of a chaos run (the short one in tests/chaos/test_chaos_short.py, and ``make
  chaos``) is scanned for PEM markers and every base64 line of the bot's key: the invariant
  "no secret in any log" (sim/chaos/invariants.py ``scan_for_secrets``).
- Here: the logger scrubs key material and registered secrets even when they come inside an
  exception; and the error a command prints for a broken key file, an unreachable Redis with a
  password, or an exchange that is not there names the problem, never the secret.

(The IAM policy's least privilege is checked in tests/deploy/test_iam_policy.py.)
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from common.log import REDACTED, register_secret, setup_logging
from sim.chaos.invariants import scan_for_secrets, secret_markers
from tests.kalshi.test_signing import ed_pem, rsa_pem
from tests.support.procs import run_dora


def test_the_logger_scrubs_key_material_and_registered_secrets() -> None:
    _, pem = rsa_pem()
    register_secret("redis-pass-0123456789")
    stream = io.StringIO()
    root = logging.getLogger("dora")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        log = setup_logging("security-test", stream=stream)
        try:
            raise ValueError(f"bad key {pem} with redis://:redis-pass-0123456789@host/0")
        except ValueError:
            log.exception("key_failed", detail=pem)
        log.info("connect", url="redis://:redis-pass-0123456789@h/0")
    finally:
        root.handlers[:], root.level, root.propagate = saved
    text = stream.getvalue()
    assert text.count("\n") == 2 and text.count(REDACTED) >= 4
    assert tmp_scan(text, secret_markers(pem, ["redis-pass-0123456789"])) == []


def tmp_scan(text: str, markers: list[str]) -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.log"
        path.write_text(text)
        return scan_for_secrets([path], markers).violations


def _dora(env: dict[str, str], *args: str) -> str:
    proc = run_dora(*args, env=env)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_command_errors_never_print_the_key(tmp_path: Path) -> None:
    _, pem = ed_pem()
    lines = pem.splitlines()
    broken = "\n".join([lines[0], lines[1][:-4] + "!!!!", *lines[2:]]) + "\n"
    markers = secret_markers(pem) + secret_markers(broken)
    base = {
        "DORA_REDIS_URL": "redis://:redis-pass-0123456789@127.0.0.1:9/0",
        "DORA_KALSHI_ENV": "sim",
        "DORA_KALSHI_BASE_URL": "http://127.0.0.1:9/trade-api/v2",
        "DORA_KALSHI_KEY_ID": "bot",
    }
    outputs = []
    for name, text in (("good.pem", pem), ("broken.pem", broken), ("not-a-key.pem", "x" * 64)):
        key = tmp_path / name
        key.write_text(text)
        key.chmod(0o600)
        env = {**base, "DORA_KALSHI_PRIVATE_KEY_PATH": str(key)}
        outputs.append(_dora(env, "cancel-all"))
    outputs.append(_dora(base, "halt"))
    joined = "\n".join(outputs)
    assert tmp_scan(joined, [*markers, "redis-pass-0123456789"]) == [], joined
    assert all(len(o.strip().splitlines()) == 1 for o in outputs), outputs
