"""The local world on one machine: Redis, DynamoDB (moto), the simulator and dora under supervisord.

``dora demo``, the end-to-end tests, the benchmarks and the chaos run all bring dora up the same
way, through ``LocalStack``:

1. a ``redis-server`` on a free port (append-only file on, data under ``<base>/redis``);
2. a moto server standing in for DynamoDB, on a free port;
3. an API key pair (``dora sim keygen``) and the simulator with that key registered;
4. the tables and a config: the global limits and ``markets`` enabled markets;
5. supervisord with the repository's ``supervisord.conf`` running all six processes and the
   dashboard (``web``, on a free port unless one is given, with a fresh token).

Every child gets only 127.0.0.1 addresses. ``stop`` shuts supervisord down (each process drains on
SIGTERM), cancels anything left at the simulator, then stops the simulator, moto and Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cli.host_confs import SHARD_PROCESSES
from cli.supervisor_states import SupervisorStates, stop_order
from common.config import utc_now_iso
from common.errors import DoraError

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("persister", "risk", "marketdata", "fills", "strategy", "executor")
PROCESSES = (*SERVICES, "web")  # the trading processes and the dashboard


class StackError(DoraError):
    """A part of the local world did not come up."""


def free_port() -> int:
    import socket

    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(
    predicate: Any, timeout_s: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.05)


def lower_group(pid: int, nice: int) -> None:
    """A stand-in for another machine (moto, the simulator) at a lower priority: it runs in a
    session of its own, and with autogroup (most kernels) a session is one scheduling group
    weighed against the others whatever its nice value, so the group's priority is lowered too,
    or it competes with the stack as an equal."""
    if nice:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def _port_open(port: int) -> bool:
    import socket

    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class StackConfig:
    base_dir: Path
    markets: int = 10
    seed: int = 0
    scenario: str = "calm"
    rate_tier: str = "premier"
    balance_dollars: int = 10_000
    key_id: str = "demo"
    key_type: str = "rsa"  # or "ed25519": 6x cheaper to sign (Kalshi accepts both)
    market_overrides: dict[str, Any] = field(default_factory=dict)
    global_overrides: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra DORA_* for the processes
    sim_args: list[str] = field(default_factory=list)
    # The simulator's trading pauses: "none" for tests, benchmarks and chaos (a run on a Thursday at
    # 03:00 ET must not meet the weekly pause by chance); the demo passes "weekly", as Kalshi has.
    pause_schedule: str = "none"
    supervisord_conf: Path = REPO / "supervisord.conf"
    web_port: int = 0  # the dashboard's port; 0: a free one
    web_token: str = ""  # the dashboard's token; empty: a fresh random one
    # Niceness of the moto server. DynamoDB is another machine in production; a benchmark may
    # lower moto's priority so the stand-in does not take the CPU the pipeline is measured on.
    moto_nice: int = 0
    # The same for the simulator: the exchange is another machine in production too.
    sim_nice: int = 0
    # A local Redis Cluster (three masters, one replica each) instead of one redis-server.
    cluster: bool = False
    # Strategy/executor shards, each its own "host": a supervisord of its own under
    # ``<base>/shard-N`` running only strategy and executor; the main one runs the rest.
    shards: int = 1


DEFAULT_MARKET_CONFIG = {
    "enabled": True,
    "max_inventory_yes": "50",
    "max_inventory_no": "50",
    "min_spread": "0.01",
    "quote_size": "5",
    "inventory_skew_factor": "1.0",
    "toxicity_score": "0",
}
DEFAULT_GLOBAL_CONFIG = {
    "max_total_exposure": "5000",
    "max_daily_loss": "500",
    "loop_interval_ms": "500",
    "trading_enabled": True,
}


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.base = config.base_dir.resolve()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.redis_port = 0
        self.cluster: Any = None  # cli.redis_cluster.LocalCluster in cluster mode
        self.moto_port = 0
        self.sim: dict[str, Any] = {}
        self.tickers: list[str] = []
        self.web_port = config.web_port or free_port()
        self.web_token = config.web_token or secrets.token_urlsafe(24)
        self.conf_path = self._place_conf()
        self._state_askers: dict[Path, SupervisorStates] = {}

    # ---- where things live -------------------------------------------------------------------

    def _place_conf(self) -> Path:
        """supervisord.conf puts its socket, pid and logs under ``%(here)s/var``. Run from the
        repository (the demo) it is used in place; elsewhere (tests) it is copied next to a link
        to the virtualenv, so each stack has its own supervisord."""
        source = self.config.supervisord_conf
        if self.base == (source.parent / "var").resolve() and self.config.shards <= 1:
            return source
        self.base.mkdir(parents=True, exist_ok=True)
        target = self.base / "supervisord.conf"
        shutil.copyfile(source, target)
        venv = self.base / ".venv"
        if not venv.exists():
            venv.symlink_to(REPO / ".venv")
        return target

    @property
    def var_dir(self) -> Path:
        return self.conf_path.parent / "var"

    @property
    def redis_url(self) -> str:
        if self.cluster is not None:  # any node: the client discovers the others
            return str(self.cluster.urls[0])
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def keys(self, shard_index: int = 0) -> Any:
        """The key names the stack's processes use (``common.keys.Keys``)."""
        from common.keys import Keys

        cluster, count = self.config.cluster, self.config.shards
        return Keys(cluster=cluster, shard_count=count, shard_index=shard_index)

    def sync_redis(self) -> Any:
        """A synchronous client with str responses: ``redis.Redis`` or ``redis.RedisCluster``."""
        import redis

        if self.cluster is not None:
            return redis.RedisCluster.from_url(self.redis_url, decode_responses=True)
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def shard_conf(self, index: int) -> Path:
        return self.base / f"shard-{index}" / "supervisord.conf"

    def hosts(self) -> list[tuple[Path, str]]:
        """(supervisord.conf, name suffix) of each host: the core one first, then each shard's
        (whose processes are named ``strategy@N``, ``executor@N`` in ``process_states``)."""
        if self.config.shards <= 1:
            return [(self.conf_path, "")]
        return [(self.conf_path, "")] + [
            (self.shard_conf(i), f"@{i}") for i in range(self.config.shards)
        ]

    def expected_processes(self) -> list[str]:
        if self.config.shards <= 1:
            return list(PROCESSES)
        core = [p for p in PROCESSES if p not in SHARD_PROCESSES]
        return core + [f"{p}@{i}" for i in range(self.config.shards) for p in SHARD_PROCESSES]

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def sim_url(self) -> str:
        return str(self.sim["rest_url"])

    @property
    def control_url(self) -> str:
        return self.sim_url.replace("/trade-api/v2", "/_sim")

    @property
    def dashboard_url(self) -> str:
        """The dashboard's address with its token: opening it starts an operator session."""
        return f"http://127.0.0.1:{self.web_port}/?token={self.web_token}"

    @property
    def key_path(self) -> Path:
        return self.base / "keys" / f"{self.config.key_id}.pem"

    def env(self) -> dict[str, str]:
        """The environment every dora process (and CLI command) of this stack runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DORA_")}
        env.update(
            {
                "DORA_REDIS_URL": self.redis_url,
                "DORA_DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
                "DORA_METRICS_ENABLED": "true",
                "DORA_CLOUDWATCH_ENDPOINT": self.dynamodb_endpoint,  # moto serves every AWS API
                "DORA_SNS_ENDPOINT": self.dynamodb_endpoint,
                "DORA_AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "DORA_KALSHI_ENV": "sim",
                "DORA_KALSHI_BASE_URL": self.sim_url,
                "DORA_KALSHI_KEY_ID": self.config.key_id,
                "DORA_KALSHI_PRIVATE_KEY_PATH": str(self.key_path),
                "DORA_RATE_TIER": self.config.rate_tier,
                "DORA_WEB_HOST": "127.0.0.1",
                "DORA_WEB_PORT": str(self.web_port),
                "DORA_WEB_TOKEN": self.web_token,
                "PYTHONUNBUFFERED": "1",
                # this checkout's code: a copied supervisord.conf runs dora's processes from the
                # stack's directory, where `-m services.x` would import whatever checkout the
                # virtualenv's editable install names (another worktree's, in a worktree)
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        env.pop("AWS_SESSION_TOKEN", None)
        if self.config.cluster:
            env["DORA_REDIS_CLUSTER"] = "true"
        if self.config.shards > 1:
            env["DORA_SHARD_COUNT"] = str(self.config.shards)
        env.update(self.config.env)
        return env

    def info(self) -> dict[str, Any]:
        return {
            "redis_url": self.redis_url,
            "dynamodb_endpoint": self.dynamodb_endpoint,
            "sim_url": self.sim_url,
            "sim_control_url": self.control_url,
            "key_id": self.config.key_id,
            "key_path": str(self.key_path),
            "supervisord_conf": str(self.conf_path),
            "markets": self.tickers,
            "env": {k: v for k, v in self.env().items() if k.startswith("DORA_")},
            "dashboard_url": self.dashboard_url,
            "dashboard_token": self.web_token,
            **(
                {"redis_cluster": True, "redis_nodes": list(self.cluster.urls)}
                if self.cluster is not None
                else {}
            ),
            **(
                {"shard_confs": [str(self.shard_conf(i)) for i in range(self.config.shards)]}
                if self.config.shards > 1
                else {}
            ),
        }

    # ---- bring-up ----------------------------------------------------------------------------

    def start(self, *, processes: bool = True) -> LocalStack:
        try:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            (self.var_dir / "log").mkdir(exist_ok=True)
            self.start_redis()
            self.start_moto()
            self.start_sim()
            self.seed_config()
            if processes:
                self.start_supervisord()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.var_dir / "log" / f"{name}.out", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env or os.environ),
            cwd=REPO,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_redis(self, port: int | None = None) -> None:
        if self.config.cluster:
            from cli.redis_cluster import ClusterError, LocalCluster

            self.cluster = LocalCluster(self.base / "redis-cluster", self._spawn)
            try:
                self.cluster.start()
            except ClusterError as exc:
                raise StackError(str(exc)) from None
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server is not installed: run 'make demo' or "
                "'sudo apt-get install -y redis-server'"
            )
        data = self.base / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self.redis_port = port or self.redis_port or free_port()
        proc = self._spawn(
            "redis",
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
        )
        _wait(lambda: _port_open(self.redis_port), 10, "redis-server", proc)

    def stop_redis(self, kill: bool = False) -> None:
        self._stop("redis", kill=kill)

    def pause_redis(self) -> None:
        """Redis frozen (SIGSTOP): connections are still accepted, nothing is answered."""
        self.procs["redis"].send_signal(signal.SIGSTOP)

    def resume_redis(self) -> None:
        self.procs["redis"].send_signal(signal.SIGCONT)

    def start_moto(self) -> None:
        self.moto_port = self.moto_port or free_port()
        proc = self._spawn(
            "moto",
            [
                *(["nice", "-n", str(self.config.moto_nice)] if self.config.moto_nice else []),
                sys.executable,
                *("-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)),
            ],
        )
        lower_group(proc.pid, self.config.moto_nice)
        _wait(lambda: _port_open(self.moto_port), 30, "the moto server", proc)

    def pause_moto(self) -> None:
        """A DynamoDB outage: the server stops answering (its state is kept)."""
        self.procs["moto"].send_signal(signal.SIGSTOP)

    def resume_moto(self) -> None:
        self.procs["moto"].send_signal(signal.SIGCONT)

    def start_sim(self) -> None:
        keys = self.base / "keys"
        if not self.key_path.exists():
            self._cli(
                "sim",
                "keygen",
                "--out",
                str(keys),
                "--name",
                self.config.key_id,
                "--type",
                self.config.key_type,
            )
        ready = self.base / "sim-ready.json"
        ready.unlink(missing_ok=True)
        args = [
            sys.executable,
            "-m",
            "cli.main",
            "sim",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--api-keys",
            str(keys),
            "--markets",
            str(self.config.markets),
            "--seed",
            str(self.config.seed),
            "--scenario",
            self.config.scenario,
            "--rate-tier",
            self.config.rate_tier,
            "--balance",
            str(self.config.balance_dollars),
            "--pause-schedule",
            self.config.pause_schedule,
            *self.config.sim_args,
        ]
        if self.config.sim_nice:
            args = ["nice", "-n", str(self.config.sim_nice), *args]
        proc = self._spawn("sim", args)
        lower_group(proc.pid, self.config.sim_nice)
        _wait(ready.exists, 30, "the simulator", proc)
        self.sim = json.loads(ready.read_text())
        markets = httpx.get(f"{self.sim_url}/markets", params={"limit": 1000}, timeout=10).json()
        self.tickers = sorted(
            m["ticker"] for m in markets["markets"] if m.get("status") == "active"
        )
        if not self.tickers:
            raise StackError("the simulator lists no open markets")

    def seed_config(self) -> None:
        """Tables and a config: global limits, and every simulated market enabled."""
        from common.dynamo import Dynamo
        from common.dynamo.tables import create_tables
        from common.settings import load_settings

        settings = load_settings(self.env(), read_file=False)
        dynamo = Dynamo.from_settings(settings)
        create_tables(dynamo.client, dynamo.names)
        now = utc_now_iso()
        dynamo.config.update_global({**DEFAULT_GLOBAL_CONFIG, **self.config.global_overrides}, now)
        for ticker in self.tickers:
            dynamo.config.update_market(
                ticker, {**DEFAULT_MARKET_CONFIG, **self.config.market_overrides}, now
            )

    def start_supervisord(self) -> None:
        if self.config.shards > 1:
            self._write_host_confs()
        for index, (conf, _) in enumerate(self.hosts()):
            env = self.env()
            if index > 0:
                env["DORA_SHARD_INDEX"] = str(index - 1)
            proc = subprocess.run(
                [str(REPO / ".venv/bin/supervisord"), "-c", str(conf)],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=30,
                start_new_session=True,
            )
            if proc.returncode != 0:
                raise StackError(
                    f"supervisord did not start: {proc.stderr.strip() or proc.stdout.strip()}"
                )
        expected = self.expected_processes()
        _wait(
            lambda: all(self.process_states().get(s) == "RUNNING" for s in expected),
            30,
            "all six processes and the dashboard to run",
        )
        _wait(lambda: _port_open(self.web_port), 30, "the dashboard to listen")

    def _write_host_confs(self) -> None:
        """The core host's supervisord.conf without strategy and executor, and one per shard
        host with only those two (each host its own supervisord, var/ and logs)."""
        from cli.host_confs import render

        self.conf_path.write_text(render("core", self.config.supervisord_conf))  # a copy (base)
        shard = render("shard", self.config.supervisord_conf)
        for index in range(self.config.shards):
            path = self.shard_conf(index)
            (path.parent / "var" / "log").mkdir(parents=True, exist_ok=True)
            path.write_text(shard)
            venv = path.parent / ".venv"
            if not venv.exists():
                venv.symlink_to(REPO / ".venv")

    # ---- operating it ------------------------------------------------------------------------

    def supervisorctl(
        self, *args: str, check: bool = False, conf: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """supervisorctl of the core host, or of the host whose supervisord.conf is ``conf``."""
        return subprocess.run(
            [str(REPO / ".venv/bin/supervisorctl"), "-c", str(conf or self.conf_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env(),
            check=check,
            start_new_session=True,  # a signal meant for the demo never cuts a shutdown short
        )

    def process_states(self) -> dict[str, str]:
        """Each process's supervisord state (``RUNNING``...), over the control sockets."""
        states = {}
        for conf, suffix in self.hosts():
            asker = self._state_askers.get(conf)
            if asker is None:
                asker = self._state_askers[conf] = SupervisorStates(conf)
            for name, state in asker.states().items():
                states[name + suffix] = state
        return states

    def control(self, action: str, name: str) -> subprocess.CompletedProcess[str]:
        """``supervisorctl <action> <name>`` on the host that runs it (``executor@1``: shard 1;
        a bare ``executor`` with shard hosts: every shard's)."""
        process, _, shard = name.partition("@")
        if self.config.shards <= 1 or process not in SHARD_PROCESSES:
            return self.supervisorctl(action, process)
        shards = [int(shard)] if shard else list(range(self.config.shards))
        results = [self.supervisorctl(action, process, conf=self.shard_conf(i)) for i in shards]
        return next((r for r in results if r.returncode != 0), results[-1])

    def sim_get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.control_url}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def sim_post(self, path: str, body: Any = None) -> Any:
        response = httpx.post(f"{self.control_url}{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def _cli(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env() if self.sim else None,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,
        )
        if proc.returncode != 0:
            raise StackError(f"dora {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    # ---- teardown ----------------------------------------------------------------------------

    def stop_supervisord(self) -> None:
        for conf, _ in reversed(self.hosts()):  # the shard hosts first: the core watches them
            self._stop_supervisord(conf)

    def _stop_supervisord(self, conf: Path) -> None:
        pid_file = conf.parent / "var" / "supervisord.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(Exception):
            # in supervisord's order (the persister last), in ~1 s instead of its 7-8
            self.supervisorctl("stop", *stop_order(conf), conf=conf)
            self.supervisorctl("shutdown", conf=conf)
        with contextlib.suppress(StackError):
            _wait(lambda: not pid_file.exists(), 40, "supervisord to stop")
            return
        # supervisorctl could not reach it: SIGTERM is supervisord's own shutdown
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        with contextlib.suppress(StackError):
            _wait(lambda: not pid_file.exists(), 40, "supervisord to stop")

    def cancel_everything_at_sim(self) -> None:
        """Nothing may be left resting when the world goes away."""
        with contextlib.suppress(Exception):
            from common.connect import kalshi_client
            from common.settings import load_settings

            async def go() -> None:
                settings = load_settings(self.env(), read_file=False)
                client = await kalshi_client(settings)
                try:
                    await client.cancel_all_orders()
                finally:
                    await client.aclose()

            import asyncio

            asyncio.run(go())

    def _stop(self, name: str, kill: bool = False) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if name == "moto":
                proc.send_signal(signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def quiesce(self) -> None:
        """An orderly end of trading: risk first (so an executor leaving is not an emergency),
        then the executor and strategy, then everything resting is cancelled at the exchange."""
        if (self.var_dir / "supervisord.pid").exists():
            for name in ("risk", "executor", "strategy"):
                with contextlib.suppress(Exception):
                    self.control("stop", name)
        if self.sim:
            self.cancel_everything_at_sim()

    def stop(self) -> None:
        self.quiesce()
        self.stop_supervisord()
        if self.sim:
            self.cancel_everything_at_sim()
        for name in ("sim", "moto", "redis"):
            self._stop(name)
        if self.cluster is not None:
            self.cluster.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
