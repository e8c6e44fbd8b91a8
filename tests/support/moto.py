"""DynamoDB for tests: a moto server on a free port (stoppable, for outages) and a fixture that
runs a test against both in-process moto (``mock_aws``) and the server.

Import the fixtures into a conftest or a test module::

    from tests.support.moto import dynamo_backend, moto_server  # noqa: F401

Never mix the two in one test: ``mock_aws`` resets moto's (process-wide) state when it starts.
"""

from __future__ import annotations

import contextlib
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from moto.server import ThreadedMotoServer

from common.dynamo import Dynamo
from common.dynamo.tables import TableNames, create_tables, make_client
from common.settings import Settings, load_settings
from tests.support.procs import _port_open, free_port, wait_for

logging.getLogger("werkzeug").setLevel(logging.ERROR)


class MotoServer:
    """moto's DynamoDB as an HTTP server in this process. Its data lives in the process, so
    ``stop()`` then ``start()`` on the same port is an outage that loses nothing."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> MotoServer:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_for(lambda: _port_open(self.port), 10, "the moto server")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            with contextlib.suppress(Exception):
                self._server._server.server_close()  # type: ignore[union-attr]
            self._server = None

    def reset(self) -> None:
        """Forget every table (between tests)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@dataclass
class Backend:
    """Where a test's DynamoDB is: ``inprocess`` (mock_aws) or ``server`` (the moto server)."""

    kind: str
    endpoint: str = ""
    table_prefix: str = "dora_"
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, **values: str) -> Settings:
        environ = {**self.env, **{f"DORA_{k.upper()}": v for k, v in values.items()}}
        return load_settings(environ, read_file=False)

    def dynamo(self) -> Dynamo:
        return Dynamo.from_settings(self.settings())

    def create_tables(self) -> TableNames:
        names = TableNames.from_prefix(self.table_prefix)
        create_tables(make_client(self.settings()), names)
        return names


@pytest.fixture(params=["inprocess", "server"])
def dynamo_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "inprocess":
        from moto import mock_aws

        with mock_aws():
            yield Backend("inprocess", env={"DORA_TABLE_PREFIX": "dora_"})
        return
    server: MotoServer = request.getfixturevalue("moto_server")
    server.reset()
    yield Backend(
        "server",
        server.endpoint,
        env={"DORA_DYNAMODB_ENDPOINT": server.endpoint, "DORA_TABLE_PREFIX": "dora_"},
    )


@pytest.fixture
def moto_endpoint(moto_server: MotoServer) -> str:
    """The session moto server, emptied for this test."""
    moto_server.reset()
    return moto_server.endpoint
