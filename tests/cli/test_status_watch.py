"""``dora status --watch`` is a screen an operator leaves open: a Redis that goes down or stops
answering is shown on it and the watch goes on; a one-shot ``dora status`` stays one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from tests.support.procs import REPO, RedisServer, wait_for


class Watch:
    """``dora status ARGS`` running, its output collected as it comes."""

    def __init__(self, redis_url: str, *args: str) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DORA_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "status", *args],
            env={**clean, "DORA_REDIS_URL": redis_url},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out = ""
        self.err = ""
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], name: str) -> None:
        for chunk in iter(lambda: stream.read(1), ""):
            setattr(self, name, getattr(self, name) + chunk)

    def wait_for(self, needle: str, after: int, timeout_s: float) -> int:
        """Where ``needle`` appears in stdout after position ``after``."""
        wait_for(
            lambda: self.out.find(needle, after) >= 0 or self.proc.poll() is not None,
            timeout_s,
            f"{needle!r} in the watch",
        )
        found = self.out.find(needle, after)
        assert found >= 0, f"the watch ended ({self.proc.returncode}): {self.out}{self.err}"
        return found

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.mark.slow
def test_watch_shows_redis_down_and_goes_on_when_it_is_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    watch = Watch(server.url, "--watch")
    try:
        seen = watch.wait_for("daily PnL", 0, 15)
        server.stop()
        seen = watch.wait_for("not answering since", seen, 10)
        assert "Traceback" not in watch.err and watch.proc.poll() is None
        time.sleep(1.5)  # it keeps trying, each refresh says so
        assert watch.proc.poll() is None
        server.start()  # the same port
        watch.wait_for("daily PnL", seen, 10)  # the status again, without a restart of the watch
        assert watch.interrupt() == 0  # Ctrl-C still ends it
        assert "Traceback" not in watch.err, watch.err
    finally:
        watch.kill()
        server.stop()


@pytest.mark.slow
def test_watch_outlasts_a_redis_that_accepts_but_never_answers() -> None:
    """One timeout (about 5 s) is shown, not the end of the watch."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        watch = Watch(f"redis://127.0.0.1:{server.getsockname()[1]}/0", "--watch")
        try:
            seen = watch.wait_for("not answering since", 0, 15)
            line = watch.out[seen:].splitlines()[0]
            assert "Redis at redis://127.0.0.1:" in watch.out and "retrying" in line, line
            assert watch.proc.poll() is None, watch.err
            assert watch.interrupt() == 0
            assert "Traceback" not in watch.err, watch.err
        finally:
            watch.kill()
