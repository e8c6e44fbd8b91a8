"""Who may act: the token, the session cookie, and the checks against cross-site requests.

Reading the dashboard needs nothing (it binds to 127.0.0.1: whoever reaches the port can read).
Every control needs the token (``DORA_WEB_TOKEN``), given once (``?token=`` or the login form) and
then kept in a session cookie (HttpOnly, SameSite=Strict). The cookie holds a random session id
and its HMAC under the token, so it proves the token was given without holding it, it survives
a restart of the web process, and changing the token ends every session.

A control is a POST that must pass all of:

- the session cookie (SameSite=Strict: a browser does not send it from another site);
- a CSRF token (``X-Dora-CSRF`` header, an HMAC of the session id) that only a page of this origin
  can read, and a form from elsewhere cannot carry;
- ``Sec-Fetch-Site`` (when the browser sends it) ``same-origin``, and ``Origin`` (when sent) this
  very host: another port of 127.0.0.1 is the same *site* for cookies, never the same origin.

The token is compared in constant time (``hmac.compare_digest``) and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

SESSION_COOKIE = "dora_session"
CSRF_HEADER = "X-Dora-CSRF"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class Auth:
    def __init__(self, token: str) -> None:
        self._key = token.encode()

    @property
    def enabled(self) -> bool:
        """Without a token no session can exist: the dashboard is read-only."""
        return bool(self._key)

    def token_matches(self, given: str | None) -> bool:
        if not self._key or not given:
            return False
        return hmac.compare_digest(given.encode(), self._key)

    def _mac(self, purpose: str, session_id: str) -> str:
        return hmac.new(self._key, f"{purpose}:{session_id}".encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        """A cookie value for a browser that just gave the right token."""
        session_id = secrets.token_urlsafe(18)
        return f"{session_id}.{self._mac('session', session_id)}"

    def session_id(self, cookie: str | None) -> str | None:
        """The session id of a cookie value this token signed, else None."""
        if not self._key or not cookie:
            return None
        session_id, _, mac = cookie.partition(".")
        if not session_id or not hmac.compare_digest(mac, self._mac("session", session_id)):
            return None
        return session_id

    def csrf_token(self, session_id: str) -> str:
        return self._mac("csrf", session_id)

    def csrf_matches(self, session_id: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf_token(session_id))


def cross_site_reason(headers: Mapping[str, str], host: str) -> str | None:
    """Why a state-changing request looks cross-site (None when it does not). ``host`` is the
    request's Host header."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("Origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
        return f"cross-origin request refused (Origin: {origin})"
    return None


def host_allowed(host: str, bind_host: str) -> bool:
    """Bound to loopback, only loopback names are served: a page of another site whose name
    resolves to 127.0.0.1 (DNS rebinding) is refused. Bound elsewhere (behind a TLS proxy),
    the proxy decides which names reach it."""
    if bind_host not in LOOPBACK_NAMES:
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in LOOPBACK_NAMES
