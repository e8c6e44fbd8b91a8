"""Every Redis key, stream and channel dora uses (DESIGN.md §3): the names, and nothing else.

All keys live under one prefix (default ``dora:``) and are built here, by ``Keys``; no other module
formats a key. How each value is encoded is in ``common.redis_codec`` (hashes and strings) and
``common.messages`` (stream entries, control messages). docs/redis.md shows them to operators.
"""

from __future__ import annotations

STREAMS = ("md", "fills", "targets", "orders", "decisions", "pnl")
# the processes that keep a heartbeat (``hb(service)``)
SERVICES = ("marketdata", "fills", "strategy", "executor", "risk", "persister", "web")


class Keys:
    """Key names under one prefix (default ``dora:``)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "dora:") -> None:
        self.prefix = prefix

    def book(self, ticker: str) -> str:
        return f"{self.prefix}book:{ticker}"

    def market(self, ticker: str) -> str:
        return f"{self.prefix}market:{ticker}"

    def pos(self, ticker: str) -> str:
        return f"{self.prefix}pos:{ticker}"

    def orders(self, ticker: str) -> str:
        return f"{self.prefix}orders:{ticker}"

    def targets(self, ticker: str) -> str:
        return f"{self.prefix}targets:{ticker}"

    def fv(self, ticker: str) -> str:
        """Hash: an external fair value from the trader's own model (``price``, ``ts_ms``,
        optional ``confidence``); the strategy ignores it once ``DORA_FV_STALE_MS`` old."""
        return f"{self.prefix}fv:{ticker}"

    @property
    def cfg_global(self) -> str:
        return f"{self.prefix}cfg:global"

    def cfg_market(self, ticker: str) -> str:
        return f"{self.prefix}cfg:market:{ticker}"

    @property
    def cfg_markets(self) -> str:
        """Set of every ticker that has a market config (enabled or not)."""
        return f"{self.prefix}cfg:markets"

    @property
    def cfg_events(self) -> str:
        """Hash: event ticker -> its ``max_event_loss`` override (dollars), and ``version``."""
        return f"{self.prefix}cfg:events"

    @property
    def cfg_invalid(self) -> str:
        """Hash: ticker (or ``(global)``) -> why its item in DynamoDB does not validate."""
        return f"{self.prefix}cfg:invalid"

    @property
    def persister_lag(self) -> str:
        """JSON: per persisted stream, entries not yet acknowledged by the persister."""
        return f"{self.prefix}persister:lag"

    @property
    def risk(self) -> str:
        return f"{self.prefix}risk"

    @property
    def exchange(self) -> str:
        """Hash: the exchange's own state (trading active or paused, the next pause), written
        by marketdata's calendar (``common.calendar``); the executor, ``dora status`` and the
        dashboard read it."""
        return f"{self.prefix}exchange"

    @property
    def marks(self) -> str:
        """Hash: ticker -> the mark its open position was last valued at by the risk check."""
        return f"{self.prefix}marks"

    def hb(self, service: str) -> str:
        return f"{self.prefix}hb:{service}"

    def stream(self, name: str) -> str:
        if name not in STREAMS:
            raise ValueError(f"unknown stream {name!r}; known: {', '.join(STREAMS)}")
        return f"{self.prefix}stream:{name}"

    @property
    def control(self) -> str:
        return f"{self.prefix}control"

    @property
    def fill_ids(self) -> str:
        """Set of fill ids already applied to positions (dedupe across WS, REST and restarts)."""
        return f"{self.prefix}fills:seen"

    @property
    def fills_meta(self) -> str:
        """Hash: last fill time and backfill progress of the fills process."""
        return f"{self.prefix}fills:meta"

    def ratelimit(self, bucket: str) -> str:
        return f"{self.prefix}ratelimit:{bucket}"

    @property
    def order_groups(self) -> str:
        """Hash: market ticker -> the Kalshi order group id the executor uses for it."""
        return f"{self.prefix}groups"

    def fee_rounding(self, ticker: str) -> str:
        """Hash: order id -> its fee-rounding accumulator (money), for the market's orders."""
        return f"{self.prefix}feeacc:{ticker}"

    @property
    def restored(self) -> str:
        """Set when the persisted state was put back into an empty Redis (restore marker)."""
        return f"{self.prefix}restored"

    @property
    def positions_synced(self) -> str:
        """JSON: when fills last set positions from the exchange, and after which restore."""
        return f"{self.prefix}positions:synced"

    @property
    def ledger(self) -> str:
        """Hash: the account-wide exposure ledger (``common.ledger``): per market its position's
        exposure and each side's resting worst case, their ``total``; one key, one slot."""
        return f"{self.prefix}ledger"

    def lease(self, name: str) -> str:
        """String with a TTL: which executor holds shard ``name`` (``token:owner``)."""
        return f"{self.prefix}lease:{name}"

    @property
    def lease_fence(self) -> str:
        """Counter: the last fencing token handed out with a lease (``INCR``)."""
        return f"{self.prefix}lease:fence"

    @property
    def persister_parked(self) -> str:
        """Hash: DynamoDB item key -> why the persister could not write it (parked, alerted)."""
        return f"{self.prefix}persister:parked"

    @property
    def trace_samples(self) -> str:
        """List: tick-to-order latency samples, comma-joined stamps (common/trace.py)."""
        return f"{self.prefix}trace:tick_to_order_us"

    def pattern(self, kind: str) -> str:
        """SCAN pattern for one kind of per-market key (``book``, ``pos``, ...)."""
        return f"{self.prefix}{kind}:*"

    def ticker_of(self, key: str, kind: str) -> str:
        return key[len(self.prefix) + len(kind) + 1 :]
