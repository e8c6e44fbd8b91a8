"""Every Redis key, stream and channel dora uses (DESIGN.md §3): the names, and nothing else.

All keys live under one prefix (default ``dora:``) and are built here, by ``Keys``; no other module
formats a key. How each value is encoded is in ``common.redis_codec`` (hashes and strings) and
``common.messages`` (stream entries, control messages). docs/redis.md shows them to operators.
"""

from __future__ import annotations

from common.sharding import SHARDED_SERVICES, instance_names, shard_of

STREAMS = ("md", "fills", "targets", "orders", "decisions", "pnl")
# Redis Cluster (DESIGN.md §7, docs/redis.md): with ``cluster=True`` each key carries a hash tag
# so that every MULTI, Lua script and stream-plus-hash write stays in one slot. A market's quoting
# keys and its shard's streams share the shard's tag ``{gN}``; the account's ledger (positions,
# fill ids, the fills and pnl streams, risk, config) shares ``{acct}``; single-key pieces (the rate
# budget, heartbeats, order groups, ...) keep their plain names, each in its own slot. With the
# default even split of three masters, ``{g0}``, ``{g1}``, ``{g2}`` and ``{acct}`` land on three
# different masters. Without ``cluster`` every name is the plain single-Redis one.
SHARD_TAG = "g"
ACCOUNT_TAG = "{acct}:"
SHARDED_STREAMS = ("md", "targets", "orders", "decisions")
# the processes that keep a heartbeat (``hb(service)``)
SERVICES = ("marketdata", "fills", "strategy", "executor", "risk", "persister", "web")
__all__ = ["SERVICES", "SHARDED_SERVICES", "STREAMS", "Keys"]


