"""The lean HTTP/1.1 client (common/kalshi/http.py) against scripted raw servers: framing,
keep-alive, which failures mean "never sent" and which "sent, no answer", and the hardening
for real HTTPS: idle expiry, stray bytes, interim answers, proxies."""

from __future__ import annotations

import asyncio

import pytest

from common.errors import ConfigError
from common.kalshi.http import (
    BadAnswer,
    ConnectFailed,
    LeanHTTP,
    NoAnswer,
    NotSent,
    PoolTimeout,
    ReadTimeout,
    encode_query,
)
from common.kalshi.http_proxy import bypassed, proxy_for
from tests.kalshi.rawhttp import Serve, Server, answer, keep_answering, read_request


async def test_keep_alive_reuses_one_connection_and_sends_what_it_is_given(serve: Serve) -> None:
    box: list[Server] = []
    srv = await serve(keep_answering(box))
    box.append(srv)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}/trade-api/v2", headers={"Accept": "x/y"})
    seen: list[tuple[str, str]] = []

    async def hook(method: str, path: str) -> None:
        seen.append((method, path))

    http.request_hooks.append(hook)
    for i in range(3):
        response = await http.request(
            "POST",
            "/trade-api/v2/orders",
            params={"limit": 5, "all": True},
            content=b'{"i":%d}' % i,
        )
        assert response.status_code == 200 and response.content == b'{"ok":true}'
    await http.aclose()
    assert srv.connections == 1
    line, headers, body = srv.requests[2].line, srv.requests[2].headers, srv.requests[2].body
    assert line == "POST /trade-api/v2/orders?limit=5&all=true HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{srv.port}" and headers["accept"] == "x/y"
    assert body == b'{"i":2}'
    assert seen == [("POST", "/trade-api/v2/orders")] * 3


async def test_chunked_close_delimited_and_empty_bodies(serve: Serve) -> None:
    replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n',
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[1,2]",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while replies:
            await read_request(reader)
            reply = replies.pop(0)
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                return

    srv = await serve(handler)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    assert (await http.request("GET", "/a")).content == b'{"a":1}'
    assert (await http.request("DELETE", "/b")).content == b""
    closing = await http.request("GET", "/c")
    assert closing.content == b"[1,2]" and closing.headers["connection"] == "close"
    assert srv.connections == 1
    await http.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(serve: Serve) -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        writer.write(answer())
        await writer.drain()  # then close without saying so (idle timeout)

    srv = await serve(one_per_connection)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    for _ in range(3):
        assert (await http.request("GET", "/x")).status_code == 200
        await asyncio.sleep(0.05)  # the FIN arrives
    assert srv.connections == 3
    await http.aclose()


async def test_nobody_listening_is_never_sent(serve: Serve) -> None:
    srv = await serve(keep_answering([]))
    port = srv.port
    assert srv.server is not None
    srv.server.close()
    await srv.server.wait_closed()
    http = LeanHTTP(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectFailed):
        await http.request("POST", "/orders", content=b"{}")


async def test_silence_after_sending_is_no_answer_and_the_socket_is_dropped(serve: Serve) -> None:
    box: list[Server] = []
    answered = asyncio.Event()

    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if not answered.is_set():
            answered.set()
            await asyncio.sleep(5)  # never answers in time
        writer.write(answer())
        await writer.drain()
        await keep_answering(box)(reader, writer)

    srv = await serve(slow_first)
    box.append(srv)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}", timeout_s=0.2)
    with pytest.raises(ReadTimeout) as info:
        await http.request("POST", "/orders", content=b"{}")
    assert isinstance(info.value, NoAnswer) and not isinstance(info.value, NotSent)
    assert (await http.request("GET", "/after")).status_code == 200
    assert srv.connections == 2  # the one that timed out was not reused
    await http.aclose()


async def test_an_answer_cut_short_is_a_protocol_error(serve: Serve) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()

    srv = await serve(cut)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    with pytest.raises(BadAnswer):
        await http.request("POST", "/orders", content=b"{}")

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()

    srv2 = await serve(garbage)
    with pytest.raises(BadAnswer):
        await LeanHTTP(f"http://127.0.0.1:{srv2.port}").request("GET", "/x")


