"""The exchange adapter: the one way every dora process talks to Kalshi (real or simulated).

- ``KalshiClient`` (client.py, order_entry.py): REST reads and V2 writes, returning domain
  types; ``create_policy``: what a create does when its answer is lost; ``fee_cache``.
- ``KalshiWebSocket`` (ws.py): live YES books, fills and order updates.
- ``wire``: Kalshi JSON <-> domain types, pure, one module per topic.
- ``signing``: RSA-PSS / Ed25519 signers.
- ``ratelimit``: the account-wide token buckets in Redis.
- ``transport``: signed requests with safe retries over ``http`` (HTTP/1.1 keep-alive).

It takes plain values (base URL, signer, Redis key names, tier) and imports nothing of the
settings or the Redis schema: ``common.connect`` builds a client from those.
"""

from common.domain import make_client_order_id
from common.kalshi.client import KalshiClient
from common.kalshi.errors import (
    AuthError,
    Conflict,
    ExchangeError,
    NotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TransportError,
)
from common.kalshi.ratelimit import LocalRateBudget, RateBudget, RedisRateBudget
from common.kalshi.signing import Signer, signer_from_pem
from common.kalshi.wire.markets import ExchangeStatus, MarketInfo
from common.kalshi.wire.order_changes import CancelResult
from common.kalshi.wire.orders import OrderRequest
from common.kalshi.wire.portfolio import Balance, ExchangePosition, OrderGroup

__all__ = [
    "AuthError",
    "Balance",
    "CancelResult",
    "Conflict",
    "ExchangeError",
    "ExchangePosition",
    "ExchangeStatus",
    "KalshiClient",
    "LocalRateBudget",
    "MarketInfo",
    "NotFound",
    "OrderGroup",
    "OrderRejected",
    "OrderRequest",
    "OutcomeUnknown",
    "RateBudget",
    "RateLimited",
    "RedisRateBudget",
    "ServerError",
    "Signer",
    "TransportError",
    "make_client_order_id",
    "signer_from_pem",
]
