"""Token-bucket rate limits per account, as Kalshi runs them since 2026-04 (API.md §7.1).

Two buckets per account: read (GETs and everything not a write) and write (order create,
amend, decrease, cancel, batch calls, order-group calls). A request costs tokens (10 unless the
cost table says otherwise; batches cost per item) and is answered 429 when the bucket does not
hold that many; a refused request takes nothing. Refill is continuous at the tier's rate up to
its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import ConfigError

DEFAULT_COST = 10

# tier -> (read refill/s, read capacity, write refill/s, write capacity)
TIERS: dict[str, tuple[int, int, int, int]] = {
    "basic": (200, 400, 100, 100),
    "advanced": (300, 600, 300, 600),
    "expert": (600, 600, 600, 1200),
    "premier": (1000, 1000, 1000, 2000),
    "paragon": (2000, 2000, 2000, 4000),
    "prime": (4000, 4000, 4000, 8000),
    "prestige": (10000, 10000, 8000, 16000),
}
UNLIMITED = "unlimited"  # simulator only: no buckets (benchmarks of the server itself)
DEFAULT_TIER = "advanced"

# (method, route) -> (bucket, cost per item). Routes are relative to /trade-api/v2.
WRITE_COSTS: dict[tuple[str, str], int] = {
    ("POST", "/portfolio/events/orders"): 10,
    ("POST", "/portfolio/events/orders/batched"): 10,  # per item
    ("DELETE", "/portfolio/events/orders/{order_id}"): 2,
    ("DELETE", "/portfolio/events/orders/batched"): 2,  # per item
    ("DELETE", "/portfolio/events/orders"): 2,
    ("POST", "/portfolio/events/orders/{order_id}/amend"): 10,
    ("POST", "/portfolio/events/orders/{order_id}/decrease"): 10,
    ("POST", "/portfolio/order_groups/create"): 10,
    ("PUT", "/portfolio/order_groups/{order_group_id}/reset"): 10,
    ("PUT", "/portfolio/order_groups/{order_group_id}/trigger"): 10,
    ("PUT", "/portfolio/order_groups/{order_group_id}/limit"): 10,
    ("DELETE", "/portfolio/order_groups/{order_group_id}"): 10,
    # legacy V1 mutations: 10x V2 before removal; they answer "switch to V2" now
    ("POST", "/portfolio/orders"): 100,
    ("DELETE", "/portfolio/orders/{order_id}"): 20,
    ("POST", "/portfolio/orders/{order_id}/amend"): 100,
    ("POST", "/portfolio/orders/{order_id}/decrease"): 100,
    ("POST", "/portfolio/orders/batched"): 100,
    ("DELETE", "/portfolio/orders/batched"): 20,
}
READ_COSTS: dict[tuple[str, str], int] = {
    ("GET", "/portfolio/orders/{order_id}"): 2,
}
PER_ITEM = {
    ("POST", "/portfolio/events/orders/batched"),
    ("DELETE", "/portfolio/events/orders/batched"),
}


def check_tier(tier: str) -> str:
    if tier != UNLIMITED and tier not in TIERS:
        known = ", ".join([*TIERS, UNLIMITED])
        raise ConfigError(f"rate tier must be one of {known}, was {tier!r}")
    return tier


def request_cost(method: str, route: str, items: int = 1) -> tuple[str, int]:
    """(bucket name, tokens) of a request."""
    key = (method, route)
    if key in WRITE_COSTS:
        cost = WRITE_COSTS[key]
        return "write", cost * max(items, 1) if key in PER_ITEM else cost
    return "read", READ_COSTS.get(key, DEFAULT_COST)


def endpoint_costs() -> list[dict[str, object]]:
    """The non-default costs, as ``GET /account/endpoint_costs`` lists them."""
    rows = {**WRITE_COSTS, **READ_COSTS}
    return [
        {"method": method, "path": f"/trade-api/v2{route}", "cost": cost}
        for (method, route), cost in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        if cost != DEFAULT_COST
    ]


@dataclass(slots=True)
class Bucket:
    refill_per_s: int
    capacity: int
    tokens: float
    updated_s: float

    def take(self, cost: int, now_s: float) -> bool:
        elapsed = now_s - self.updated_s
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.refill_per_s)
            self.updated_s = now_s
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class RateLimiter:
    def __init__(self, tier: str = DEFAULT_TIER) -> None:
        self.tier = check_tier(tier)
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def allow(self, key_id: str, bucket: str, cost: int, now_s: float) -> bool:
        if self.tier == UNLIMITED:
            return True
        found = self._buckets.get((key_id, bucket))
        if found is None:
            refill, capacity = self.limits(bucket)
            found = Bucket(refill, capacity, float(capacity), now_s)
            self._buckets[(key_id, bucket)] = found
        return found.take(cost, now_s)

    def limits(self, bucket: str) -> tuple[int, int]:
        if self.tier == UNLIMITED:
            return 1_000_000, 1_000_000
        read_refill, read_cap, write_refill, write_cap = TIERS[self.tier]
        return (read_refill, read_cap) if bucket == "read" else (write_refill, write_cap)

    def limits_json(self) -> dict[str, object]:
        read_refill, read_cap = self.limits("read")
        write_refill, write_cap = self.limits("write")
        return {
            "usage_tier": self.tier,
            "read": {"refill_rate": read_refill, "bucket_capacity": read_cap},
            "write": {"refill_rate": write_refill, "bucket_capacity": write_cap},
            "grants": [],
        }
