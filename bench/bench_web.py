"""The dashboard with 500 markets: time to the first full render and the cost of each update.

Run: ``python -m bench.bench_web [--markets 500] [--seconds 30]``, or, while ``dora demo`` runs,
``python -m bench.bench_web screenshot --out docs/dashboard.png``.

A Redis of its own holds a synthetic state of ``--markets`` markets (``bench/synthetic.py``: every
key the dashboard reads, written with the schema's encoders); the real ``python -m services.web``
serves it; headless chromium (``bench/browser.py``) opens the page. Then, for each load, a writer
moves that share of the markets before every update (book, quotes, targets, a fill in one of
ten) for ``--seconds``, and the run records:

- first render: navigation start -> every row in the table and the frame painted
  (``window.doraStats.firstFullMs``), and the wall time from ``get`` to the same;
- per update in the browser: the script's own time applying a delta (``doraStats.applyMs``) and
  the renderer's main-thread time per update (Chrome's ``Performance.getMetrics``: script,
  style, layout and paint together);
- per update in the web process: its CPU per tick (``/proc``) and the delta's size; and its CPU
  with no page open (a tick every 5 s).

Writes ``bench/results-web.json`` and prints the table that docs/performance.md shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from bench.browser import chromium, missing
from bench.run import cpu_ticks, pct, rss_mb
from bench.synthetic import World, churn, seed
from cli.devstack import REPO, LocalStack, StackConfig, free_port
from common.keys import Keys

RESULTS = Path(__file__).parent / "results-web.json"
TOKEN = "bench-token-0123456789abcdef"
LOADS_PCT = (10, 100)  # share of the markets that change before each update
TICK_S = 0.5  # services/web/service.py ACTIVE_TICK_MS
CLOCK_HZ = os.sysconf("SC_CLK_TCK")
IDLE_S = 20.0


def start_web(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DORA_")}
    env.update(
        DORA_REDIS_URL=redis_url,
        DORA_WEB_PORT=str(port),
        DORA_WEB_TOKEN=TOKEN,
        DORA_DYNAMODB_ENDPOINT="http://127.0.0.1:9",  # no DynamoDB here: no stored history
    )
    return subprocess.Popen(
        [sys.executable, "-m", "services.web"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class Writer:
    """Moves ``share_pct`` % of the markets every ``TICK_S`` in a thread of its own."""

    def __init__(self, redis_url: str, world: World) -> None:
        self.redis_url = redis_url
        self.world = world
        self.share_pct = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        redis: aioredis.Redis = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        keys = Keys()
        try:
            while not self.stop.is_set():
                if self.share_pct:
                    await churn(redis, keys, self.world, int(time.time() * 1000), self.share_pct)
                await asyncio.sleep(TICK_S)
        finally:
            await redis.aclose()


RENDERER_PARTS = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration")


def renderer_ms(driver: Any) -> dict[str, float]:
    """The page's main-thread time so far, in ms: all of it (``TaskDuration``) and its script,
    style and layout parts."""
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    values = {m["name"]: float(m["value"]) * 1000 for m in metrics}
    return {name: values.get(name, 0.0) for name in RENDERER_PARTS}


def measure(markets: int, seconds: float) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="dora-bench-web-"))
    stack = LocalStack(StackConfig(base_dir=base))
    stack.var_dir.mkdir(parents=True, exist_ok=True)
    (stack.var_dir / "log").mkdir(exist_ok=True)
    stack.start_redis()
    world = World(markets)
    asyncio.run(_seed(stack.redis_url, world))
    port = free_port()
    web = start_web(stack.redis_url, port)
    writer = Writer(stack.redis_url, world)
    writer.thread.start()
    result: dict[str, Any] = {"markets": markets, "seconds": seconds, "loads": []}
    try:
        _wait_for_port(port)
        writer.share_pct = LOADS_PCT[0]
        cpu_before = cpu_ticks(web.pid)
        time.sleep(IDLE_S)  # no page open: a tick every 5 s, the history kept
        result["idle_web_cpu_pct"] = round(
            (cpu_ticks(web.pid) - cpu_before) * 1000 / CLOCK_HZ / (IDLE_S * 10), 2
        )
        with chromium(1500, 1100) as driver:
            driver.execute_cdp_cmd("Performance.enable", {})
            started = time.monotonic()
            driver.get(f"http://127.0.0.1:{port}/")
            while driver.execute_script("return window.doraStats && doraStats.firstFullMs") is None:
                time.sleep(0.01)
            stats = driver.execute_script("return window.doraStats")
            result["first_render_ms"] = round(stats["firstFullMs"], 1)
            result["first_render_wall_ms"] = round((time.monotonic() - started) * 1000, 1)
            result["rows"] = stats["rows"]
            result["first_apply_ms"] = round(stats["applyMs"][0], 1)
            for share in LOADS_PCT:
                result["loads"].append(_load(driver, writer, web.pid, share, seconds))
        result["web_rss_mb"] = rss_mb(web.pid)
    finally:
        writer.stop.set()
        writer.thread.join(5)
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(15)
        stack.stop()
    return result


async def _seed(redis_url: str, world: World) -> None:
    redis: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await seed(redis, Keys(), world, int(time.time() * 1000))
    finally:
        await redis.aclose()


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the web process did not listen on {port}")


def _load(driver: Any, writer: Writer, web_pid: int, share: int, seconds: float) -> dict[str, Any]:
    writer.share_pct = share
    time.sleep(2 * TICK_S)  # the first updates of this load
    before = driver.execute_script(
        "return {n: doraStats.deltas, applied: doraStats.applyMs.length}"
    )
    renderer_before, cpu_before = renderer_ms(driver), cpu_ticks(web_pid)
    beat_before = asyncio.run(_heartbeat(writer.redis_url))
    time.sleep(seconds)
    stats = driver.execute_script("return doraStats")
    updates = stats["deltas"] - before["n"]
    applied = stats["applyMs"][-min(updates, len(stats["applyMs"])) :] if updates else []
    cpu_ms = (cpu_ticks(web_pid) - cpu_before) * 1000 / CLOCK_HZ
    renderer = {k: v - renderer_before[k] for k, v in renderer_ms(driver).items()}
    beat = asyncio.run(_heartbeat(writer.redis_url))
    return {
        "changed_pct": share,
        "updates": updates,
        "updates_per_s": round(updates / seconds, 2),
        "apply_p50_ms": round(pct(applied, 0.5), 2),
        "apply_p95_ms": round(pct(applied, 0.95), 2),
        "apply_max_ms": round(max(applied, default=0.0), 2),
        "renderer_ms_per_update": round(renderer["TaskDuration"] / max(updates, 1), 2),
        "renderer_parts_ms_per_update": {
            k: round(v / max(updates, 1), 2) for k, v in renderer.items() if k != "TaskDuration"
        },
        "web_cpu_ms_per_update": round(cpu_ms / max(updates, 1), 2),
        "web_cpu_pct": round(cpu_ms / (seconds * 10), 1),
        "delta_kb": round(
            (int(beat.get("delta_bytes_total", 0)) - int(beat_before.get("delta_bytes_total", 0)))
            / 1024
            / max(int(beat.get("ticks", 0)) - int(beat_before.get("ticks", 0)), 1),
            1,
        ),
    }


async def _heartbeat(redis_url: str) -> dict[str, Any]:
    redis: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        raw = await redis.get(Keys().hb("web"))
        return dict(orjson.loads(raw)) if raw else {}
    finally:
        await redis.aclose()


def table(result: dict[str, Any]) -> str:
    lines = [
        f"First full render of {result['rows']} rows: {result['first_render_ms']} ms from "
        f"navigation (the first view applied in {result['first_apply_ms']} ms; "
        f"{result['first_render_wall_ms']} ms from the driver's request). "
        f"The web process's RSS: {result['web_rss_mb']} MB; its CPU with no page open: "
        f"{result['idle_web_cpu_pct']} %.",
        "",
        "| markets changed per update | updates/s | browser: apply p50 / p95 / max ms "
        "| browser main thread ms/update | web CPU ms/update | web CPU % | delta KB |",
        "|---|---|---|---|---|---|---|",
    ]
    for load in result["loads"]:
        lines.append(
            f"| {load['changed_pct']} % | {load['updates_per_s']} | {load['apply_p50_ms']} / "
            f"{load['apply_p95_ms']} / {load['apply_max_ms']} | {load['renderer_ms_per_update']} "
            f"| {load['web_cpu_ms_per_update']} | {load['web_cpu_pct']} | {load['delta_kb']} |"
        )
    return "\n".join(lines)


def screenshot(out: Path, demo_json: Path) -> None:
    """The dashboard of a running ``dora demo``, a market with a position selected."""
    info = json.loads(demo_json.read_text())
    with chromium(1500, 1400) as driver:
        driver.get(info["dashboard_url"])
        time.sleep(3)
        rows = driver.find_elements("css selector", "#markets tbody tr")
        held = [r for r in rows if r.get_attribute("data-position") not in ("", "0")]
        (held or rows)[0].click()
        time.sleep(3)
        driver.save_screenshot(str(out))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", default="bench", choices=("bench", "screenshot"))
    parser.add_argument("--markets", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument("--demo-json", type=Path, default=REPO / "var" / "demo.json")
    args = parser.parse_args(argv)
    if (why := missing()) is not None:
        print(f"bench_web: {why}", file=sys.stderr)
        return 2
    if args.action == "screenshot":
        screenshot(args.out, args.demo_json)
        return 0
    result = measure(args.markets, args.seconds)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