async def test_a_full_pool_waits_then_times_out_as_never_sent(serve: Serve) -> None:
    release = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.write(answer())
        await writer.drain()

    srv = await serve(held)
    http = LeanHTTP(
        f"http://127.0.0.1:{srv.port}", max_connections=1, timeout_s=5, pool_timeout_s=0.2
    )
    first = asyncio.create_task(http.request("GET", "/first"))
    await asyncio.sleep(0.05)
    with pytest.raises(PoolTimeout):
        await http.request("GET", "/second")
    release.set()
    assert (await first).status_code == 200
    await http.aclose()


async def test_a_cancelled_request_closes_its_connection(serve: Serve) -> None:
    box: list[Server] = []
    hold = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await hold.wait()
        writer.write(answer())
        await writer.drain()
        await keep_answering(box)(reader, writer)

    srv = await serve(handler)
    box.append(srv)
    http = LeanHTTP(f"http://127.0.0.1:{srv.port}")
    task = asyncio.create_task(http.request("GET", "/slow"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hold.set()
    assert (await http.request("GET", "/next")).content == b'{"ok":true}'  # not the stale answer
    assert srv.connections == 2
    await http.aclose()


async def test_https_verifies_the_server(serve: Serve) -> None:
    box: list[Server] = []
    srv = await serve(keep_answering(box), tls=True)
    box.append(srv)
    http = LeanHTTP(srv.url, ssl_context=srv.client_ssl())
    assert (await http.request("GET", "/secure")).status_code == 200
    await http.aclose()
    with pytest.raises(ConnectFailed):  # the system trust store does not know our CA
        await LeanHTTP(srv.url).request("GET", "/secure")


def test_query_encoding_and_bad_base_urls() -> None:
    assert encode_query({"tickers": "A-1,B 2", "limit": 200, "x": False}) == (
        "tickers=A-1%2CB%202&limit=200&x=false"
    )
    for bad in ("ftp://host/", "http:///path", "host:80"):
        with pytest.raises(ValueError, match="base URL"):
            LeanHTTP(bad)


# ---- hardening for real HTTPS ---------------------------------------------------------------


async def test_an_idle_connection_is_not_reused_past_its_expiry(serve: Serve) -> None:
    box: list[Server] = []
    srv = await serve(keep_answering(box))
    box.append(srv)
    http = LeanHTTP(srv.url, keepalive_expiry_s=0.1)
    assert (await http.request("GET", "/a")).status_code == 200
    assert (await http.request("GET", "/b")).status_code == 200  # within the expiry: reused
    await asyncio.sleep(0.2)  # the server may close it any moment now: never sent on it
    assert (await http.request("GET", "/c")).status_code == 200
    assert srv.connections == 2
    await http.aclose()


async def test_the_servers_keep_alive_timeout_shortens_the_expiry(serve: Serve) -> None:
    box: list[Server] = []
    srv = await serve(keep_answering(box, answer(extra="Keep-Alive: timeout=1, max=100\r\n")))
    box.append(srv)
    http = LeanHTTP(srv.url, keepalive_expiry_s=60)
    await http.request("GET", "/a")
    await asyncio.sleep(0.05)  # 1 s - 1 s of margin: expired at once
    await http.request("GET", "/b")
    assert srv.connections == 2
    await http.aclose()


async def test_bytes_that_arrive_on_an_idle_connection_get_it_dropped(serve: Serve) -> None:
    """An idle socket holding an unsolicited answer must not serve the next request: it would
    read the stale answer as its own."""
    box: list[Server] = []

    async def then_junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        box[0].requests.append(await read_request(reader))
        writer.write(answer(b'{"n":1}'))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(answer(b'{"stale":true}'))  # nobody asked
        await writer.drain()
        await keep_answering(box, answer(b'{"n":2}'))(reader, writer)

    srv = await serve(then_junk)
    box.append(srv)
    http = LeanHTTP(srv.url)
    assert (await http.request("GET", "/a")).content == b'{"n":1}'
    await asyncio.sleep(0.1)
    second = await http.request("GET", "/b")
    assert second.content != b'{"stale":true}'
    assert srv.connections == 2
    await http.aclose()


async def test_bytes_after_a_whole_answer_get_the_connection_dropped(serve: Serve) -> None:
    box: list[Server] = []

    async def doubled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if box[0].connections == 1:
            box[0].requests.append(await read_request(reader))
            writer.write(answer(b'{"n":1}') + answer(b'{"stale":true}'))  # one packet, two answers
            await writer.drain()
        await keep_answering(box, answer(b'{"n":2}'))(reader, writer)

    srv = await serve(doubled)
    box.append(srv)
    http = LeanHTTP(srv.url)
    assert (await http.request("GET", "/a")).content == b'{"n":1}'
    assert (await http.request("GET", "/b")).content == b'{"n":2}'
    assert srv.connections == 2
    await http.aclose()


async def test_interim_1xx_answers_are_skipped(serve: Serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
            writer.write(answer(b'{"final":true}', status="201 Created"))
            await writer.drain()

    srv = await serve(handler)
    http = LeanHTTP(srv.url)
    for _ in range(2):
        response = await http.request("POST", "/orders", content=b"{}")
        assert response.status_code == 201 and response.content == b'{"final":true}'
    assert srv.connections == 1
    await http.aclose()


async def test_an_unasked_protocol_switch_is_a_bad_answer(serve: Serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    srv = await serve(handler)
    with pytest.raises(BadAnswer, match="101"):
        await LeanHTTP(srv.url).request("GET", "/x")


async def proxy_server(serve: Serve, seen: list[bytes]) -> Server:
    """A CONNECT proxy: tunnels to the 127.0.0.1 port it is asked for."""

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        port = int(head.split(b" ")[1].rsplit(b":", 1)[1])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await serve(tunnel)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_a_proxy_from_the_environment_is_used_through_connect(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, tls: bool
) -> None:
    box: list[Server] = []
    origin = await serve(keep_answering(box), tls=tls)
    box.append(origin)
    seen: list[bytes] = []
    proxy = await proxy_server(serve, seen)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    variable = "HTTPS_PROXY" if tls else "HTTP_PROXY"
    monkeypatch.setenv(variable, f"http://user:p%40ss@127.0.0.1:{proxy.port}")
    http = LeanHTTP(origin.url, ssl_context=origin.client_ssl())
    for _ in range(2):
        assert (await http.request("GET", "/through")).status_code == 200
    await http.aclose()
    assert proxy.connections == 1 and len(origin.requests) == 2
    assert seen[0].startswith(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in seen[0]  # user:p@ss


async def test_a_proxy_that_refuses_the_tunnel_is_never_sent(serve: Serve) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    proxy = await serve(refuse)
    http = LeanHTTP("https://exchange.test", proxy=f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(ConnectFailed, match="407"):
        await http.request("POST", "/orders", content=b"{}")


def test_proxies_that_cannot_be_spoken_to_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://u:secret@proxy.corp:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ConfigError, match=r"only http:// proxies") as info:
        LeanHTTP("https://api.elections.kalshi.com/trade-api/v2")
    assert "secret" not in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("NO_PROXY", "localhost,.kalshi.com")
    assert LeanHTTP("https://api.elections.kalshi.com/trade-api/v2").proxy is None


def test_no_proxy_matching() -> None:
    assert bypassed("api.kalshi.com", 443, "kalshi.com")
    assert bypassed("api.kalshi.com", 443, " .KALSHI.com ,x")
    assert bypassed("anything", 1, "*")
    assert bypassed("127.0.0.1", 8080, "127.0.0.1:8080")
    assert not bypassed("127.0.0.1", 8081, "127.0.0.1:8080")
    assert not bypassed("evilkalshi.com", 443, "kalshi.com")
    assert proxy_for("https", "h", 443, "") is None
    assert proxy_for("https", "h", 443, "proxy:3128") is not None  # no scheme: http://
    assert "secret" not in repr(proxy_for("https", "h", 443, "http://u:secret@p:1"))
