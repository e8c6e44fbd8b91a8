"""The charts' history, kept in the web process's memory since it started.

- ``DayPnl``: the risk process's snapshots of the trading day (the ``pnl`` stream: daily PnL,
  realized, unrealized, fees, exposure, every ``risk_interval_ms``), read back to the start of
  the day when the process starts, then followed as they come;
- ``MarketHistory``: per market, position and PnL over time, sampled from the dashboard's own
  reads and seeded with the day's fills from DynamoDB's trade log.

Memory stays bounded however long the process runs: a series that reaches ``max_points`` drops
every other point of its older half, so it keeps the whole span at a coarser step.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MISSING = -(2**63)  # a value a series has no sample for (e.g. PnL before the process started)
DAY_FIELDS = ("daily_pnl", "realized_pnl", "unrealized_pnl", "fees", "total_exposure")
MARKET_FIELDS = ("position", "realized_pnl", "pnl")
MARKET_SAMPLE_MS = 5_000


class Series:
    """Integer columns over a time axis, thinned as they grow."""

    __slots__ = ("columns", "max_points", "names", "times")

    def __init__(self, names: Sequence[str], max_points: int = 1_000) -> None:
        if max_points < 4:
            raise ValueError(f"max_points must be >= 4, was {max_points}")
        self.names = tuple(names)
        self.max_points = max_points
        self.times = array("q")
        self.columns = [array("q") for _ in self.names]

    def __len__(self) -> int:
        return len(self.times)

    @property
    def last_ms(self) -> int | None:
        return self.times[-1] if self.times else None

    def last(self, name: str) -> int | None:
        column = self.columns[self.names.index(name)]
        return None if not column or column[-1] == MISSING else column[-1]

    def append(self, ts_ms: int, values: Sequence[int | None]) -> None:
        self.times.append(ts_ms)
        for column, value in zip(self.columns, values, strict=True):
            column.append(MISSING if value is None else value)
        if len(self.times) > self.max_points:
            self._thin()

    def _thin(self) -> None:
        half = len(self.times) // 2
        keep = list(range(0, half, 2)) + list(range(half, len(self.times)))
        self.times = array("q", (self.times[i] for i in keep))
        self.columns = [array("q", (c[i] for i in keep)) for c in self.columns]

    def to_json(self) -> dict[str, Any]:
        """``{"t": [...], name: [...]}`` with ``None`` where a column has no sample."""
        out: dict[str, Any] = {"t": list(self.times)}
        for name, column in zip(self.names, self.columns, strict=True):
            out[name] = [None if v == MISSING else v for v in column]
        return out


class DayPnl:
    """The trading day's PnL curve, from the risk process's ``pnl`` events."""

    def __init__(self, max_points: int = 2_000) -> None:
        self.max_points = max_points
        self.day = ""
        self.series = Series(DAY_FIELDS, max_points)
        self.last_id = "0-0"

    def add(self, entry_id: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """One ``pnl`` event; returns the point added (None when it is not a usable one). A new
        trading day starts a new curve."""
        self.last_id = entry_id
        day = payload.get("day")
        ts_ms = payload.get("ts_ms")
        if not isinstance(day, str) or not day or not isinstance(ts_ms, int):
            return None
        values = [payload.get(name) for name in DAY_FIELDS]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return None
        if day != self.day:
            self.day = day
            self.series = Series(DAY_FIELDS, self.max_points)
        if self.series.last_ms is not None and ts_ms < self.series.last_ms:
            return None  # out of order (a restarted risk process's clock): keep time monotonic
        self.series.append(ts_ms, values)
        return {"day": day, "t": ts_ms, **dict(zip(DAY_FIELDS, values, strict=True))}

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, **self.series.to_json()}


class MarketHistory:
    """Position and PnL of each market over time: a point when the position changed, otherwise
    at most one every ``sample_ms``."""

    def __init__(self, max_points: int = 600, sample_ms: int = MARKET_SAMPLE_MS) -> None:
        self.max_points = max_points
        self.sample_ms = sample_ms
        self.series: dict[str, Series] = {}

    def _of(self, ticker: str) -> Series:
        series = self.series.get(ticker)
        if series is None:
            series = self.series[ticker] = Series(MARKET_FIELDS, self.max_points)
        return series

    def sample(self, now_ms: int, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            position = row.get("position")
            if position is None:
                continue
            series = self._of(row["ticker"])
            last_ms = series.last_ms
            if (
                last_ms is None
                or now_ms - last_ms >= self.sample_ms
                or series.last("position") != position
            ) and (last_ms is None or now_ms > last_ms):
                series.append(now_ms, [position, row.get("gross_realized_pnl"), row.get("pnl")])

    def seed_fills(self, fills: Iterable[tuple[int, str, int, int]]) -> int:
        """Points from stored fills (ts_ms, ticker, position after, realized PnL after) that
        come before what this process has sampled; returns how many were added."""
        by_ticker: dict[str, list[tuple[int, int, int]]] = {}
        for ts_ms, ticker, position, realized in fills:
            by_ticker.setdefault(ticker, []).append((ts_ms, position, realized))
        added = 0
        for ticker, points in by_ticker.items():
            live = self.series.get(ticker)
            first_live = live.times[0] if live is not None and len(live) else None
            seeded = Series(MARKET_FIELDS, self.max_points)
            for ts_ms, position, realized in sorted(points):
                if first_live is None or ts_ms < first_live:
                    seeded.append(ts_ms, [position, realized, None])
                    added += 1
            if live is not None:
                for i, ts_ms in enumerate(live.times):
                    seeded.append(ts_ms, [c[i] if c[i] != MISSING else None for c in live.columns])
            self.series[ticker] = seeded
        return added

    def to_json(self, ticker: str) -> dict[str, Any]:
        series = self.series.get(ticker)
        if series is None:
            return {"t": [], **{name: [] for name in MARKET_FIELDS}}
        return series.to_json()
