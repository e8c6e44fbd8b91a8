"""``dora sim``: the local Kalshi exchange simulator (DESIGN.md §6, §8), and ``dora sim keygen``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from cli.main import CliError
from common.errors import ConfigError

HELP = (
    "run the local Kalshi exchange simulator (REST + WebSocket), make an API key pair, or "
    "measure its market against Kalshi's published facts"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="listen port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the flow agents")
    parser.add_argument("--markets", type=int, default=10, help="number of markets (default 10)")
    parser.add_argument("--scenario", default="calm", help="scenario name or JSON file path")
    parser.add_argument("--api-keys", type=Path, help="directory of ID.pub.pem public keys")
    parser.add_argument(
        "--rate-tier",
        default="advanced",
        help="basic|advanced|expert|premier|paragon|prime|prestige|unlimited (default advanced)",
    )
    parser.add_argument("--balance", type=int, default=10_000, help="starting balance in dollars")
    parser.add_argument("--no-agents", action="store_true", help="no background flow")
    parser.add_argument("--ready-file", type=Path, help="write {rest_url, ws_url, port} here")
    parser.add_argument("--latency-ms", type=int, default=0, help="fault: added REST latency")
    parser.add_argument("--error-5xx-rate", type=float, default=0.0, help="fault: share of 500s")
    parser.add_argument(
        "--burst-429-s",
        type=float,
        default=0.0,
        help="fault: 429 everything for this many seconds after start",
    )
    parser.add_argument(
        "--stall-book-feed-s",
        type=float,
        default=0.0,
        help="fault: hold book deltas for this many seconds after start",
    )
    parser.add_argument(
        "--skip-seq", type=int, default=0, help="fault: next N book messages skip a seq"
    )
    parser.add_argument(
        "--pause-schedule",
        default="weekly",
        help="the exchange's trading pauses: weekly (Thursday 03:00-05:00 ET, as Kalshi), none, "
        "or every:PERIOD_S:PAUSE_S[:FIRST_S] (compressed, for tests and demos)",
    )
    parser.add_argument(
        "--direct-members",
        action="store_true",
        help="accounts of direct members (balance in $0.0001, no rounding fee)",
    )
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    keygen = sub.add_parser("keygen", help="make a key pair: DIR/ID.pem and DIR/ID.pub.pem")
    keygen.add_argument("--out", type=Path, required=True, help="directory for the key files")
    keygen.add_argument("--name", required=True, help="key id (file name stem)")
    keygen.add_argument("--type", choices=("rsa", "ed25519"), default="rsa", help="key type")
    facts = sub.add_parser(
        "facts", help="the simulated market's statistics beside Kalshi's published ones"
    )
    facts.add_argument("--scenario", dest="facts_scenario", required=True, help="name or JSON")
    facts.add_argument("--hours", dest="facts_hours", type=float, help="virtual hours (4)")
    facts.add_argument("--seed", dest="facts_seed", type=int, default=0, help="default 0")
    facts.add_argument("--markets", dest="facts_markets", type=int, help="markets (40)")
    facts.add_argument("--json", dest="facts_json", help="write the figures here ('-' = stdout)")


def _keygen(args: argparse.Namespace) -> int:
    from sim.auth import write_key_pair

    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out must be a directory, was the file {str(args.out)!r}")
    try:
        private_path, public_path = write_key_pair(args.out, args.name, args.type)
    except (ConfigError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(
        json.dumps(
            {"key_id": args.name, "private_key": str(private_path), "public_key": str(public_path)}
        )
    )
    return 0


def _validate(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, was {args.port}")
    if not 1 <= args.markets <= 2000:
        raise CliError(f"--markets must be 1-2000, was {args.markets}")
    if args.balance < 0:
        raise CliError(f"--balance must be >= 0, was {args.balance}")
    if not 0.0 <= args.error_5xx_rate <= 1.0:
        raise CliError(f"--error-5xx-rate must be 0-1, was {args.error_5xx_rate}")
    if args.api_keys is not None and not args.api_keys.is_dir():
        raise CliError(f"--api-keys must be a directory, was {str(args.api_keys)!r}")


async def _serve(args: argparse.Namespace) -> int:
    from sim.server import SimConfig, start

    config = SimConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        n_markets=args.markets,
        scenario=args.scenario,
        api_keys_dir=args.api_keys,
        rate_tier=args.rate_tier,
        balance_dollars=args.balance,
        agents=not args.no_agents,
        latency_ms=args.latency_ms,
        error_5xx_rate=args.error_5xx_rate,
        pause_schedule=args.pause_schedule,
        direct_members=args.direct_members,
    )
    try:
        running = await start(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    sim = running.sim
    faults: dict[str, object] = {}
    if args.burst_429_s:
        faults["burst_429_s"] = args.burst_429_s
    if args.stall_book_feed_s:
        faults["stall_book_feed_s"] = args.stall_book_feed_s
    if args.skip_seq:
        faults["skip_seq"] = args.skip_seq
    if faults:
        sim.faults.apply(faults, sim.clock_ms())
    ready = {"rest_url": running.rest_url, "ws_url": running.ws_url, "port": running.port}
    if args.ready_file is not None:
        args.ready_file.parent.mkdir(parents=True, exist_ok=True)
        args.ready_file.write_text(json.dumps(ready))
    print(
        json.dumps(
            {
                "event": "listening",
                **ready,
                "control_url": f"{running.base_url}/_sim",
                "keys": sim.registry.key_ids,
                "markets": len(sim.exchange.markets),
                "scenario": sim.world.scenario.name,
                "seed": args.seed,
                "rate_tier": sim.limiter.tier,
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
        if args.ready_file is not None:
            with contextlib.suppress(OSError):
                args.ready_file.unlink()
    return 0


def _facts(args: argparse.Namespace) -> int:
    import math

    from cli.support import check_output_file, write_output_file
    from sim.facts import (
        DEFAULT_HOURS,
        DEFAULT_MARKETS,
        MAX_HOURS,
        FactsSpec,
        facts_table,
        run_facts,
    )
    from sim.scenario import load_scenario

    hours = DEFAULT_HOURS if args.facts_hours is None else args.facts_hours
    markets = DEFAULT_MARKETS if args.facts_markets is None else args.facts_markets
    if not math.isfinite(hours) or not 0 < hours <= MAX_HOURS:
        raise CliError(f"--hours must be > 0 and <= {MAX_HOURS:g}, was {hours:g}")
    if not 2 <= markets <= 500:
        raise CliError(f"--markets must be 2-500, was {markets}")
    target = args.facts_json
    if target not in (None, "-"):
        check_output_file("--json", Path(target))
    try:
        scenario = load_scenario(args.facts_scenario)
    except ConfigError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    facts = run_facts(FactsSpec(scenario, hours=hours, seed=args.facts_seed, n_markets=markets))
    text = json.dumps(facts, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return 0
    print(facts_table(facts))
    if target:
        write_output_file("--json", Path(target), text)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "keygen":
        return _keygen(args)
    if args.sim_command == "facts":
        return _facts(args)
    _validate(args)
    from sim.ratelimit import check_tier
    from sim.scenario import load_scenario

    try:
        check_tier(args.rate_tier)
        load_scenario(args.scenario)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        print("dora sim: stopped", file=sys.stderr)
        return 0
