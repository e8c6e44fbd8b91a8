"""The extra processes of a chaos run: the sharded supervisord.conf and the recording proxy the
stray executor talks through."""

from __future__ import annotations

import configparser
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from cli.devstack import REPO, SERVICES
from sim.chaos.episodes import is_write
from sim.chaos.stray import RecordingProxy, program_names, sharded_conf


def test_two_shards_run_strategy_and_executor_twice_with_their_index() -> None:
    text = sharded_conf((REPO / "supervisord.conf").read_text(), 2)
    conf = configparser.RawConfigParser()
    conf.read_string(text)
    programs = {s.removeprefix("program:") for s in conf.sections() if s.startswith("program:")}
    assert programs == {*SERVICES, "web", "strategy-1", "executor-1"}
    assert set(program_names(SERVICES, 2)) == programs - {"web"}
    for name, index in (("executor", 0), ("executor-1", 1), ("strategy-1", 1)):
        section = conf[f"program:{name}"]
        assert section["environment"] == f'DORA_SHARD_INDEX="{index}",DORA_SHARD_COUNT="2"'
        assert section["stdout_logfile"].endswith(f"/log/{name}.log")
    assert "environment" not in conf["program:risk"]
    assert sharded_conf("[program:executor]\ncommand=x\n", 1) == "[program:executor]\ncommand=x\n"


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = f"{self.command} {self.path} {self.headers.get('KALSHI-ACCESS-KEY')} ".encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Length", str(len(reply + body)))
        self.end_headers()
        self.wfile.write(reply + body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_the_proxy_forwards_unchanged_and_records_every_request() -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}/trade-api/v2"
    proxy = RecordingProxy(base).start()
    try:
        with httpx.Client(base_url=proxy.origin, headers={"KALSHI-ACCESS-KEY": "k"}) as client:
            got = client.get("/trade-api/v2/portfolio/orders?limit=5")
            made = client.post("/trade-api/v2/portfolio/events/orders", content=b"{}")
        assert got.status_code == 200
        assert got.text == "GET /trade-api/v2/portfolio/orders?limit=5 k "
        assert (made.status_code, made.text) == (
            201,
            "POST /trade-api/v2/portfolio/events/orders k {}",
        )
    finally:
        proxy.stop()
        upstream.shutdown()
    seen = [(r.method, r.path, r.status) for r in proxy.requests]
    assert seen == [
        ("GET", "/trade-api/v2/portfolio/orders?limit=5", 200),
        ("POST", "/trade-api/v2/portfolio/events/orders", 201),
    ]
    assert [is_write(r) for r in proxy.requests] == [False, True]
