"""Which HTTP proxy (if any) the REST client goes through, read once at start.

The environment is read as curl and Python's ``urllib`` read it: ``HTTPS_PROXY`` for https
origins, ``HTTP_PROXY`` for http ones, ``ALL_PROXY`` for both, ``NO_PROXY`` for the hosts that go
direct (lower-case names too). Only ``http://`` proxies are spoken to, through ``CONNECT``; any
other scheme (``socks5://``, ``https://``) is refused with one line at start rather than silently
ignored.
"""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from common.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = None  # "Basic ..." from user:password in the proxy URL

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def connect_request(self, host: str, port: int) -> bytes:
        lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
        if self.authorization:
            lines.append(f"Proxy-Authorization: {self.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def __repr__(self) -> str:  # never the credentials
        return f"Proxy({self.host}:{self.port})"


def proxy_for(scheme: str, host: str, port: int, configured: str | None = None) -> Proxy | None:
    """The proxy for ``scheme://host:port``: ``configured`` ("" for none), else the
    environment's; None when the origin goes direct."""
    if configured is None:
        proxies = urllib.request.getproxies_environment()
        url = proxies.get(scheme) or proxies.get("all") or ""
        if url and bypassed(host, port, proxies.get("no", "")):
            url = ""
    else:
        url = configured
    if not url:
        return None
    return parse_proxy_url(url, scheme)


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` sends ``host:port`` direct: ``*``, the host, a parent domain
    (``example.com`` or ``.example.com``), each optionally with ``:port``."""
    host = host.lower()
    for entry in no_proxy.replace(" ", "").lower().split(","):
        if entry == "*":
            return True
        name, _, entry_port = entry.partition(":")
        name = name.lstrip(".")
        if not name or (entry_port and entry_port != str(port)):
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def parse_proxy_url(url: str, for_scheme: str) -> Proxy:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    where = f"the {for_scheme} proxy {parts.hostname or url.split('@')[-1]!r}"
    if parts.scheme != "http":
        raise ConfigError(
            f"{where} is {parts.scheme}://: only http:// proxies (CONNECT) are supported; "
            "unset it or list the exchange's host in NO_PROXY"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigError(f"{where} has a bad port") from None
    if not parts.hostname:
        raise ConfigError(f"the {for_scheme} proxy URL has no host")
    authorization = None
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(secret.encode()).decode()
    return Proxy(parts.hostname, port, authorization)
