"""``python -m sim.chaos --seconds N --markets 50 [--seed S] [--base-dir DIR] [--shards N]
[--scenario S] [--faults kinds] [--cluster]``.

Exit status: 0 when every invariant held, 1 when one broke (each named, with evidence), 2 when
the run could not be made (a bad argument, the stack did not come up).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cli.devstack import REPO
from common.errors import DoraError
from sim.chaos.driver import SABOTAGE, ChaosOptions, run_chaos
from sim.chaos.model import FaultKind
from sim.chaos.report import render

KIND_NAMES = {k.name.lower(): k for k in FaultKind}


def _kinds(text: str) -> list[FaultKind]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in KIND_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault(s) {unknown}; known: {', '.join(KIND_NAMES)}"
        )
    return [KIND_NAMES[n] for n in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.chaos", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the run")
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="default: a new one (printed)")
    parser.add_argument("--base-dir", type=Path, default=None, help="default: var/chaos-<time>")
    parser.add_argument("--faults", type=_kinds, default=None, help="only these kinds (comma list)")
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--shards", type=int, default=2, help="executor and strategy shards")
    parser.add_argument("--scenario", default="event", help="the simulator's scenario")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="on a local Redis Cluster with two shard hosts; a master is killed while trading",
    )
    parser.add_argument("--sabotage", choices=SABOTAGE, default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 20 or args.markets < 2:
        parser.error("need --seconds >= 20 and --markets >= 2")
    if not 1 <= args.shards <= 8:
        parser.error("need 1 <= --shards <= 8")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    base = args.base_dir or REPO / "var" / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}"
    options = ChaosOptions(
        seconds=args.seconds,
        markets=args.markets,
        seed=seed,
        base_dir=base,
        kinds=args.faults or tuple(FaultKind),
        warmup_s=args.warmup_s,
        shards=args.shards,
        scenario=args.scenario,
        sabotage=args.sabotage,
        cluster=args.cluster,
        log=lambda line: print(line, flush=True),
    )
    try:
        result = run_chaos(options)
    except DoraError as exc:
        print(f"chaos: the run could not be made: {exc}", file=sys.stderr)
        return 2
    print(render(result), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": seed,
                    "ok": result.ok,
                    "duration_s": result.duration_s,
                    "stats": result.stats,
                    "faults": [{**vars(f), "kind": f.kind.name.lower()} for f in result.faults],
                    "invariants": [
                        {
                            "name": r.name,
                            "held": r.held,
                            "checks": r.checks,
                            "notes": r.notes,
                            "violations": r.violations,
                        }
                        for r in result.invariants
                    ],
                },
                indent=2,
            )
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
