"""Extra processes of a chaos run: executor shards under supervisord, and a stray executor.

- ``sharded_conf``: the repository's supervisord.conf with ``strategy`` and ``executor`` as shard 0
  of N and ``strategy-i`` / ``executor-i`` for the other shards (``DORA_SHARD_INDEX``,
  ``DORA_SHARD_COUNT``; ``common.sharding`` decides who owns a market);
- ``RecordingProxy``: a reverse proxy in front of the simulator's REST API that forwards every
  request unchanged (Kalshi's signature covers the method and the path, not the host) and
  records it, so that what one process sent is known exactly;
- ``StrayExecutor``: a second ``services.executor`` with the same shard as a running one,
  started outside supervisord and talking to the exchange through its own ``RecordingProxy``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from sim.chaos.episodes import ProxiedRequest

SHARDED = ("strategy", "executor")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
}


def sharded_conf(text: str, shards: int) -> str:
    """supervisord.conf with the strategy and the executor run as ``shards`` shards."""
    if shards <= 1:
        return text
    sections: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("[") and sections[-1]:
            sections.append([])
        sections[-1].append(line)
    out: list[str] = []
    for section in sections:
        name = (
            section[0].strip()[len("[program:") : -1] if section[0].startswith("[program:") else ""
        )
        if name not in SHARDED:
            out += section
            continue
        body = [line for line in section if line.strip()]
        for index in range(shards):
            program = name if index == 0 else f"{name}-{index}"
            copy = [f"[program:{program}]"]
            for line in body[1:]:
                copy.append(line.replace(f"/log/{name}.log", f"/log/{program}.log"))
            copy.append(f'environment=DORA_SHARD_INDEX="{index}",DORA_SHARD_COUNT="{shards}"')
            out += [*copy, ""]
    return "\n".join(out) + "\n"


def program_names(services: tuple[str, ...], shards: int) -> tuple[str, ...]:
    extra = tuple(f"{s}-{i}" for s in SHARDED for i in range(1, shards))
    return (*services, *extra)


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                sent_ms = int(time.time() * 1000)
                try:
                    answer = httpx.request(
                        self.command,
                        proxy.upstream + self.path,
                        headers=headers,
                        content=body,
                        timeout=30,
                    )
                    status, content = answer.status_code, answer.content
                    reply = {
                        k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                except httpx.HTTPError:
                    status, content, reply = 502, b"", {}
                proxy._record(ProxiedRequest(sent_ms, self.command, self.path, status))
                with contextlib.suppress(OSError):  # the process was killed mid-request
                    self.send_response(status)
                    for k, v in reply.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


class StrayExecutor:
    """A second executor process on shard ``shard`` of ``shards``, for ``seconds``, then killed."""

    def __init__(
        self, env: dict[str, str], rest_url: str, log_path: Path, *, shard: int, shards: int
    ) -> None:
        self.proxy = RecordingProxy(rest_url).start()
        path = urlsplit(rest_url).path
        self.env = {
            **env,
            "DORA_KALSHI_BASE_URL": self.proxy.origin + path,
            "DORA_SHARD_INDEX": str(shard),
            "DORA_SHARD_COUNT": str(shards),
        }
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path) -> int:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.executor"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=cwd,
            start_new_session=True,
        )
        return self.proc.pid

    def kill(self) -> list[ProxiedRequest]:
        """SIGKILL the process (a stray is not drained), stop the proxy; what it sent."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proxy.stop()
        return list(self.proxy.requests)
