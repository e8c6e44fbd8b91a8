"""HTTP to Kalshi: keep-alive, timeouts, signing, the rate budget and retries that are safe.

A request whose bytes never left (connect error, pool timeout) is always safe to repeat, and so
is one the exchange refused with 429 (nothing was done). Other failures are retried only when
the caller says the request is idempotent (reads, cancels): a transport error after sending or a
5xx may have executed a write, so for creates the caller decides (``KalshiClient`` resends with
the same ``client_order_id`` and looks the order up). Backoff is capped exponential with jitter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from common.clock import Clock
from common.kalshi.errors import (
    ExchangeError,
    RateLimited,
    ServerError,
    TransportError,
    error_for_status,
)
from common.kalshi.exchange_clock import ExchangeClock
from common.kalshi.http import HttpResponse, LeanHTTP, NoAnswer, NotSent, RequestHook
from common.kalshi.ratelimit import NoBudget, RateBudget
from common.kalshi.signing import Signer, auth_headers
from common.kalshi.wire.error_body import parse_error_body
from common.log import get_logger

HEADERS = {"Accept": "application/json", "User-Agent": "dora/0.1"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one kind of request is retried. Requests that were certainly not executed (not
    sent, or 429) are retried by every policy within ``max_attempts``."""

    max_attempts: int = 5
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    idempotent: bool = True  # retry after an ambiguous transport error or a 5xx
    rate_limited_base_s: float = 0.25


READ_RETRY = RetryPolicy()
CANCEL_RETRY = RetryPolicy(max_attempts=6)
WRITE_RETRY = RetryPolicy(idempotent=False)


@dataclass(frozen=True, slots=True)
class Retrying:
    """A request about to be sent again: why, and the longest its remaining attempts can take
    (their connect and answer timeouts and backoffs; not rate-budget waits)."""

    method: str
    path: str
    error: ExchangeError
    attempts: int  # made so far
    max_attempts: int
    worst_s: float


RetryHook = Callable[[Retrying], None]


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    budget_wait_s: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


# A signature made ahead (``presign``) is used by a request this soon after; older, it is made
# again. Kalshi checks the timestamp against its clock (the allowed skew is not published).
PRESIGNED_FRESH_MS = 250
PRESIGNED_KEPT = 64  # signatures made ahead and not (yet) used: the stale ones go past this


