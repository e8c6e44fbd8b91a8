"""Redis with a password, an ACL user and TLS, configured only through ``DORA_REDIS_URL`` (and
``DORA_REDIS_CA_CERT`` for TLS), as ElastiCache needs. ``dora halt`` stands for every process:
they all connect through ``common.redis_conn.connect_redis``. A wrong password is one line,
exit 2, and the password is never printed."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.procs import free_port, run_dora, wait_for

PASSWORD = "s3cret-redis-pass-7f2a"
ACL_PASSWORD = "acl-user-pass-91c3"


def redis_server(tmp: Path, *args: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    log = open(tmp / "redis.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def dora(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_dora(*args, env=env)


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("redis-auth")
    port = free_port()
    proc = redis_server(tmp, "--port", str(port), "--requirepass", PASSWORD)
    try:
        wait_for(lambda: _ping(f"redis://:{PASSWORD}@127.0.0.1:{port}/0"), 10, "redis with AUTH")
        admin = redis.Redis(port=port, password=PASSWORD)
        # least privilege: dora's keys and channels only
        admin.execute_command(
            "ACL",
            "SETUSER",
            "dora",
            "on",
            f">{ACL_PASSWORD}",
            "~dora:*",
            "&dora:*",
            "+@all",
            "-@admin",
            "-flushall",
            "-flushdb",
        )
        admin.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _ping(url: str, **kw: object) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, **kw)
        ok = bool(client.ping())
        client.close()
        return ok
    except (redis.RedisError, OSError):
        return False


def test_password_in_the_url_works(auth_redis: int) -> None:
    out = dora({"DORA_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{auth_redis}/0"}, "halt")
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr


def test_acl_user_with_only_dora_keys_works(auth_redis: int) -> None:
    url = f"redis://dora:{ACL_PASSWORD}@127.0.0.1:{auth_redis}/0"
    out = dora({"DORA_REDIS_URL": url}, "halt", "--reason", "acl test")
    assert out.returncode == 0, out.stderr
    admin = redis.Redis(port=auth_redis, password=PASSWORD, decode_responses=True)
    assert admin.hget("dora:risk", "reason") == "acl test"
    assert dora({"DORA_REDIS_URL": url}, "resume").returncode == 0
    admin.close()


@pytest.mark.parametrize(
    "userinfo", [":wrong-password", f"dora:{PASSWORD}", "nobody:x"], ids=["pass", "user", "nouser"]
)
def test_a_wrong_password_is_one_line_and_never_printed(auth_redis: int, userinfo: str) -> None:
    out = dora({"DORA_REDIS_URL": f"redis://{userinfo}@127.0.0.1:{auth_redis}/0"}, "halt")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "cannot reach Redis" in out.stderr
    secret = userinfo.split(":", 1)[1]
    assert secret not in out.stderr + out.stdout


# ---- TLS ----------------------------------------------------------------------------------


def _write_tls_material(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dora test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (tmp / "ca.pem", tmp / "server.pem", tmp / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(pem_key(key))
    paths[2].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    tmp = tmp_path_factory.mktemp("redis-tls")
    ca, cert, key = _write_tls_material(tmp)
    port = free_port()
    proc = redis_server(
        tmp,
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(cert),
        "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca),
        "--tls-auth-clients", "no",
        "--requirepass", PASSWORD,
    )  # fmt: skip
    try:
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: (
                    proc.poll() is not None
                    or _ping(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", ssl_ca_certs=str(ca))
                ),
                10,
                "redis with TLS",
            )
        if proc.poll() is not None:
            log = (tmp / "redis.log").read_text(errors="replace")
            pytest.skip(f"this redis-server has no TLS support: {log.strip()[-200:]}")
        yield port, ca
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def test_tls_with_the_ca_from_settings(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    env = {
        "DORA_REDIS_URL": f"rediss://:{PASSWORD}@127.0.0.1:{port}/0",
        "DORA_REDIS_CA_CERT": str(ca),
    }
    out = dora(env, "halt", "--reason", "tls test")
    assert out.returncode == 0, out.stderr
    assert dora(env, "resume").returncode == 0


def test_tls_refuses_a_server_it_cannot_verify(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    out = dora({"DORA_REDIS_URL": f"rediss://:{PASSWORD}@127.0.0.1:{port}/0"}, "halt")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "cannot reach Redis" in out.stderr and PASSWORD not in out.stderr


def test_plain_redis_to_a_tls_port_fails_cleanly(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    out = dora({"DORA_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{port}/0"}, "halt")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
