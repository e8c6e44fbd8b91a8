"""``dora demo``: the whole bot against a local Kalshi simulator, on this machine (DESIGN.md §6).

Brings up Redis, a local DynamoDB (moto), the simulator with a demo key and ``--markets``
markets, creates the tables and a demo config, starts supervisord with the repository's
``supervisord.conf`` and shows a live view every second until Ctrl-C (or, ``--headless``, runs for
``--duration`` seconds and prints a JSON summary as its last line). Then it stops trading, cancels
everything resting and shuts every part down. ``var/demo.json`` says where each part is while it
runs (the dashboard's address and fresh token included: owner-only); ``var/demo-summary.json``
keeps the summary. The dashboard listens on ``DORA_WEB_PORT`` if set, else on 8765 when free.

SIGTERM and SIGHUP (the terminal closed, an SSH session dropped) end it exactly as Ctrl-C does;
once it is stopping, further signals are ignored so the shutdown always finishes. One demo runs at
a time: ``var/demo.lock`` is held for the whole run, and a second demo says so in one line before
touching ``var/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import sys
import time
from pathlib import Path
from typing import IO, Any

from cli.main import CliError
from common.errors import ConfigError

HELP = "run dora against a local simulator and show what it is doing (the embedded default)"

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
LOCK = VAR / "demo.lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
UNEXPECTED_EXIT = re.compile(r"exited: (\S+) \(.*not expected\)")
DASHBOARD_PORT = 8765


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--markets", type=int, default=12, help="number of simulated markets (default 12)"
    )
    parser.add_argument(
        "--headless", action="store_true", help="no live view; end with a JSON summary"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds to run (required with --headless)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated market flow")
    parser.add_argument(
        "--scenario", default="calm", help="simulator scenario name or file (default calm)"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="a local Redis Cluster (three masters, one replica each) and two strategy/executor "
        "shards, each under its own supervisord (a host)",
    )
    parser.add_argument(
        "--pause-schedule",
        default="weekly",
        help="the simulator's trading pauses: weekly (Kalshi's Thursday 03:00-05:00 ET, the "
        "default), none, or every:PERIOD_S:PAUSE_S[:FIRST_S]",
    )


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.markets <= 500:
        raise CliError(f"--markets must be between 1 and 500, was {args.markets}")
    if args.headless and args.duration is None:
        raise CliError("--headless needs --duration SECONDS")
    if args.duration is not None and not 5 <= args.duration <= 86_400:
        raise CliError(f"--duration must be between 5 and 86400 seconds, was {args.duration:g}")
    from sim.calendar import Calendar
    from sim.scenario import load_scenario

    try:
        Calendar.parse(args.pause_schedule, 0)
    except ConfigError as exc:
        raise CliError(f"--pause-schedule: {exc}") from None
    try:  # before anything starts: else the simulator's exit status is all the operator sees
        load_scenario(args.scenario)
    except ConfigError as exc:
        raise CliError(f"--scenario: {str(exc).splitlines()[0]}") from None
    if shutil.which("redis-server") is None:
        raise CliError(
            "redis-server is not installed: run 'make demo' (it installs it) "
            "or 'sudo apt-get install -y redis-server'"
        )


def _check_no_stack_left() -> None:
    """A demo killed outright (SIGKILL) leaves its supervisord behind, without the lock."""
    pid_file = VAR / "supervisord.pid"
    if not pid_file.exists():
        pid_file = VAR / "var" / "supervisord.pid"  # a --cluster demo's core host
    if pid_file.exists():
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
            raise CliError(
                f"a demo is already running (supervisord pid {pid}); "
                "stop it with: .venv/bin/supervisorctl -c supervisord.conf shutdown"
            )


def _hold_lock() -> IO[str]:
    """The one-demo-at-a-time lock, held (by the open file) until this process ends."""
    VAR.mkdir(exist_ok=True)
    lock = LOCK.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "?"
        lock.close()
        raise CliError(
            f"a demo is already running (pid {owner}): stop it with Ctrl-C in its terminal "
            f"or 'kill {owner}'"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


class _Stop:
    """Ctrl-C, SIGTERM and SIGHUP all end the demo the same way: the first one interrupts the run
    (as KeyboardInterrupt), later ones are ignored so the shutdown is never cut short. After a
    hang-up the terminal is gone: output meant for it goes to /dev/null instead of failing."""

    def __init__(self) -> None:
        self.stopping = False
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            _leave_terminal()
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt


def _leave_terminal() -> None:
    with contextlib.suppress(OSError), open(os.devnull, "w") as devnull:
        for stream in (sys.stdout, sys.stderr):
            fd = stream.fileno()
            if stat.S_ISCHR(os.fstat(fd).st_mode):  # a terminal (not a pipe or a file)
                os.dup2(devnull.fileno(), fd)


def _say(text: str, stream: IO[str]) -> None:
    with contextlib.suppress(OSError):  # a closed terminal must not stop the shutdown
        print(text, file=stream, flush=True)


def _fresh_var() -> None:
    """Each demo is a new world: the simulator starts empty, so must Redis and the logs."""
    names: tuple[str, ...] = ("redis", "keys", "log", "demo.json", "demo-summary.json")
    names += ("sim-ready.json",)
    # a --cluster demo's: the cluster's nodes, the core host's var and each shard host's
    names += ("redis-cluster", "var", "shard-0", "shard-1")
    for name in names:
        path = VAR / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    _check(args)
    lock = _hold_lock()
    try:
        _check_no_stack_left()
        return _run(args)
    finally:
        lock.close()


def _run(args: argparse.Namespace) -> int:
    from cli.devstack import LocalStack, StackConfig, StackError

    _fresh_var()
    stack = LocalStack(
        StackConfig(
            base_dir=VAR,
            markets=args.markets,
            seed=args.seed,
            scenario=args.scenario,
            web_port=_dashboard_port(),
            pause_schedule=args.pause_schedule,
            cluster=args.cluster,
            shards=2 if args.cluster else 1,
        )
    )
    progress = sys.stderr if args.headless else sys.stdout
    _say(
        f"dora demo: starting Redis, DynamoDB (moto), the simulator ({args.markets} markets), six processes and the dashboard...",
        progress,
    )
    interrupted = False
    stop = _Stop()
    started = time.monotonic()
    watch = _Watch()
    stop.install()
    try:
        try:
            stack.start()
        except StackError as exc:
            raise CliError(str(exc)) from None
        _write_private(VAR / "demo.json", json.dumps(stack.info(), indent=2))
        if args.cluster:
            port = stack.redis_url.rsplit(":", 1)[1].split("/")[0]
            hint = (
                f"'.venv/bin/supervisorctl -c {stack.conf_path} status' (shard hosts: "
                f"{stack.shard_conf(0)}, {stack.shard_conf(1)}) or "
                f"'redis-cli -c -p {port} hgetall {stack.keys().risk}'"
            )
        else:
            hint = (
                "'.venv/bin/supervisorctl -c supervisord.conf status' or "
                f"'redis-cli -p {stack.redis_port} hgetall dora:risk'"
            )
        _say(f"dora demo: running. Endpoints in {VAR / 'demo.json'}; try {hint}", progress)
        _say(f"dora demo: dashboard (with its token) at {stack.dashboard_url}", progress)
        started = time.monotonic()
        asyncio.run(_run_view(stack, args, watch, started))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.stopping = True  # from here on a signal changes nothing: the shutdown finishes
        _say(
            "dora demo: stopping: trading off, cancelling resting orders, shutting down...",
            progress,
        )
        summary = _finish(stack, args, watch, time.monotonic() - started)
        stop.restore()
    (VAR / "demo-summary.json").write_text(json.dumps(summary, indent=2))
    clean = (
        summary["errors"] == 0
        and summary["resting_orders_at_end"] == 0
        and summary["orders_placed"] > 0
    )
    if args.headless:
        _say(json.dumps(summary), sys.stdout)
    else:
        _say(
            f"dora demo: done ({'clean' if clean else 'NOT clean'}): " + json.dumps(summary),
            progress,
        )
    if interrupted and not args.headless:
        return 0 if summary["resting_orders_at_end"] == 0 else 1
    return 0 if clean else 1


def _dashboard_port() -> int:
    """``DORA_WEB_PORT`` when set; else the usual port when it is free, else any free one."""
    from cli.devstack import free_port

    chosen = os.environ.get("DORA_WEB_PORT", "").strip()
    if chosen:
        if not chosen.isdigit() or not 1 <= int(chosen) <= 65_535:
            raise CliError(f"DORA_WEB_PORT must be a port number, was {chosen!r}")
        return int(chosen)
    import socket

    with contextlib.closing(socket.socket()) as sock:
        try:
            sock.bind(("127.0.0.1", DASHBOARD_PORT))
        except OSError:
            return free_port()
    return DASHBOARD_PORT


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (it holds the dashboard's token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


class _Watch:
    """What the demo keeps track of while it runs, for the summary."""

    def __init__(self) -> None:
        self.max_abs_inventory = 0


async def _run_view(stack: Any, args: argparse.Namespace, watch: _Watch, started: float) -> None:
    import httpx

    from cli.status_view import gather, render
    from common.numbers import parse_count
    from common.redis_conn import connect_redis, keys_for
    from common.settings import load_settings

    settings = load_settings(stack.env(), read_file=False)
    redis = connect_redis(settings)
    keys = keys_for(settings)
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            while args.duration is None or time.monotonic() - started < args.duration:
                with contextlib.suppress(httpx.HTTPError):
                    account = (
                        await http.get(f"{stack.control_url}/accounts/{stack.config.key_id}")
                    ).json()
                    for pos in account["positions"].values():
                        size = abs(parse_count(pos["position_fp"], signed=True))
                        watch.max_abs_inventory = max(watch.max_abs_inventory, size)
                if not args.headless:
                    status = await gather(redis, keys)
                    states = await asyncio.to_thread(stack.process_states)
                    procs = "  ".join(f"{name} {state}" for name, state in sorted(states.items()))
                    elapsed = time.monotonic() - started
                    sys.stdout.write(
                        "\x1b[2J\x1b[H"
                        + render(status, f"dora demo ({elapsed:.0f}s, Ctrl-C to stop)")
                        + f"\n\nsupervisord: {procs}\ndashboard: {stack.dashboard_url}\n"
                    )
                    sys.stdout.flush()
                await asyncio.sleep(1.0)
    finally:
        await redis.aclose()


def _finish(
    stack: Any, args: argparse.Namespace, watch: _Watch, duration_s: float
) -> dict[str, Any]:
    """Stop trading, cancel everything, collect the summary, shut every part down."""
    summary: dict[str, Any] = {"duration_s": round(duration_s, 1), "markets": args.markets}
    try:
        stack.quiesce()
        summary.update(_collect(stack, watch))
    except Exception as exc:  # the world may be half up: still shut it down
        summary.setdefault("errors", 0)
        summary["errors"] += 1
        summary["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stack.stop()
        (VAR / "demo.json").unlink(missing_ok=True)  # it describes a running demo
    for key in (
        "orders_placed",
        "orders_cancelled",
        "fills",
        "contracts_traded",
        "net_pnl_dollars",
        "max_abs_inventory",
        "api_429s",
        "errors",
        "resting_orders_at_end",
    ):
        summary.setdefault(key, 0)
    return summary


def _collect(stack: Any, watch: _Watch) -> dict[str, Any]:
    from common.messages import decode_event
    from common.numbers import format_count, format_money, parse_count
    from common.redis_codec import decode_book, decode_position
    from common.risk import total_pnl

    key_id = stack.config.key_id
    account = stack.sim_get(f"/accounts/{key_id}")
    orders = stack.sim_get("/orders", key_id=key_id)["orders"]
    stats = stack.sim_get("/stats")
    r = stack.sync_redis()
    keys = stack.keys()
    contracts = 0
    for _, fields in r.xrange(keys.stream("fills")):
        kind, payload = decode_event(fields)
        if kind == "fill":
            contracts += int(payload["count"])
    positions, marks = [], {}
    for key in r.scan_iter(keys.pattern("pos")):
        ticker = keys.ticker_of(key, "pos")
        positions.append(decode_position(ticker, r.hgetall(key)))
        book = r.hgetall(keys.book(ticker))
        if book:
            mid_x2 = decode_book(ticker, book).book.mid_x2
            if mid_x2 is not None:
                marks[ticker] = mid_x2 // 2
    r.close()
    for pos in account["positions"].values():
        watch.max_abs_inventory = max(
            watch.max_abs_inventory, abs(parse_count(pos["position_fp"], signed=True))
        )
    return {
        "orders_placed": len(orders),
        "orders_cancelled": sum(1 for o in orders if o["status"] == "canceled"),
        "fills": int(account["fills"]),
        "contracts_traded": format_count(contracts),
        "net_pnl_dollars": format_money(total_pnl(positions, marks)),
        "max_abs_inventory": format_count(watch.max_abs_inventory),
        "api_429s": int(stats.get("http_429", 0)),
        "errors": sum(_count_errors(conf.parent / "var" / "log") for conf, _ in stack.hosts()),
        "resting_orders_at_end": len(account["resting_orders"]),
    }


def _count_errors(log_dir: Path) -> int:
    """Error-level log lines of the six processes plus unexpected exits seen by supervisord."""
    errors = 0
    for path in log_dir.glob("*.log"):
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                if path.name == "supervisord.log":
                    errors += bool(UNEXPECTED_EXIT.search(line))
                elif '"level":"error"' in line:
                    errors += 1
    return errors
