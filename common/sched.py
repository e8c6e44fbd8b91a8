"""A process's place in the kernel's CPU scheduling: a session of its own and, off the trading
path, a lower priority (docs/operations.md "CPU priority").

With autogroup (``/proc/sys/kernel/sched_autogroup_enabled`` = 1, the default of most
distributions) the scheduler first shares the CPUs between sessions, each one group of equal
weight whatever its processes' nice values, and only then between the processes of a session by
nice. Under supervisord all of dora's processes would be one session: one group's share for
marketdata, the strategy and the executor together, against the simulator's, Redis's and every
shell job's full share each, so each of their wakeups waits longer for a core. Each process
leading a session of its own gets its own group; the processes off the trading path then lower
their group's weight (``/proc/self/autogroup``), which no ``os.nice`` can do.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")
GROUP_NICE_ATTEMPTS = 20
GROUP_NICE_RETRY_S = 0.05


def take_cpu_place(*, own_session: bool, cold: bool, cold_nice: int) -> bool:
    """At a process's start: its own session (``own_session``) and, for a ``cold`` process, the
    priority ``cold_nice`` lower, of the process and of its group when the group is its own
    (never of a group it shares: under a terminal that is the shell's). True when the process
    leads a session."""
    own = own_session and start_own_session()
    if cold:
        lower_priority(cold_nice)
        if own:
            lower_group_priority(cold_nice)
    return own


def start_own_session() -> bool:
    """Make this process the leader of a new session, and so of a scheduling group of its own.
    True when it leads one (already, or now). Not under a controlling terminal: a process started
    from a shell keeps the terminal's Ctrl-C and the shell's job control. Signals sent to the
    process's pid (supervisord's stop and restart, ``kill``) reach it as before."""
    pid = os.getpid()
    if os.getsid(0) == pid:
        return True
    if has_terminal():
        return False
    moved = False
    try:
        if os.getpgrp() == pid:
            # supervisord makes each child the leader of a process group, and a group leader may
            # not start a session: join the parent's group (of this same session) for the moment
            # it takes to leave it
            os.setpgid(0, os.getpgid(os.getppid()))
            moved = True
        os.setsid()
    except OSError:
        if moved:
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)  # the group of its own it started with, again
        return False
    return True


def has_terminal() -> bool:
    """Whether this process has a controlling terminal."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def lower_priority(increment: int) -> None:
    """Lower this process's CPU priority by ``increment`` (``os.nice``; never raised, which
    needs privileges). A cold process that loses the race for a core waits a little; the
    trading path's processes, which wait for a core at every hop, wait less."""
    if increment > 0:
        with contextlib.suppress(OSError):
            os.nice(increment)


def lower_group_priority(nice: int) -> bool:
    """Set this process's scheduling group's nice value to ``nice`` (> 0: lower; the group must
    be its own). Without privileges the kernel takes one such change every 100 ms across the
    whole machine (EAGAIN otherwise), so three processes starting together retry for up to a
    second. False where there is no autogroup (no file) or the change is refused."""
    if nice <= 0:
        return False
    for _ in range(GROUP_NICE_ATTEMPTS):
        try:
            AUTOGROUP.write_text(str(nice))
            return True
        except BlockingIOError:  # EAGAIN: another group's change a moment ago
            time.sleep(GROUP_NICE_RETRY_S)
        except OSError:
            return False
    return False
