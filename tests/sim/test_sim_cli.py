"""``dora sim`` and ``dora sim keygen`` as a person runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.main import main


def test_keygen_writes_a_private_key_only_the_owner_reads(tmp_path: Path, capsys) -> None:
    assert main(["sim", "keygen", "--out", str(tmp_path), "--name", "bot"]) == 0
    private = tmp_path / "bot.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN RSA PRIVATE KEY" in private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "bot.pub.pem").read_bytes()
    assert json.loads(capsys.readouterr().out)["key_id"] == "bot"
    assert main(["sim", "keygen", "--out", str(tmp_path), "--name", "bot"]) == 2  # no overwrite
    assert main(["sim", "keygen", "--out", str(tmp_path), "--name", "ed", "--type", "ed25519"]) == 0


def test_keygen_out_naming_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["sim", "keygen", "--out", str(afile), "--name", "bot"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dora: --out must be a directory, was the file {str(afile)!r}"


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--scenario", "nope"],
        ["sim", "--rate-tier", "gold"],
        ["sim", "--markets", "0"],
        ["sim", "--api-keys", "/no/such/dir"],
        ["sim", "--port", "70000"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dora: ") and "\n" not in err


@pytest.mark.slow
def test_sim_process_prints_one_json_line_and_writes_the_ready_file(tmp_path: Path) -> None:
    assert main(["sim", "keygen", "--out", str(tmp_path / "keys"), "--name", "bot"]) == 0
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "sim",
            "--port",
            "0",
            "--markets",
            "3",
            "--api-keys",
            str(tmp_path / "keys"),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["event"] == "listening" and line["keys"] == ["bot"]
        for _ in range(50):
            if ready.exists():
                break
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["rest_url"] == line["rest_url"] and info["port"] == line["port"] > 0
        status = httpx.get(f"{info['rest_url']}/exchange/status", timeout=5).json()
        assert status["trading_active"] is True
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not ready.exists()
