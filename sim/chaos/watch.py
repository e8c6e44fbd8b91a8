"""What a chaos run watches while it runs, each in its own polling thread.

- ``AccountWatch`` (~10/s): the exchange's truth for the bot's account (``/_sim/accounts/{key}``):
  resting orders per market side and positions, checked on every poll (never two resting orders
  on one market side, never a position beyond the cap) and kept as a compact history (which
  markets had resting orders when) for the halt, pause and close checks.
- ``FlagWatch`` (~4/s): the bot's own flags in Redis: ``stale`` of every ``dora:book:{t}`` and
  ``halted`` of ``dora:risk``, as episodes (start, end). Redis going away (a fault) is a gap in
  the history, not an error.
- ``ProcessWatch`` (~2/s): supervisord's state of every process over its XML-RPC socket, as
  episodes of not RUNNING.

Times are wall-clock milliseconds: the simulator runs on the same wall clock (``/_sim/stats``
``now_ms``), so the exchange's ``created_ms`` and these times compare directly.
"""

from __future__ import annotations

import contextlib
import threading
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from common.keys import Keys
from common.numbers import parse_count


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class AccountSample:
    ms: int
    resting: int
    tickers: frozenset[str]  # markets with at least one resting order of ours
    two_sided: int  # markets with a resting bid and a resting ask of ours


@dataclass
class Episode:
    """One stretch of time in which something held (a stale book, a halt, a process down)."""

    subject: str
    start_ms: int  # first poll that saw it
    end_ms: int | None = None  # first poll that saw it over (None: still on)
    detail: str = ""
    last_ms: int = 0  # last poll that saw it on: the conservative end

    @property
    def duration_ms(self) -> int:
        return (self.end_ms if self.end_ms is not None else self.last_ms) - self.start_ms


