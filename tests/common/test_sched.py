import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis

from common import sched
from tests.support.procs import REPO, wait_for

# supervisord as far as a child sees it: a session leader without a terminal that makes each child
# the leader of a process group of its own (setpgrp) and stops it by signalling its pid
SUPERVISOR = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:], process_group=0))"
AUTOGROUP = Path("/proc/self/autogroup").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cold", "env", "own", "group_nice"),
    [
        (False, {}, True, 0),
        (True, {}, True, 10),  # its own group at DORA_COLD_NICE
        (True, {"DORA_COLD_NICE": "4"}, True, 4),
        (False, {"DORA_OWN_SESSION": "0"}, False, 0),
        (True, {"DORA_OWN_SESSION": "false"}, False, 0),  # a shared group is never lowered
    ],
)
def test_each_process_under_a_supervisor_leads_a_scheduling_group_of_its_own(
    redis_url: str, cold: bool, env: dict[str, str], own: bool, group_nice: int
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.delete("sample:session", "dora:hb:sample")
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, sys.executable, "-m", "tests.support.sample_service"]
        + (["--cold"] if cold else []),
        cwd=REPO,
        env={
            **os.environ,
            "DORA_REDIS_URL": redis_url,
            "DORA_HEARTBEAT_INTERVAL_MS": "100",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid = 0
    try:
        wait_for(lambda: r.get("sample:session") and r.get("dora:hb:sample"), 20, "the start")
        pid = orjson.loads(r.get("dora:hb:sample") or "{}")["pid"]
        supervisor_group = Path(f"/proc/{supervisor.pid}/autogroup").read_text().strip()
        sid, pgid, group = (r.get("sample:session") or "").split(" ", 2)
        # stopped as supervisord stops it: SIGTERM to its pid; it drains and exits 0
        os.kill(pid, signal.SIGTERM)
        assert supervisor.wait(10) == 0
    finally:
        for leader in (supervisor.pid, pid):  # a test that failed leaves nothing running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(leader, signal.SIGKILL) if leader else None
        supervisor.wait(10)
    assert r.get("sample:drained") == "1"
    assert int(sid) == (pid if own else supervisor.pid)
    assert int(pgid) == pid  # its own group either way: signals to it reach only it
    if AUTOGROUP:
        assert (group != supervisor_group) is own
        assert group.endswith(f"nice {group_nice}")


def test_a_process_in_a_terminal_keeps_its_session(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getsid(0) == os.getpid():
        pytest.skip("this test process leads its session already")
    monkeypatch.setattr(sched, "has_terminal", lambda: True)
    monkeypatch.setattr(os, "setsid", lambda: pytest.fail("setsid under a terminal"))
    assert sched.take_cpu_place(own_session=True, cold=False, cold_nice=10) is False


class FlakyFile:
    """/proc/self/autogroup refusing the first ``busy`` writes with EAGAIN, then ``then``."""

    def __init__(self, busy: int, then: Exception | None = None) -> None:
        self.busy, self.then = busy, then
        self.written: list[str] = []

    def write_text(self, text: str) -> None:
        if self.busy > 0:
            self.busy -= 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        if self.then is not None:
            raise self.then
        self.written.append(text)


def test_a_group_nice_change_is_retried_while_the_kernel_rate_limits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sched, "GROUP_NICE_RETRY_S", 0)
    busy = FlakyFile(busy=3)
    monkeypatch.setattr(sched, "AUTOGROUP", busy)
    assert sched.lower_group_priority(10) is True and busy.written == ["10"]
    refused = FlakyFile(busy=1, then=PermissionError(1, "Operation not permitted"))
    monkeypatch.setattr(sched, "AUTOGROUP", refused)
    assert sched.lower_group_priority(10) is False
    always = FlakyFile(busy=10**6)
    monkeypatch.setattr(sched, "AUTOGROUP", always)
    assert sched.lower_group_priority(10) is False  # gives up after its attempts
    assert always.busy == 10**6 - sched.GROUP_NICE_ATTEMPTS
    assert sched.lower_group_priority(0) is False  # 0: nothing to lower


@pytest.mark.parametrize("group_leader", [True, False])
def test_a_process_that_cannot_start_a_session_keeps_the_group_it_had(group_leader: bool) -> None:
    """setsid refused: a group leader (under supervisord) that left its group for the parent's
    goes back to a group of its own, so a signal to the parent's group does not reach it; any
    other process stays in the group it was started in."""
    code = (
        "import os; from common import sched\n"
        "def refuse(): raise PermissionError(1, 'refused')\n"
        "os.setsid = refuse\n"
        "sched.has_terminal = lambda: False\n"
        "print(sched.start_own_session(), os.getpgrp() == os.getpid())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        process_group=0 if group_leader else None,  # a leader, as under supervisord
        check=True,
    ).stdout.split()
    assert out == ["False", str(group_leader)]
