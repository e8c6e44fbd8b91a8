"""What ``dora demo`` writes to ``var/demo.json`` (DESIGN.md §8), without starting a stack.

The e2e tests read the file of a running demo; this one pins the keys DESIGN.md promises, for one
Redis and for ``--cluster``, in a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from cli.devstack import LocalStack, StackConfig

REQUIRED = {
    "redis_url",
    "dynamodb_endpoint",
    "sim_url",
    "key_id",
    "key_path",
    "supervisord_conf",
    "markets",
    "env",
    "dashboard_url",
    "dashboard_token",
}


def a_stack(tmp_path: Path, **config: object) -> LocalStack:
    stack = LocalStack(StackConfig(base_dir=tmp_path / "stack", **config))  # type: ignore[arg-type]
    stack.redis_port, stack.moto_port = 6390, 5010
    stack.sim = {"rest_url": "http://127.0.0.1:8123/trade-api/v2"}
    stack.tickers = ["KXA-1", "KXB-2"]
    return stack


def test_demo_json_has_every_endpoint_a_script_needs(tmp_path: Path) -> None:
    stack = a_stack(tmp_path)
    info = json.loads(json.dumps(stack.info()))  # as written: plain JSON
    assert set(info) >= REQUIRED
    assert info["redis_url"] == "redis://127.0.0.1:6390/0"
    assert info["dynamodb_endpoint"] == "http://127.0.0.1:5010"
    assert info["sim_url"] == "http://127.0.0.1:8123/trade-api/v2"  # the REST base
    assert info["markets"] == ["KXA-1", "KXB-2"]
    assert Path(info["key_path"]).name == f"{info['key_id']}.pem"
    assert Path(info["supervisord_conf"]).name == "supervisord.conf"
    assert "redis_cluster" not in info and "redis_nodes" not in info
    # the DORA_* variables that reach the processes, and only those
    env = info["env"]
    assert env and all(name.startswith("DORA_") for name in env)
    assert env["DORA_REDIS_URL"] == info["redis_url"]
    assert env["DORA_DYNAMODB_ENDPOINT"] == info["dynamodb_endpoint"]
    assert env["DORA_KALSHI_BASE_URL"] == info["sim_url"]
    assert env["DORA_KALSHI_KEY_ID"] == info["key_id"]
    assert env["DORA_KALSHI_PRIVATE_KEY_PATH"] == info["key_path"]
    assert env["DORA_WEB_TOKEN"] == info["dashboard_token"]
    assert info["dashboard_token"] in info["dashboard_url"]
    assert info["dashboard_url"].startswith(f"http://127.0.0.1:{env['DORA_WEB_PORT']}/")


def test_cluster_demo_json_names_every_node(tmp_path: Path) -> None:
    stack = a_stack(tmp_path, cluster=True, shards=2)
    nodes = [f"redis://127.0.0.1:{port}/0" for port in (7000, 7001, 7002)]
    stack.cluster = SimpleNamespace(urls=nodes)
    info = json.loads(json.dumps(stack.info()))
    assert set(info) >= REQUIRED
    assert info["redis_cluster"] is True and info["redis_nodes"] == nodes
    assert info["redis_url"] in nodes and info["env"]["DORA_REDIS_CLUSTER"] == "true"
