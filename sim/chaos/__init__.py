"""Chaos runs: the whole stack against the simulator while faults are injected (issue 9).

- ``driver``: the seeded fault schedule and the run itself (``run_chaos``);
- ``watch``: threads that poll the exchange's truth, the bot's Redis flags and supervisord while
  the run goes on;
- ``invariants``: the checks, each returning violations with evidence;
- ``report``: the table of faults injected and invariants held.

``python -m sim.chaos --seconds N --markets 50 [--seed S] [--base-dir DIR]`` exits 0 only when
every invariant held (docs/reliability.md).
"""
