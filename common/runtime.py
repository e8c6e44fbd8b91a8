"""The lifecycle every dora process shares: start, loop, stop.

A service is an object with ``name`` and three coroutines:

- ``start(ctx)``: connect, restore, reconcile. Retried with backoff when it fails for a passing
  reason (Redis or the exchange unreachable); a ``ConfigError`` stops the process at once with one
  line on stderr and exit status 2.
- ``step(ctx)``: one iteration of the loop. It should return within about a second (block on
  Redis with a timeout, not forever) so a stop request is seen promptly. An exception is logged
  and the loop backs off; it never ends the process.
- ``stop(ctx)``: drain and close clients.

A service whose clients need the running context (Redis, the clock) is handed over as a
``Deferred``: its ``build(ctx)`` makes the clients and then the service object, so none of the
service's attributes waits half-built for ``start``. A failed build is retried like a failed start.

``run_service`` adds what every process needs: the heartbeat key with a TTL
(``dora:hb:{service}``), SIGTERM/SIGINT handling (first signal: finish the current step, call
``stop``, clear the heartbeat and exit 0; second signal: exit at once), JSON logs, and a run-once
mode (``--once`` or ``DORA_RUN_ONCE=1``) so a test can drive one iteration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis

from common.clock import Clock
from common.errors import ConfigError
from common.keys import Keys
from common.log import EventLogger, register_secret, setup_logging
from common.metrics import Metrics, run_publisher
from common.redis_codec import encode_heartbeat
from common.redis_conn import connect_redis, keys_for
from common.sched import take_cpu_place
from common.settings import Settings, load_settings
from common.streams import entry_ms

T = TypeVar("T")

START_RETRY_MAX_S = 10.0
STEP_BACKOFF_MAX_S = 5.0
DRAIN_TIMEOUT_S = 10.0


@dataclass
class Context:
    """What a service is handed: settings, clients, clock, logger and the stop flag."""

    name: str
    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    clock: Clock
    log: EventLogger
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    status: dict[str, Any] = field(default_factory=dict)  # published in the heartbeat
    metrics: Metrics = field(default_factory=lambda: Metrics("dora", enabled=False))

    @property
    def should_stop(self) -> bool:
        return self.stopping.is_set()


class Service(Protocol):
    name: str

    async def start(self, ctx: Context) -> None: ...

    async def step(self, ctx: Context) -> None: ...

    async def stop(self, ctx: Context) -> None: ...


@dataclass(frozen=True)
class Deferred:
    """A service built once its context exists (``build(ctx)``), under ``name``."""

    name: str
    build: Callable[[Context], Awaitable[Service]]


def note_lag(ctx: Context, name: str, oldest_id: str) -> None:
    """Record how long the oldest entry of a batch just read waited in its stream (ms; from the
    Redis entry id) as ``name`` in the heartbeat, keeping the worst value until the next
    heartbeat is written. The oldest, not the newest: a consumer whose step takes 200 ms finds
    its newest entry fresh and its oldest 200 ms old, and that wait is the lag a tick pays."""
    try:
        lag = max(0, ctx.clock.now_ms() - entry_ms(oldest_id))
    except ValueError:
        return
    ctx.status[name] = max(lag, ctx.status.get(name, 0))


async def stop_tasks(tasks: list[asyncio.Task[Any]], timeout_s: float = 2.0) -> None:
    """Cancel background tasks and give them ``timeout_s`` to finish; never wait longer (a task
    that swallows its cancellation must not hold up a SIGTERM)."""
    live = [t for t in tasks if not t.done()]
    for task in live:
        task.cancel()
    if live:
        await asyncio.wait(live, timeout=timeout_s)


async def _heartbeat_loop(ctx: Context, pid: int) -> None:
    interval_s = ctx.settings.heartbeat_interval_ms / 1000
    while True:
        try:
            await write_heartbeat(ctx, pid, "running")
        except Exception as exc:  # Redis down: keep trying, the TTL tells others we are silent
            ctx.log.warning("heartbeat_failed", error=str(exc))
        await asyncio.sleep(interval_s)


async def write_heartbeat(ctx: Context, pid: int, status: str) -> None:
    value = encode_heartbeat(
        pid,
        ctx.clock.now_ms(),
        status,
        {"host": socket.gethostname(), **ctx.status, **ctx.metrics.totals},
    )
    await ctx.redis.set(ctx.keys.hb(ctx.name), value, px=ctx.settings.heartbeat_ttl_ms)
    for name in [k for k in ctx.status if k.endswith("_lag_ms")]:
        ctx.status[name] = 0  # worst lag per heartbeat interval


async def run_service(
    service: Service | Deferred,
    settings: Settings,
    *,
    clock: Clock | None = None,
    redis: aioredis.Redis | None = None,
    once: bool = False,
    log: EventLogger | None = None,
) -> int:
    """Run ``service`` until a signal (or one step with ``once``). Returns the exit status."""
    log = log or setup_logging(service.name, settings.log_level)
    ctx = Context(
        name=service.name,
        settings=settings,
        redis=redis or connect_redis(settings),
        keys=keys_for(settings),
        clock=clock or Clock(),
        log=log,
        metrics=Metrics(settings.metrics_namespace, enabled=settings.metrics_enabled),
    )
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second_signal_exit_now", signal=signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("stopping", signal=signal.Signals(signum).name)
        ctx.stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        # not possible outside the main thread (some tests): those runs stop via ctx.stopping
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)

    pid = os.getpid()
    running: Service | None = None if isinstance(service, Deferred) else service
    heartbeat: asyncio.Task[None] | None = None
    metrics_done = asyncio.Event()
    publisher = asyncio.create_task(
        run_publisher(ctx.metrics, settings, log, final=metrics_done), name="metrics"
    )
    log.info("starting", pid=pid, settings=settings.redacted())
    try:
        if isinstance(service, Deferred):
            running = await _build_with_retry(service, ctx)
        if running is None or not await _start_with_retry(running, ctx):
            return 0  # stopped while starting
        heartbeat = asyncio.create_task(_heartbeat_loop(ctx, pid), name="heartbeat")
        freeze_startup_objects()
        log.info("started")
        await _loop(running, ctx, once)
        return 0
    except ConfigError as exc:
        log.error("bad_config", reason=str(exc))
        print(f"{service.name}: {exc}", file=sys.stderr)
        return 2
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
            # ended before the client closes: a heartbeat cancelled inside its Redis write and
            # left for the event loop's shutdown once hung the process there (1 stop in 3)
            await asyncio.wait([heartbeat], timeout=1.0)
        try:
            if running is not None:
                await asyncio.wait_for(running.stop(ctx), DRAIN_TIMEOUT_S)
        except Exception:
            log.exception("stop_failed")
        try:
            if heartbeat is not None:  # never started beating (a standby executor waiting for
                # its shard's lease): the key is another process's
                await ctx.redis.delete(ctx.keys.hb(ctx.name))
        except Exception as exc:
            log.warning("heartbeat_clear_failed", error=str(exc))
        metrics_done.set()  # one last publish of what this process recorded
        await asyncio.wait([publisher], timeout=5.0)
        with contextlib.suppress(Exception):
            await ctx.redis.aclose()
        log.info("stopped")


def freeze_startup_objects() -> None:
    """Collect once, then move every object alive after start (modules, classes, clients: ~35k
    of the strategy's ~40k tracked objects) out of the garbage collector's reach
    (``gc.freeze``). A full collection then scans only what the loop created since. Under book
    churn the strategy's full collections took 19-102 ms on the loaded box (one was behind a
    139 ms stream lag); frozen, 2-12 ms."""
    gc.collect()
    gc.freeze()


async def _build_with_retry(deferred: Deferred, ctx: Context) -> Service | None:
    """The built service, or None when stopped before a build succeeded."""
    built: list[Service] = []

    async def attempt() -> None:
        built.append(await deferred.build(ctx))

    return built[0] if await _retry(attempt, ctx) else None


async def _start_with_retry(service: Service, ctx: Context) -> bool:
    return await _retry(lambda: service.start(ctx), ctx)


async def _retry(attempt: Callable[[], Awaitable[None]], ctx: Context) -> bool:
    """Run ``attempt`` until it succeeds (True) or the process is asked to stop (False); a
    ``ConfigError`` is not retried."""
    delay_s = 0.2
    while not ctx.should_stop:
        try:
            await attempt()
            return True
        except ConfigError:
            raise
        except Exception as exc:
            ctx.log.warning(
                "start_failed_retrying", error=f"{type(exc).__name__}: {exc}", retry_s=delay_s
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stopping.wait(), delay_s)
            delay_s = min(delay_s * 2, START_RETRY_MAX_S)
    return False


async def _loop(service: Service, ctx: Context, once: bool) -> None:
    failures = 0
    while not ctx.should_stop:
        try:
            await service.step(ctx)
            failures = 0
        except ConfigError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            delay_s = min(0.1 * 2 ** min(failures, 8), STEP_BACKOFF_MAX_S)
            ctx.log.exception(
                "step_failed",
                error=f"{type(exc).__name__}: {exc}",
                failures=failures,
                retry_s=delay_s,
            )
            if once:
                raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stopping.wait(), delay_s)
        if once:
            return


def service_main(
    factory: Callable[[Settings], Service | Deferred],
    argv: Sequence[str] | None = None,
    *,
    needs_kalshi: bool = False,
    cold: bool = False,
) -> int:
    """``main()`` of a service process: parse ``--once``, load settings, run, exit status.
    ``cold``: the process is off the tick-to-order path and runs at ``cold_nice``; every process
    leads a session (a scheduling group) of its own unless ``own_session`` is off
    (``common.sched``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--once", action="store_true", help="run one iteration and exit")
    args = parser.parse_args(argv)
    once = args.once or os.environ.get("DORA_RUN_ONCE") == "1"
    try:
        settings = load_settings()
        if needs_kalshi:
            settings.require_kalshi_credentials()
        register_secret(settings.kalshi_private_key)
        register_secret(settings.web_token)  # every process has it in its environment
        service = factory(settings)
    except ConfigError as exc:
        print(f"dora: {exc}", file=sys.stderr)
        return 2
    take_cpu_place(own_session=settings.own_session, cold=cold, cold_nice=settings.cold_nice)
    try:
        return run_loop(run_service(service, settings, once=once), uvloop=settings.uvloop)
    except KeyboardInterrupt:
        return 130


def loop_factory(uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is wanted and importable; None (asyncio's own) otherwise.
    uvloop's loop cuts the CPU of every socket read and write and every wake-up
    (docs/performance.md); ``DORA_UVLOOP=false`` turns it off."""
    if not uvloop:
        return None
    try:
        import uvloop as module
    except ImportError:  # not installed (not built for this platform): asyncio's loop
        return None
    return module.new_event_loop


def run_loop(main: Coroutine[Any, Any, T], *, uvloop: bool = True) -> T:
    """``asyncio.run(main)`` on the event loop every dora process uses (``loop_factory``)."""
    with asyncio.Runner(loop_factory=loop_factory(uvloop)) as runner:
        return runner.run(main)