class Keys:
    """Key names under one prefix (default ``dora:``)."""

    __slots__ = ("acct", "cluster", "prefix", "shard_count", "shard_index")

    def __init__(
        self,
        prefix: str = "dora:",
        *,
        cluster: bool = False,
        shard_count: int = 1,
        shard_index: int = 0,
    ) -> None:
        self.prefix = prefix
        self.cluster = cluster
        self.shard_count = max(1, shard_count)
        self.shard_index = shard_index
        self.acct = f"{prefix}{ACCOUNT_TAG}" if cluster else prefix  # the account's slot

    def shard_prefix(self, shard: int) -> str:
        """The prefix of one market shard's keys: ``dora:{g1}:`` in cluster mode."""
        return f"{self.prefix}{{{SHARD_TAG}{shard}}}:" if self.cluster else self.prefix

    def _m(self, ticker: str) -> str:
        if not self.cluster:
            return self.prefix
        return self.shard_prefix(shard_of(ticker, self.shard_count))

    def book(self, ticker: str) -> str:
        return f"{self._m(ticker)}book:{ticker}"

    def market(self, ticker: str) -> str:
        return f"{self._m(ticker)}market:{ticker}"

    def pos(self, ticker: str) -> str:
        return f"{self.acct}pos:{ticker}"

    def orders(self, ticker: str) -> str:
        return f"{self._m(ticker)}orders:{ticker}"

    def targets(self, ticker: str) -> str:
        return f"{self._m(ticker)}targets:{ticker}"

    def fv(self, ticker: str) -> str:
        """Hash: an external fair value from the trader's own model (``price``, ``ts_ms``,
        optional ``confidence``); the strategy ignores it once ``DORA_FV_STALE_MS`` old."""
        return f"{self.prefix}fv:{ticker}"

    @property
    def cfg_global(self) -> str:
        return f"{self.acct}cfg:global"

    def cfg_market(self, ticker: str) -> str:
        return f"{self.acct}cfg:market:{ticker}"

    @property
    def cfg_markets(self) -> str:
        """Set of every ticker that has a market config (enabled or not)."""
        return f"{self.acct}cfg:markets"

    @property
    def cfg_events(self) -> str:
        """Hash: event ticker -> its ``max_event_loss`` override (dollars), and ``version``."""
        return f"{self.prefix}cfg:events"

    @property
    def cfg_invalid(self) -> str:
        """Hash: ticker (or ``(global)``) -> why its item in DynamoDB does not validate."""
        return f"{self.acct}cfg:invalid"

    @property
    def persister_lag(self) -> str:
        """JSON: per persisted stream, entries not yet acknowledged by the persister."""
        return f"{self.prefix}persister:lag"

    @property
    def risk(self) -> str:
        return f"{self.acct}risk"

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

    def hb_all(self, service: str) -> list[str]:
        """The heartbeats of every instance of ``service`` (``common.sharding.instance_names``):
        one per shard for the sharded strategy and executor (``hb:executor-0``, ...)."""
        return [self.hb(name) for name in instance_names(service, self.shard_count)]

    def stream(self, name: str, ticker: str | None = None) -> str:
        """A stream's key. In cluster mode ``md``, ``targets``, ``orders`` and ``decisions`` are
        per shard: the ticker's shard's, or without a ticker this process's own shard's."""
        if name not in STREAMS:
            raise ValueError(f"unknown stream {name!r}; known: {', '.join(STREAMS)}")
        if not self.cluster:
            return f"{self.prefix}stream:{name}"
        if name not in SHARDED_STREAMS:
            return f"{self.acct}stream:{name}"
        shard = self.shard_index if ticker is None else shard_of(ticker, self.shard_count)
        return f"{self.shard_prefix(shard)}stream:{name}"

    def streams(self, name: str) -> list[str]:
        """Every shard's key of one stream (one key without cluster mode)."""
        if not self.cluster or name not in SHARDED_STREAMS:
            return [self.stream(name)]
        return [f"{self.shard_prefix(i)}stream:{name}" for i in range(self.shard_count)]

    def stream_name(self, key: str) -> str:
        """The stream's name (``md``, ``fills``...) from any of its keys."""
        return key.rsplit(":", 1)[-1]

    @property
    def control(self) -> str:
        return f"{self.prefix}control"

    @property
    def fill_ids(self) -> str:
        """Set of fill ids already applied to positions (dedupe across WS, REST and restarts)."""
        return f"{self.acct}fills:seen"

    @property
    def fills_meta(self) -> str:
        """Hash: last fill time and backfill progress of the fills process."""
        return f"{self.acct}fills:meta"

    def ratelimit(self, bucket: str) -> str:
        return f"{self.prefix}ratelimit:{bucket}"

    @property
    def order_groups(self) -> str:
        """Hash: market ticker -> the Kalshi order group id the executor uses for it."""
        return f"{self.prefix}groups"

    def fee_rounding(self, ticker: str) -> str:
        """Hash: order id -> its fee-rounding accumulator (money), for the market's orders."""
        return f"{self.acct}feeacc:{ticker}"

    @property
    def restored(self) -> str:
        """Set when the persisted state was put back into an empty Redis (restore marker)."""
        return f"{self.acct}restored"

    @property
    def positions_synced(self) -> str:
        """JSON: when fills last set positions from the exchange, and after which restore."""
        return f"{self.acct}positions:synced"

    @property
    def ledger(self) -> str:
        """Hash: the account-wide exposure ledger (``common.ledger``): per market its position's
        exposure and each side's resting worst case, their ``total``; one key, one slot (the
        account's ``{acct}`` in cluster mode)."""
        return f"{self.acct}ledger"

    def ledger_event(self, event: str) -> str:
        """Sorted set: per market of ``event``, its loss if YES less its loss if NO, as the
        ledger holds them (``common.ledger_scripts``): a mutually exclusive event's worst in one
        lookup. In the ledger's slot."""
        return f"{self.acct}ledger:ev:{event}"

    def lease(self, name: str) -> str:
        """String with a TTL: which executor holds shard ``name`` (``token:owner``). In cluster
        mode in this process's shard's slot, beside the book, market and order keys of the
        shard's markets that the ledger's shard step checks with it."""
        return f"{self.shard_prefix(self.shard_index)}lease:{name}"

    @property
    def lease_layout(self) -> str:
        """String with a TTL: the shard count of the executors that hold leases now, renewed
        by each of them; an executor configured with another count waits (its shards would
        overlap theirs). Its own slot in cluster mode."""
        return f"{self.prefix}lease:layout"

    @property
    def lease_fence(self) -> str:
        """Counter: the last fencing token handed out with a lease (``INCR``); in cluster mode
        one per shard, in the lease's slot (the lease's script takes both)."""
        return f"{self.shard_prefix(self.shard_index)}lease:fence"

    @property
    def persister_parked(self) -> str:
        """Hash: DynamoDB item key -> why the persister could not write it (parked, alerted)."""
        return f"{self.prefix}persister:parked"

    @property
    def trace_samples(self) -> str:
        """List: tick-to-order latency samples, comma-joined stamps (common/trace.py)."""
        return f"{self.prefix}trace:tick_to_order_us"

    def pattern(self, kind: str) -> str:
        """SCAN pattern for one kind of per-market key (``book``, ``pos``, ...); in cluster mode
        SCAN runs on every master and the pattern covers every shard's tag."""
        if not self.cluster or kind in ("hb", "ratelimit"):
            return f"{self.prefix}{kind}:*"
        if kind in ("pos", "feeacc"):
            return f"{self.acct}{kind}:*"
        return f"{self.prefix}{{{SHARD_TAG}*}}:{kind}:*"

    def ticker_of(self, key: str, kind: str) -> str:
        return key[key.index(f"{kind}:", len(self.prefix)) + len(kind) + 1 :]
