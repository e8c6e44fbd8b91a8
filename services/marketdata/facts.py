"""Market facts (status, close time, tick grid, fees, shard) into ``dora:market:{t}``.

From REST at start and every ``META_REFRESH_MS``, and from the lifecycle channel at once: a
pause, a close-date change or a determination makes the market unquotable immediately. What the
exchange sends that dora does not know (a status, a field it cannot read, a lifecycle event type)
affects only that market: it is written with its ``problem`` (not quoted; ``dora status`` and an
alert say why), and the other markets go on. Fee changes apply without a restart: an
``event_fee_update`` at once, ``GET /series/fee_changes`` when each change is due. When lifecycle
messages may have been missed (a seq gap, the subscription gone) every market is read again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from common.alerts import Alerter
from common.domain import MarketMeta, MarketStatus
from common.errors import WireError
from common.grid import GridError, PriceGrid
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.fee_cache import FEES_UNAVAILABLE
from common.kalshi.wire.markets import FeeChange
from common.kalshi.ws import FeeUpdate, LifecycleEvent
from common.messages import encode_event
from common.redis_codec import encode_market
from common.runtime import Context
from common.streams import STREAM_MAXLEN
from services.marketdata.owned_keys import execute_owned

META_REFRESH_MS = 30_000
FEE_CHANGES_EVERY_MS = 60_000
CHUNK = 100  # tickers per GET /markets

# Kalshi lifecycle event -> the market status it implies (API.md §9)
LIFECYCLE_STATUS = {"determined": MarketStatus.DETERMINED, "settled": MarketStatus.FINALIZED}
# lifecycle events that change nothing dora keeps (or nothing it can read from the message)
REFETCHED = ("metadata_updated", "created")


class MarketFacts:
    def __init__(self, ctx: Context, client: KalshiClient, alerter: Alerter) -> None:
        self.ctx = ctx
        self.client = client
        self.alerter = alerter
        self.meta: dict[str, MarketMeta] = {}
        self.dirty: set[str] = set()  # to write (and announce)
        self.refetch: set[str] = set()  # to read again over REST first
        self.refresh_all = False  # lifecycle messages may have been missed
        self.busy = 0  # reads or writes of facts in flight that the books must not overtake
        self.started_ms = ctx.clock.now_ms()
        self.fee_changes_known: set[tuple[str, int]] | None = None  # None: not polled yet
        self.pending_fee_changes: list[FeeChange] = []
        self.last_fee_poll_ms = 0.0
        self.problems: dict[str, str] = {}  # ticker -> problem last alerted
        self.events: dict[str, str] = {}  # ticker -> its event ticker
        self.counts = {"lifecycle": 0, "fee_updates": 0, "unquotable": 0}

    @property
    def pending(self) -> bool:
        """Whether something is to be read again or written (``refresh_due`` has work), or is
        being read or written: a book published meanwhile could reach the strategy first."""
        return self.refresh_all or bool(self.refetch) or bool(self.dirty) or self.busy > 0

    # ---- from the WebSocket (cheap: note what changed, the step writes it) ------------------

    def on_lifecycle(self, event: LifecycleEvent) -> None:
        meta = self.meta.get(event.ticker)
        if meta is None:
            self.refetch.add(event.ticker)  # learn about it over REST
            return
        fields: dict[str, Any] = event.fields
        kind = event.event_type
        if kind == "deactivated":
            paused = fields.get("is_deactivated", True)
            meta = replace(meta, status=MarketStatus.INACTIVE if paused else MarketStatus.ACTIVE)
        elif kind == "activated":
            meta = replace(meta, status=MarketStatus.ACTIVE)
        elif kind == "close_date_updated" and isinstance(fields.get("close_ts"), int | float):
            meta = replace(meta, close_ms=int(fields["close_ts"]) * 1000)
        elif kind in LIFECYCLE_STATUS:
            meta = replace(meta, status=LIFECYCLE_STATUS[kind])
        elif kind == "price_level_structure_updated" and fields.get("price_ranges"):
            try:
                meta = replace(meta, grid=PriceGrid.from_price_ranges(fields["price_ranges"]))
            except GridError:
                self.refetch.add(event.ticker)
                return
        else:
            # metadata_updated, or a type dora does not know: the market's state over REST
            if isinstance(fields.get("close_ts"), int | float):
                meta = replace(meta, close_ms=int(fields["close_ts"]) * 1000)
                self.meta[event.ticker] = meta
            self.refetch.add(event.ticker)
            self.counts["lifecycle"] += 1
            return
        self.counts["lifecycle"] += 1
        self.meta[event.ticker] = meta
        self.dirty.add(event.ticker)

    def on_fee_update(self, event: FeeUpdate) -> None:
        fees = self.client.fee_cache.apply_event_update(
            event.event_ticker, event.fee_type, event.fee_multiplier
        )
        self.counts["fee_updates"] += 1
        self.ctx.log.info(
            "fee_update",
            event_ticker=event.event_ticker,
            fee_type=str(event.fee_type),
            multiplier=str(event.fee_multiplier),
            applied=fees is not None,
        )
        self.refetch_event(event.event_ticker)

    def refetch_event(self, event_ticker: str) -> None:
        self.refetch.update(t for t in self.meta if self.events.get(t) == event_ticker)

    # ---- REST ---------------------------------------------------------------------------

    async def refresh(self, tickers: list[str]) -> None:
        """Every market's facts from REST: each hash is rewritten, but only a market whose
        facts changed is announced on the md stream (announcing all of them woke the strategy
        for every market at once every 30 s)."""
        unchanged: set[str] = set()
        for start in range(0, len(tickers), CHUNK):
            chunk = tickers[start : start + CHUNK]
            metas = await self._read(chunk)
            for meta in metas:
                known = self.meta.get(meta.ticker)
                meta = _keep_known_fees(known, meta)
                same = known is not None and replace(known, updated_ms=meta.updated_ms) == meta
                if same and meta.ticker not in self.dirty:
                    unchanged.add(meta.ticker)
                self.meta[meta.ticker] = meta
                self.dirty.add(meta.ticker)
        self.refetch.difference_update(tickers)
        await self.write(unannounced=unchanged)

    async def _read(self, tickers: list[str]) -> list[MarketMeta]:
        ctx = self.ctx
        try:
            infos = await self.client.get_market_infos(tickers=tickers)
        except (ExchangeError, WireError) as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning("market_refresh_failed", error=str(exc)[:300], markets=len(tickers))
            return []
        metas = []
        for info in infos:
            self.events[info.ticker] = info.event_ticker
            metas.append(await self.client.meta_of(info))
        return metas

    async def refresh_due(self, enabled: list[str]) -> None:
        """What the WebSocket asked for: every market after a lifecycle gap, else those whose
        state must be read again; then write what changed."""
        with self._busy():
            if self.refresh_all:
                self.refresh_all = False
                await self.refresh(enabled)
            elif self.refetch:
                wanted = set(enabled)
                await self.refresh(sorted(t for t in self.refetch if t in wanted))
                self.refetch.clear()
            elif self.dirty:
                await self.write()

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Facts read or written meanwhile: ``pending`` says so (the books wait)."""
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1

    async def poll_fee_changes(self, now_ms: int) -> None:
        """Scheduled series fee changes: each applied (the series read again) once it is due."""
        ctx = self.ctx
        if ctx.clock.monotonic_ms() - self.last_fee_poll_ms >= FEE_CHANGES_EVERY_MS:
            self.last_fee_poll_ms = ctx.clock.monotonic_ms()
            try:
                changes = await self.client.get_series_fee_changes()
            except (ExchangeError, WireError) as exc:
                ctx.log.warning("fee_changes_failed", error=str(exc)[:300])
                changes = []
            if self.fee_changes_known is None:
                # what came due before we started is in the fees read at start
                self.fee_changes_known = {
                    (c.series_ticker, c.scheduled_ms)
                    for c in changes
                    if c.scheduled_ms <= self.started_ms
                }
            for change in changes:
                key = (change.series_ticker, change.scheduled_ms)
                if key not in self.fee_changes_known:
                    self.fee_changes_known.add(key)
                    self.pending_fee_changes.append(change)
        due = [c for c in self.pending_fee_changes if c.scheduled_ms <= now_ms]
        if not due:
            return
        self.pending_fee_changes = [c for c in self.pending_fee_changes if c not in due]
        for change in due:
            self.client.fee_cache.forget_series(change.series_ticker)
            ctx.log.info(
                "fee_change_due",
                series=change.series_ticker,
                fee_type=change.fee_type.value,
                multiplier_pct=change.fee_multiplier_pct,
            )
            for event_ticker in self.client.fee_cache.events_of_series(change.series_ticker):
                self.refetch_event(event_ticker)

    # ---- Redis --------------------------------------------------------------------------

    async def write(self, unannounced: set[str] | None = None) -> None:
        with self._busy():
            await self._write(unannounced)

    async def _write(self, unannounced: set[str] | None) -> None:
        ctx = self.ctx
        dirty, self.dirty = self.dirty, set()
        pipe = ctx.redis.pipeline(transaction=False)
        owned: list[tuple[str, str] | None] = []  # per command: the market's hash it writes
        now = ctx.clock.now_ms()
        for ticker in dirty:
            known = self.meta.get(ticker)
            if known is None:
                continue
            pipe.hset(
                ctx.keys.market(ticker), mapping=encode_market(replace(known, updated_ms=now))
            )
            owned.append((ticker, ctx.keys.market(ticker)))
            if unannounced and ticker in unannounced:
                continue
            pipe.xadd(
                ctx.keys.stream("md", ticker),
                encode_event("market", {"ticker": ticker, "status": known.status.value}),
                maxlen=STREAM_MAXLEN["md"],
                approximate=True,
            )
            owned.append(None)
        self.dirty |= await execute_owned(ctx, pipe, owned)  # a key of the wrong type: again
        await self._tell_problems(dirty)

    async def _tell_problems(self, tickers: set[str]) -> None:
        """A market newly unquotable for a reason dora did not expect: logged and alerted
        once per reason; a market whose problem is gone is logged too."""
        new = []
        for ticker in sorted(tickers):
            meta = self.meta.get(ticker)
            problem = "" if meta is None else meta.problem or meta.fee_note
            if problem == self.problems.get(ticker, ""):
                continue
            if problem:
                self.problems[ticker] = problem
                new.append(f"{ticker}: {problem}")
                self.ctx.log.warning("market_unquotable", market=ticker, reason=problem)
            else:
                self.problems.pop(ticker, None)
                self.ctx.log.info("market_quotable_again", market=ticker)
        self.counts["unquotable"] = sum(1 for m in self.meta.values() if m.problem)
        if new:
            with contextlib.suppress(Exception):  # an alert failing must not stop the writes
                await self.alerter.alert(
                    "market_unquotable",
                    f"{len(new)} market(s) not quoted: a value dora does not know",
                    "\n".join(new[:50]),
                )


def _keep_known_fees(known: MarketMeta | None, meta: MarketMeta) -> MarketMeta:
    """Fees that could not be read this time (the exchange did not answer): keep the ones read
    before rather than stop quoting the market for a transient error."""
    if known is None or not meta.problem.startswith(FEES_UNAVAILABLE) or known.problem:
        return meta
    return replace(
        meta,
        fee_type=known.fee_type,
        fee_multiplier_pct=known.fee_multiplier_pct,
        fee_note=known.fee_note,
        problem="",
    )
