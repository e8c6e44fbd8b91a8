"""Request signatures made ahead, while the executor waits for Redis.

Kalshi signs ``timestamp + METHOD + path`` and not the body (API.md §2), so an order write's
signature can be made before its body is known. The executor makes the signatures of the
creates and amends it is about to send while their ledger round trip is in flight, and the
request takes them instead of signing on the hot path (an RSA-2048 signature costs about a
quarter of a millisecond of CPU, more on a busy box).

Each signature is used once, and only while fresh (``MAX_AGE_MS``): a request that finds none,
or a retry, signs anew.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_AGE_MS = 1_000  # older than this: signed again at the send
MAX_HELD = 64  # the oldest are dropped past this (a burst of passes never grows it for long)


class Presigned:
    """Auth headers made ahead, by (method, signed path), each taken at most once."""

    def __init__(self, max_age_ms: int = MAX_AGE_MS, max_held: int = MAX_HELD) -> None:
        self.max_age_ms = max_age_ms
        self.max_held = max_held
        self._held: OrderedDict[tuple[str, str], list[tuple[int, dict[str, str]]]] = OrderedDict()
        self._count = 0
        self.used = 0  # signatures taken (a request that did not sign on its hot path)

    def put(self, method: str, path: str, made_ms: int, headers: dict[str, str]) -> None:
        self._held.setdefault((method, path), []).append((made_ms, headers))
        self._count += 1
        while self._count > self.max_held:
            key, ready = next(iter(self._held.items()))
            ready.pop(0)
            self._count -= 1
            if not ready:
                del self._held[key]

    def take(self, method: str, path: str, now_ms: int) -> dict[str, str] | None:
        """Fresh headers for this request (removed: never used twice), or None."""
        ready = self._held.get((method, path))
        while ready:
            made_ms, headers = ready.pop(0)
            self._count -= 1
            if not ready:
                del self._held[(method, path)]
            if 0 <= now_ms - made_ms <= self.max_age_ms:
                self.used += 1
                return headers
        return None
