"""The exchange's clock, as the ``Date`` header of its answers tells it (issue 19.7).

Requests are signed with the local clock, and fills carry the exchange's timestamps: both go
wrong when the two clocks differ. Every answer's ``Date`` (RFC 7231, whole seconds) is recorded:

- ``now_ms()``: the exchange's time now, from the last ``Date`` plus the local monotonic time
  since it came. ``Date`` is the second the answer was made, rounded down, so this never runs
  ahead of the exchange: a safe cursor for "everything before this has been listed".
- ``skew_ms``: the local clock minus the exchange's, from the last answer (its ``Date`` taken at
  the middle of its second, against the middle of the request's round trip): accurate to about
  half a second plus half the round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime


def parse_http_date(value: str) -> int | None:
    """An HTTP ``Date`` header as Unix milliseconds, or None when it does not parse."""
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class ExchangeClock:
    def __init__(self, monotonic_ms: Callable[[], float] | None = None) -> None:
        self._monotonic_ms = monotonic_ms or (lambda: time.monotonic() * 1000.0)
        self.date_ms: int | None = None  # the last Date seen
        self._header = ""
        self._header_ms: int | None = None
        self._seen_at_mono = 0.0
        self.skew_ms: int | None = None
        self.measured_at_ms = 0  # local wall time of the last measurement

    def observe(self, date_header: str | None, sent_ms: int, received_ms: int) -> None:
        """One answer's ``Date``, with the local wall times the request left and the answer
        came back."""
        if not date_header:
            return
        if date_header != self._header:  # a new second (the same one is not parsed again)
            self._header, self._header_ms = date_header, parse_http_date(date_header)
        date_ms = self._header_ms
        if date_ms is None:
            return
        self.date_ms = date_ms
        self._seen_at_mono = self._monotonic_ms()
        self.skew_ms = (sent_ms + received_ms) // 2 - (date_ms + 500)
        self.measured_at_ms = received_ms

    def now_ms(self) -> int | None:
        """The exchange's time now (never ahead of it), or None before any answer."""
        if self.date_ms is None:
            return None
        return self.date_ms + int(self._monotonic_ms() - self._seen_at_mono)