class _Poller:
    interval_s = 0.1

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=type(self).__name__)
        self.polls = 0
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
                self.polls += 1
            except Exception:  # a fault under way (Redis restarting, a slow answer): retry
                self.errors += 1
            self._stop.wait(self.interval_s)
        self.finish()

    def poll(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Close open episodes at the end."""


class AccountWatch(_Poller):
    def __init__(self, control_url: str, key_id: str, cap: int, interval_s: float = 0.1) -> None:
        super().__init__()
        self.url = f"{control_url}/accounts/{key_id}"
        self.cap = cap
        self.interval_s = interval_s
        self.history: list[AccountSample] = []
        self.duplicate_side: list[str] = []
        self.over_cap: list[str] = []
        self.max_abs_position: dict[str, int] = {}
        self._client = httpx.Client(timeout=5)
        self.lock = threading.Lock()
        # more checks on every poll's account (``sim.chaos.limits.LimitWatch``)
        self.hooks: list[Callable[[dict[str, Any], int], None]] = []

    def account(self) -> dict[str, Any]:
        data: dict[str, Any] = self._client.get(self.url).raise_for_status().json()
        return data

    def poll(self) -> None:
        account = self.account()
        self.check(account, now_ms())

    def check(self, account: dict[str, Any], ms: int) -> None:
        resting = account["resting_orders"]
        sides = Counter((o["ticker"], o["book_side"]) for o in resting)
        for (ticker, side), n in sides.items():
            if n > 1:
                ids = [o["client_order_id"] for o in resting if o["ticker"] == ticker]
                self.duplicate_side.append(f"t={ms} {ticker} {side} x{n} {ids}")
        for ticker, pos in account["positions"].items():
            size = abs(parse_count(pos["position_fp"], signed=True))
            self.max_abs_position[ticker] = max(self.max_abs_position.get(ticker, 0), size)
            if size > self.cap:
                self.over_cap.append(f"t={ms} {ticker} position {pos['position_fp']}")
        for hook in self.hooks:
            hook(account, ms)
        bids = {t for t, side in sides if side == "bid"}
        asks = {t for t, side in sides if side == "ask"}
        with self.lock:
            self.history.append(
                AccountSample(
                    ms, len(resting), frozenset(o["ticker"] for o in resting), len(bids & asks)
                )
            )

    def samples(self, start_ms: int, end_ms: int) -> list[AccountSample]:
        with self.lock:
            return [s for s in self.history if start_ms <= s.ms <= end_ms]

    def first_empty_after(self, ms: int, ticker: str | None = None) -> int | None:
        """When (ms) the first poll after ``ms`` saw no resting order (of ``ticker``)."""
        with self.lock:
            for sample in self.history:
                if sample.ms < ms:
                    continue
                if (ticker is None and sample.resting == 0) or (
                    ticker is not None and ticker not in sample.tickers
                ):
                    return sample.ms
        return None

    def finish(self) -> None:
        self._client.close()


class FlagWatch(_Poller):
    interval_s = 0.25

    def __init__(
        self,
        redis_url: str,
        tickers: list[str],
        prefix: str = "dora:",
        *,
        keys: Keys | None = None,
        cluster: bool = False,
    ) -> None:
        super().__init__()
        self.redis_url = redis_url
        self.tickers = tickers
        self.keys = keys or Keys(prefix)
        self.cluster = cluster  # a Redis Cluster: the cluster client, which follows failovers
        self.stale: dict[str, list[Episode]] = {t: [] for t in tickers}
        self.halts: list[Episode] = []
        self._r: redis.Redis | None = None

    def _redis(self) -> redis.Redis:
        if self._r is None and self.cluster:
            self._r = redis.RedisCluster.from_url(  # type: ignore[assignment]
                self.redis_url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1
            )
        if self._r is None:
            self._r = redis.Redis.from_url(
                self.redis_url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1
            )
        return self._r

    def poll(self) -> None:
        r = self._redis()
        try:
            pipe = r.pipeline(transaction=False)
            for ticker in self.tickers:
                pipe.hmget(self.keys.book(ticker), "stale", "stale_reason")
            pipe.hmget(self.keys.risk, "halted", "reason")
            rows = pipe.execute()
        except redis.RedisError:
            self._r = None
            raise
        ms = now_ms()
        for ticker, (stale, reason) in zip(self.tickers, rows[:-1], strict=True):
            _track(self.stale[ticker], ticker, stale == "1", ms, reason or "")
        halted, reason = rows[-1]
        _track(self.halts, self.keys.risk, halted == "1", ms, reason or "")

    def finish(self) -> None:
        ms = now_ms()
        for episodes in [*self.stale.values(), self.halts]:
            if episodes and episodes[-1].end_ms is None:
                episodes[-1].end_ms = ms
        if self._r is not None:
            with contextlib.suppress(Exception):
                self._r.close()


def _track(episodes: list[Episode], subject: str, on: bool, ms: int, detail: str) -> None:
    open_ = bool(episodes) and episodes[-1].end_ms is None
    if on and not open_:
        episodes.append(Episode(subject, ms, None, detail, ms))
    elif on:
        episodes[-1].last_ms = ms
    elif open_:
        episodes[-1].end_ms = ms


class ProcessWatch(_Poller):
    interval_s = 0.5

    def __init__(self, socket_path: str, shard_sockets: Sequence[str] = ()) -> None:
        """``shard_sockets``: each shard host's supervisord; its processes are ``name@N``."""
        super().__init__()
        self.socket_path = socket_path
        self.shard_sockets = list(shard_sockets)
        self.down: dict[str, list[Episode]] = {}
        self.states_seen: Counter[str] = Counter()

    def proxy(self, socket_path: str = "") -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{socket_path or self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def _all_info(self) -> list[tuple[str, dict[str, Any]]]:
        hosts = [("", self.socket_path)] + [(f"@{i}", p) for i, p in enumerate(self.shard_sockets)]
        return [
            (info["name"] + suffix, info)
            for suffix, path in hosts
            for info in self.proxy(path).supervisor.getAllProcessInfo()
        ]

    def poll(self) -> None:
        ms = now_ms()
        for name, info in self._all_info():
            state = info["statename"]
            self.states_seen[state] += 1
            episodes = self.down.setdefault(name, [])
            _track(episodes, name, state != "RUNNING", ms, state)
            if state != "RUNNING" and episodes and state not in episodes[-1].detail:
                episodes[-1].detail += f" {state}"

    def pid(self, name: str) -> int:
        process, _, shard = name.partition("@")
        path = self.shard_sockets[int(shard)] if shard else self.socket_path
        info = self.proxy(path).supervisor.getProcessInfo(process)
        return int(info["pid"])

    def finish(self) -> None:
        ms = now_ms()
        for episodes in self.down.values():
            if episodes and episodes[-1].end_ms is None:
                episodes[-1].end_ms = ms


@dataclass
class Watchers:
    account: AccountWatch
    flags: FlagWatch
    processes: ProcessWatch
    started_ms: int = field(default_factory=now_ms)

    def start(self) -> None:
        for poller in (self.account, self.flags, self.processes):
            poller.start()

    def stop(self) -> None:
        for poller in (self.account, self.flags, self.processes):
            poller.stop()
