"""KalshiClient: the one way every dora process talks to Kalshi's REST API (real or simulated).

It speaks dora's domain types (``Order``, ``Fill``, ``YesBook``, ``MarketMeta``) and hides the
wire. This module holds the exchange, market and portfolio reads; our orders and the V2 writes
are in ``order_entry`` (with the create policy of ``create_policy``), fees in ``fee_cache``.
Build one with ``KalshiClient.create`` from plain values; ``common.connect`` builds it from the
settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from common.book import YesBook
from common.calendar import ExchangeSchedule
from common.clock import Clock
from common.domain import Fill, MarketMeta, Settlement
from common.errors import WireError
from common.fees import FeeType
from common.kalshi.errors import ExchangeError
from common.kalshi.fee_cache import FEES_UNAVAILABLE, FeeCache, Fees
from common.kalshi.order_entry import OrderEntry
from common.kalshi.ratelimit import RateBudget
from common.kalshi.rest import PAGE_LIMIT
from common.kalshi.signing import Signer
from common.kalshi.transport import Transport
from common.kalshi.wire.calendar import parse_exchange_schedule
from common.kalshi.wire.listing import Skipped
from common.kalshi.wire.markets import (
    ExchangeStatus,
    FeeChange,
    MarketInfo,
    parse_exchange_status,
    parse_fee_changes,
    parse_market_response,
    parse_markets_page,
    parse_orderbook,
)
from common.kalshi.wire.portfolio import (
    Balance,
    ExchangePosition,
    parse_balance,
    parse_fills_page,
    parse_positions_page,
    parse_settlements_page,
)


class KalshiClient(OrderEntry):
    """Async Kalshi REST client over one ``Transport``."""

    @cached_property
    def fee_cache(self) -> FeeCache:
        return FeeCache(self._get)

    @classmethod
    def create(
        cls,
        base_url: str,
        signer: Signer | None,
        *,
        budget: RateBudget | None = None,
        clock: Clock | None = None,
        subaccount: int = 0,
        **transport_options: Any,
    ) -> KalshiClient:
        transport = Transport(base_url, signer, budget=budget, clock=clock, **transport_options)
        return cls(transport, clock=clock, subaccount=subaccount)

    # ---- exchange and markets --------------------------------------------------------------

    async def get_exchange_status(self) -> ExchangeStatus:
        return parse_exchange_status(await self._get("/exchange/status"))

    async def measure_clock_skew(self) -> int:
        """The local clock minus the exchange's, in ms, measured now by a public read sent
        unsigned (a signature made with a skewed clock would be refused): from its ``Date``."""
        await self.transport.request("GET", "/exchange/status", signed=False)
        skew = self.transport.exchange_clock.skew_ms
        if skew is None:
            raise WireError("the exchange's answer has no Date header: cannot measure the skew")
        return skew

    def exchange_now_ms(self) -> int | None:
        """The exchange's time now as its last answer's ``Date`` says (never ahead of it), or
        None before any answer."""
        return self.transport.exchange_clock.now_ms()

    async def get_order_book(self, ticker: str, depth: int | None = None) -> YesBook:
        params = {"depth": depth} if depth else None
        return parse_orderbook(await self._get(f"/markets/{ticker}/orderbook", params))

    async def get_market_info(self, ticker: str) -> MarketInfo:
        return parse_market_response(await self._get(f"/markets/{ticker}"))

    async def get_market_infos(
        self,
        *,
        tickers: Sequence[str] | None = None,
        event_ticker: str | None = None,
        series_ticker: str | None = None,
        status: str | None = None,
    ) -> list[MarketInfo]:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if tickers:
            params["tickers"] = ",".join(tickers)
        if event_ticker:
            params["event_ticker"] = event_ticker
        if series_ticker:
            params["series_ticker"] = series_ticker
        if status:
            params["status"] = status
        return await self._paginate("/markets", params, parse_markets_page)

    async def get_market(self, ticker: str) -> MarketMeta:
        """Tick grid, status, close time and fee type/multiplier of one market."""
        info = await self.get_market_info(ticker)
        return await self.meta_of(info)

    async def get_markets(
        self,
        *,
        tickers: Sequence[str] | None = None,
        event_ticker: str | None = None,
        series_ticker: str | None = None,
        status: str | None = None,
    ) -> list[MarketMeta]:
        infos = await self.get_market_infos(
            tickers=tickers, event_ticker=event_ticker, series_ticker=series_ticker, status=status
        )
        return [await self.meta_of(info) for info in infos]

    async def meta_of(self, info: MarketInfo) -> MarketMeta:
        """A market's facts with its event's fees (what cannot be read is its ``problem``)."""
        try:
            fees = await self.get_fees(info.event_ticker)
        except ExchangeError as exc:  # this event's fees only; asked again at the next read
            fees = Fees(FeeType.UNKNOWN, 100, problem=f"{FEES_UNAVAILABLE}: {exc}"[:300])
        return info.to_meta(
            fees.fee_type,
            fees.multiplier_pct,
            self.clock.now_ms(),
            fee_problem=fees.problem,
            fee_note=fees.note,
            mutually_exclusive=self.fee_cache.mutually_exclusive(info.event_ticker),
        )

    async def get_fees(self, event_ticker: str) -> Fees:
        """The fees of an event's markets: its override, else its series'. Cached per event
        and series; a missing event or series means the default schedule; unreadable fees come
        back with a ``problem`` (that event's markets only)."""
        return await self.fee_cache.fees(event_ticker)

    async def get_series_fee_changes(self) -> list[FeeChange]:
        """Announced fee changes per series (``GET /series/fee_changes``), past ones included
        (a change that came due between two polls is not missed), oldest first."""
        params = {"show_historical": "true"}
        changes = parse_fee_changes(await self._get("/series/fee_changes", params))
        return sorted(changes, key=lambda c: (c.scheduled_ms, c.series_ticker))

    async def get_exchange_schedule(self) -> ExchangeSchedule:
        return parse_exchange_schedule(await self._get("/exchange/schedule"))

    # ---- portfolio -------------------------------------------------------------------------

    # Every portfolio read is of this client's subaccount; an item of a listing that does not
    # parse is logged and set aside (``skipped`` says which), never failing the whole listing.

    async def get_balance(self, exchange_index: int | None = None) -> Balance:
        """Available cash of the subaccount: of every shard, or of one (collateral is per shard:
        an order on a shard can only use that shard's cash)."""
        params: dict[str, Any] = {"subaccount": self.subaccount}
        if exchange_index is not None:
            params["exchange_index"] = exchange_index
        return parse_balance(await self._get("/portfolio/balance", params))

    async def get_positions(
        self, ticker: str | None = None, *, skipped: list[Skipped] | None = None
    ) -> list[ExchangePosition]:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if ticker:
            params["ticker"] = ticker
        return await self._listing("/portfolio/positions", params, parse_positions_page, skipped)

    async def get_fills(
        self,
        since_ms: int | None = None,
        *,
        ticker: str | None = None,
        order_id: str | None = None,
        skipped: list[Skipped] | None = None,
    ) -> list[Fill]:
        """Fills at or after ``since_ms``, oldest first. The exchange filters by whole seconds,
        so fills of the second of ``since_ms`` come again: dedupe by ``fill_id``."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if since_ms is not None:
            params["min_ts"] = max(0, since_ms // 1000)
        if ticker:
            params["ticker"] = ticker
        if order_id:
            params["order_id"] = order_id
        fills = await self._listing("/portfolio/fills", params, parse_fills_page, skipped)
        fills.sort(key=lambda f: (f.ts_ms, f.fill_id))
        return fills

    async def get_settlements(
        self, since_ms: int | None = None, *, skipped: list[Skipped] | None = None
    ) -> list[Settlement]:
        """Markets that paid out at or after ``since_ms`` (whole seconds: dedupe), oldest first."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if since_ms is not None:
            params["min_ts"] = max(0, since_ms // 1000)
        items = await self._listing(
            "/portfolio/settlements", params, parse_settlements_page, skipped
        )
        items.sort(key=lambda s: (s.settled_ms, s.ticker))
        return items
