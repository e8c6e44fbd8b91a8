"""`dora demo` ends on SIGHUP and SIGTERM exactly as on Ctrl-C, and runs once at a time (issue 17).

Closing the terminal that runs the demo (or losing the SSH session) used to kill the demo alone:
Redis, moto, the simulator, supervisord and the six processes kept running, and trading. Here a
real demo runs on a pseudo-terminal; the test records every process it started, hangs up (or
sends SIGTERM) and checks that the demo shut everything down itself and left nothing resting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import REPO, wait_for

VAR = REPO / "var"
DEMO = [sys.executable, "-m", "cli.main", "demo", "--pause-schedule", "none", "--headless"]
Started = dict[int, str]  # pid -> its start time (so a reused pid is never taken for ours)


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def _tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _started_by(demo_pid: int) -> Started:
    """The demo's children (Redis, moto, the simulator) and supervisord (which daemonizes, so
    it is not a child) with its six processes."""
    pids = _tree(demo_pid) - {demo_pid}
    supervisord = int((VAR / "supervisord.pid").read_text().strip())
    pids |= _tree(supervisord)
    return {pid: stat[2] for pid in pids if (stat := _stat(pid)) is not None}


def _alive(started: Started) -> Started:
    return {
        pid: start
        for pid, start in started.items()
        if (stat := _stat(pid)) is not None and stat[2] == start and stat[1] != "Z"
    }


def _lock_owner() -> str:
    with contextlib.suppress(OSError):
        return (VAR / "demo.lock").read_text().strip()
    return ""


def _written_since(path: Path, since: float) -> bool:
    """``path`` exists and was written by this run, not left over by an earlier one."""
    with contextlib.suppress(OSError):
        return path.stat().st_mtime >= since
    return False


def _resting_orders(control_url: str) -> int:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        account = httpx.get(f"{control_url}/accounts/demo", timeout=5).json()
        return len(account["resting_orders"])
    return 0


class Terminal:
    """A pseudo-terminal whose output is drained, as a terminal window would; ``hang_up`` closes
    it as closing the window does."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.open = True
        self.output = bytearray()  # what the demo wrote, for the assertion messages
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(self.master, 4096):
                self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")[-3000:]

    def hang_up(self) -> None:
        if self.open:
            self.open = False
            os.close(self.master)

    def close(self) -> None:
        self.hang_up()
        os.close(self.slave)


def _second_demo_refused(first_pid: int) -> None:
    second = subprocess.run(
        [*DEMO, "--duration", "5"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert second.returncode != 0
    assert second.stdout == ""
    assert second.stderr.count("\n") == 1, second.stderr
    assert f"a demo is already running (pid {first_pid})" in second.stderr


def test_a_second_demo_says_so_in_one_line_and_leaves_var_alone() -> None:
    VAR.mkdir(exist_ok=True)
    (VAR / "log").mkdir(exist_ok=True)
    sentinel = VAR / "log" / "first-demo.log"
    sentinel.write_text("the running demo's log\n")
    with (VAR / "demo.lock").open("a+") as lock:  # this test process plays the running demo
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            _second_demo_refused(os.getpid())
            assert sentinel.read_text() == "the running demo's log\n"
        finally:
            sentinel.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_demo_stops_everything_it_started_on(signum: signal.Signals) -> None:
    started: Started = {}
    terminal = Terminal()
    since = time.time()
    demo = subprocess.Popen(
        [*DEMO, "--duration", "60"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=terminal.slave,
        stderr=terminal.slave,
        start_new_session=True,
    )
    try:
        if signum == signal.SIGTERM:  # a second demo while the first one is still coming up
            wait_for(lambda: _lock_owner() == str(demo.pid), 30, "the demo's lock")
            _second_demo_refused(demo.pid)
        up = VAR / "demo.json"
        wait_for(lambda: _written_since(up, since) or demo.poll() is not None, 180, "the demo up")
        assert demo.poll() is None, f"the demo ended before it was signalled: {terminal.text}"
        info = json.loads(up.read_text())
        wait_for(lambda: _resting_orders(info["sim_control_url"]), 60, "resting orders")
        started = _started_by(demo.pid)
        assert len(started) >= 10  # redis, moto, sim, supervisord and six processes
        if signum == signal.SIGHUP:
            terminal.hang_up()  # the window closes: writes to it fail from now on
        demo.send_signal(signum)
        code = demo.wait(240)
        assert code >= 0, f"the demo died of signal {-code} instead of stopping: {terminal.text}"
        wait_for(lambda: not _alive(started), 15, "every process the demo started to end")
        assert _written_since(VAR / "demo-summary.json", since)
        summary = json.loads((VAR / "demo-summary.json").read_text())
        assert summary["orders_placed"] > 0
        assert summary["resting_orders_at_end"] == 0
        assert not (VAR / "demo.json").exists()
    finally:  # only when the test failed is anything left: leave nothing behind
        terminal.close()
        if demo.poll() is None:
            demo.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                demo.wait(240)
        for pid in _alive(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            demo.kill()
