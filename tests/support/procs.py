"""Starting real servers for tests: a redis-server on a free port, free ports, waiting."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_dora(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``dora ARGS`` as a user runs it, with none of this shell's DORA_* settings leaking in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DORA_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**clean, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05
) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A throwaway redis-server owned by the tests (never the machine's own on 6379)."""

    def __init__(
        self, workdir: Path, *, appendonly: bool = False, password: str | None = None
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run 'make test' (it installs it)")
        self.binary = binary
        self.workdir = workdir
        self.appendonly = appendonly
        self.password = password
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = self.port or free_port()
            args = [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--logfile",
                str(self.workdir / "redis.log"),
            ]
            if self.password:
                args += ["--requirepass", self.password]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with contextlib.suppress(TimeoutError):
                wait_for(
                    lambda: _port_open(self.port) or self.proc.poll() is not None, 5, "redis-server"
                )
            if self.proc.poll() is None and _port_open(self.port):
                return self
            self.port = 0  # the port was taken meanwhile: try another
        raise RuntimeError(f"could not start redis-server; see {self.workdir / 'redis.log'}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def redis_server(workdir: Path, **kwargs: object) -> Iterator[RedisServer]:
    server = RedisServer(workdir, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