class Transport:
    """Signed JSON requests to one Kalshi REST base URL."""

    def __init__(
        self,
        base_url: str,
        signer: Signer | None,
        *,
        budget: RateBudget | None = None,
        clock: Clock | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        max_connections: int = 16,
        http: LeanHTTP | None = None,
        **http_options: Any,
    ) -> None:
        """``http_options`` go to ``LeanHTTP`` (``ssl_context``, ``proxy``,
        ``keepalive_expiry_s``...); ``http`` replaces it whole (tests shape answers with one)."""
        self.base_url = base_url.rstrip("/")
        self.base_path = urlsplit(self.base_url).path
        self.signer = signer
        self.budget: RateBudget = budget or NoBudget()
        self.clock = clock or Clock()
        self.stats = TransportStats()
        self.exchange_clock = ExchangeClock(self.clock.monotonic_ms)  # from answers' Date
        self._log = get_logger("kalshi.transport")
        self.retry_hooks: list[RetryHook] = []  # told before each retry (a person waiting)
        # (method, path) -> signatures made ahead, oldest first: (when, headers)
        self._presigned: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        self.http = http or LeanHTTP(
            self.base_url,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
            headers=HEADERS,
            **http_options,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def presign(self, method: str, path: str) -> None:
        """Sign the next ``method path`` request now, so it leaves without signing when it is
        sent within ``PRESIGNED_FRESH_MS``: the executor signs while Redis answers the ledger
        step that clears the request (an RSA-2048 signature is ~0.4 ms of this box's CPU)."""
        if self.signer is None:
            return
        method, sign_path, now = method.upper(), self.base_path + path, self.clock.now_ms()
        if len(self._presigned) >= PRESIGNED_KEPT:
            self._presigned = {
                k: v for k, v in self._presigned.items() if now - v[-1][0] <= PRESIGNED_FRESH_MS
            }
        headers = auth_headers(self.signer, now, method, sign_path)
        self._presigned.setdefault((method, sign_path), []).append((now, headers))

    def _auth(self, signer: Signer, method: str, sign_path: str) -> dict[str, str]:
        """The request's auth headers: the ones made ahead for it when still fresh (each is
        used once: a retry signs again), else made now."""
        now = self.clock.now_ms()
        made = self._presigned.get((method, sign_path))
        while made:
            when, headers = made.pop(0)
            if not made:
                del self._presigned[(method, sign_path)]
            if 0 <= now - when <= PRESIGNED_FRESH_MS:
                return headers
        return auth_headers(signer, now, method, sign_path)

    def add_request_hook(self, hook: RequestHook) -> None:
        """Call ``hook(method, path)`` with each request just before it is sent (tracing)."""
        self.http.request_hooks.append(hook)

    def _backoff(self, attempt: int, policy: RetryPolicy, rate_limited: bool) -> float:
        base = policy.rate_limited_base_s if rate_limited else policy.base_delay_s
        ceiling = min(policy.max_delay_s, base * (2**attempt))
        delay: float = ceiling * (0.5 + random.random() * 0.5)
        return delay

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        bucket: str = "read",
        cost: int = 10,
        priority: bool = False,
        retry: RetryPolicy = READ_RETRY,
        signed: bool = True,
    ) -> Any:
        """Send and return the decoded JSON answer (None when empty). Raises an
        ``ExchangeError`` subclass when the request did not succeed within the policy.
        ``signed=False`` sends a public read without the auth headers (the clock probe: a
        signature made with a skewed clock would be refused)."""
        method = method.upper()
        sign_path = self.base_path + path
        content = None if body is None else orjson.dumps(body)
        query = None if not params else {k: v for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            self.stats.budget_wait_s += await self.budget.acquire(bucket, cost, priority=priority)
            headers = {"Content-Type": "application/json"} if content is not None else {}
            if self.signer is not None and signed:
                headers.update(self._auth(self.signer, method, sign_path))
            self.stats.requests += 1
            sent_ms = self.clock.now_ms()
            try:
                response = await self.http.request(
                    method, sign_path, params=query, content=content, headers=headers
                )
            except NotSent as exc:
                self.stats.transport_errors += 1
                error: ExchangeError = TransportError(
                    f"not sent: {type(exc).__name__}: {exc}", method=method, path=path
                )
                error.__cause__ = exc  # what failed, for a retry hook (a timeout or not)
                retryable = True
            except NoAnswer as exc:
                self.stats.transport_errors += 1
                error = TransportError(
                    f"no answer: {type(exc).__name__}: {exc}", method=method, path=path
                )
                error.__cause__ = exc
                retryable = retry.idempotent
            else:
                status = response.status_code
                self.exchange_clock.observe(
                    response.headers.get("date"), sent_ms, self.clock.now_ms()
                )
                self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
                if status < 300:
                    if not response.content:
                        return None
                    try:
                        return orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        raise ServerError(
                            f"answer is not JSON: {response.content[:200]!r}",
                            status=status,
                            method=method,
                            path=path,
                        ) from None
                error = self._error(response, method, path)
                if status == 429:
                    self.stats.rate_limited += 1
                    await self.budget.penalize(bucket)
                    retryable = True
                elif status >= 500:
                    self.stats.server_errors += 1
                    retryable = retry.idempotent
                else:
                    raise error
            attempt += 1
            if not retryable or attempt >= retry.max_attempts:
                raise error
            self.stats.retries += 1
            rate_limited = isinstance(error, RateLimited)
            if self.retry_hooks:
                worst_s = self._worst_s(attempt, retry, rate_limited)
                notice = Retrying(method, path, error, attempt, retry.max_attempts, worst_s)
                for hook in self.retry_hooks:
                    hook(notice)
            await asyncio.sleep(self._backoff(attempt - 1, retry, rate_limited))

    def _worst_s(self, attempts: int, policy: RetryPolicy, rate_limited: bool) -> float:
        """The longest the attempts left after ``attempts`` can take, backoffs included."""
        per_attempt = float(getattr(self.http, "connect_timeout_s", 0.0)) + float(
            getattr(self.http, "timeout_s", 0.0)
        )
        base = policy.rate_limited_base_s if rate_limited else policy.base_delay_s
        total = 0.0
        for n in range(attempts - 1, policy.max_attempts - 1):
            total += min(policy.max_delay_s, base * (2**n)) + per_attempt
        return total

    @staticmethod
    def _error(response: HttpResponse, method: str, path: str) -> ExchangeError:
        try:
            decoded: object = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            decoded = response.text
        info = parse_error_body(decoded)
        kind = error_for_status(response.status_code)
        return kind(
            info.message or response.reason_phrase or "error",
            status=response.status_code,
            code=info.code,
            details=info.details,
            method=method,
            path=path,
        )
