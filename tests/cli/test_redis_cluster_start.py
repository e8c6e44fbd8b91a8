"""A local test cluster's start: node ports clear of the ephemeral range, nothing left running
when it fails."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cli.redis_cluster import BUS_OFFSET, EPHEMERAL_FROM, ClusterError, LocalCluster, cluster_port


def test_a_node_and_its_bus_port_are_below_the_ephemeral_range() -> None:
    for _ in range(50):
        port = cluster_port()
        assert port >= 20_000 and port + BUS_OFFSET < EPHEMERAL_FROM


@pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed for a local cluster",
)
def test_a_start_that_fails_stops_the_nodes_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that never answers (here: not a redis-server at all) fails the start; the nodes
    already running are stopped, not left behind for the rest of the test run."""
    monkeypatch.setattr("cli.redis_cluster._wait", _fail_fast)
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        spawned.append(proc)
        return proc

    with pytest.raises(ClusterError):
        LocalCluster(tmp_path, spawn).start()
    assert len(spawned) == 6
    assert all(proc.poll() is not None for proc in spawned)


def _fail_fast(predicate: object, timeout_s: float, what: str) -> None:
    raise ClusterError(f"timed out waiting for {what}")
