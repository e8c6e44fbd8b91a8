"""The exchange adapter: the one way every dora process talks to Kalshi (real or simulated).

- ``KalshiClient`` (client.py): REST reads and V2 writes, returning domain types.
- ``KalshiWebSocket`` (ws.py): live YES books, fills and order updates.
- ``wire``: Kalshi JSON <-> domain types, pure.
- ``signing``: RSA-PSS / Ed25519 signers and the private-key sources.
- ``ratelimit``: the account-wide token buckets in Redis.
- ``transport``: signed HTTP with safe retries.
"""

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
from common.kalshi.signing import Signer, load_signer, signer_from_pem
from common.kalshi.wire import (
    Balance,
    CancelResult,
    ExchangePosition,
    ExchangeStatus,
    MarketInfo,
    OrderGroup,
    OrderRequest,
    make_client_order_id,
)

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
    "load_signer",
    "make_client_order_id",
    "signer_from_pem",
]
