"""A local Redis Cluster for ``dora demo --cluster``, the cluster e2e test, chaos and the bench.

Three masters with one replica each (by default): ``redis-server --cluster-enabled yes`` on free
ports, joined by ``redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`` (slots split
evenly: 0-5460, 5461-10922, 10923-16383). ``kill_master`` takes a master down the hard way (SIGKILL)
and ``wait_promoted`` waits until its replica has taken its slots over, as ElastiCache's
automatic failover does.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from common.errors import DoraError

# A master unreachable for this long is failed over by its replica (redis.conf's default is 15 s;
# a trading cluster wants it short: ElastiCache detects a failed primary in seconds).
NODE_TIMEOUT_MS = 2_000
BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000
EPHEMERAL_FROM = 32_768  # where Linux's default ephemeral (outgoing) ports start


class ClusterError(DoraError):
    """The local cluster did not come up, or did not heal."""


@dataclass(frozen=True, slots=True)
class Node:
    port: int
    node_id: str
    role: str  # master or slave
    slots: tuple[tuple[int, int], ...]  # a master's slot ranges
    failed: bool

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class LocalCluster:
    """Six redis-servers under ``base`` (one directory per port), one cluster."""

    def __init__(
        self,
        base: Path,
        spawn: Callable[[str, list[str]], subprocess.Popen[bytes]],
        masters: int = 3,
        replicas: int = 1,
    ) -> None:
        self.base = base
        self.masters = masters
        self.replicas = replicas
        self.spawn = spawn
        self.ports: list[int] = []
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def start(self) -> LocalCluster:
        """Start the nodes and join them; a start that fails stops the nodes it started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCluster:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise ClusterError("redis-server and redis-cli are needed for a local cluster")
        self.ports = []
        while len(self.ports) < self.masters * (1 + self.replicas):
            port = cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        for port in self.ports:
            self.start_node(port)
        for port in self.ports:
            _wait(partial(self._ping, port), 10, f"redis-server on {port}")
        create = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if create.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed: {create.stdout[-400:]}")
        _wait(self.healthy, 30, "the cluster to be ok with every replica attached")
        return self

    def start_node(self, port: int) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        data = self.base / str(port)
        data.mkdir(parents=True, exist_ok=True)
        self.procs[port] = self.spawn(
            f"redis-{port}",
            [
                binary,
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)),
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                *("--appendonly", "yes", "--save", "", "--protected-mode", "yes"),
            ],
        )

    def _cli(self, port: int, *args: str) -> str:
        proc = subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10
        )
        return proc.stdout

    def _ping(self, port: int) -> bool:
        with contextlib.suppress(subprocess.SubprocessError):
            return self._cli(port, "PING").strip() == "PONG"
        return False

    def alive_ports(self) -> list[int]:
        return [p for p in self.ports if p in self.procs and self.procs[p].poll() is None]

    def nodes(self) -> list[Node]:
        """The cluster's view (CLUSTER NODES) from the first live node."""
        for port in self.alive_ports():
            text = self._cli(port, "CLUSTER", "NODES")
            if text.strip():
                return parse_nodes(text)
        return []

    def masters_now(self) -> list[Node]:
        return [n for n in self.nodes() if n.role == "master" and not n.failed and n.slots]

    def healthy(self) -> bool:
        """Every slot served by a live master, every live node says ``cluster_state:ok``."""
        alive = self.alive_ports()
        if not alive:
            return False
        for port in alive:
            if "cluster_state:ok" not in self._cli(port, "CLUSTER", "INFO"):
                return False
        served = sum(hi - lo + 1 for n in self.masters_now() for lo, hi in n.slots)
        return served == 16384 and len(self.masters_now()) == self.masters

    def master_of(self, slot: int) -> Node:
        for node in self.masters_now():
            if any(lo <= slot <= hi for lo, hi in node.slots):
                return node
        raise ClusterError(f"no live master serves slot {slot}")

    def kill_master(self, slot: int) -> Node:
        """SIGKILL the master serving ``slot``; returns it (its replica takes over)."""
        node = self.master_of(slot)
        proc = self.procs[node.port]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return node

    def wait_promoted(self, slot: int, dead: Node, timeout_s: float = 30) -> Node:
        """Wait until a live master other than ``dead`` serves ``slot`` and the cluster is ok."""

        def promoted() -> bool:
            with contextlib.suppress(ClusterError):
                return self.master_of(slot).port != dead.port and self.healthy()
            return False

        _wait(promoted, timeout_s, f"a replica to take over slot {slot}")
        return self.master_of(slot)

    def stop(self) -> None:
        for port, proc in list(self.procs.items()):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            self.procs.pop(port, None)


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, both below Linux's
    ephemeral range (32768 on): a port found free there can be taken by any outgoing
    connection before the node binds it (a node that never came up in a CI run)."""
    for _ in range(200):
        port = random.randint(20_000, EPHEMERAL_FROM - BUS_OFFSET - 1)
        if all(_free(p) for p in (port, port + BUS_OFFSET)):
            return port
    raise ClusterError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def parse_nodes(text: str) -> list[Node]:
    """CLUSTER NODES lines -> nodes (``<id> <ip:port@bus> <flags> <master> ... <slots>``)."""
    out = []
    for line in text.strip().splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
        flags = parts[2].split(",")
        role = "master" if "master" in flags else "slave"
        ranges = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated
            lo, _, hi = item.partition("-")
            ranges.append((int(lo), int(hi or lo)))
        failed = "fail" in flags or "fail?" in flags or "noaddr" in flags
        out.append(Node(port, parts[0], role, tuple(ranges), failed))
    return out


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}")
        time.sleep(0.1)
