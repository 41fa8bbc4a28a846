"""Redis over TLS with a private CA (GCP Memorystore's case), against a real TLS redis-server."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from agent_infra.agent_app.adapters.state.redis import RedisState
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.app.conftest import free_port, wait_port


def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def tls_redis():
    if not shutil.which("redis-server"):
        pytest.fail("redis-server not found: apt-get install redis-server")
    base = Path(tempfile.mkdtemp(prefix="agent-redis-tls-"))
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("agent-test-ca", ca_key, None, ca_key, ca=True)
    server = _cert("localhost", ca_key, ca.subject, server_key, ca=False)
    for name, obj in (("ca.pem", ca), ("server.pem", server), ("server.key", server_key)):
        (base / name).write_bytes(_pem(obj))
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(base / "server.pem"),
         "--tls-key-file", str(base / "server.key"), "--tls-ca-cert-file", str(base / "ca.pem"),
         "--tls-auth-clients", "no", "--requirepass", "s3cret", "--save", "", "--appendonly", "no",
         "--dir", str(base), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield f"rediss://:s3cret@localhost:{port}/0", (base / "ca.pem").read_text()
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(base, ignore_errors=True)


async def test_private_ca_is_trusted_when_given(tls_redis):
    url, ca_pem = tls_redis
    state = RedisState.from_url(url, ca_cert=ca_pem, ttl_seconds=60)
    try:
        assert await state.r.ping() is True
    finally:
        await state.r.aclose()


async def test_without_the_ca_the_certificate_is_refused(tls_redis):
    url, _ = tls_redis
    state = RedisState.from_url(url, ttl_seconds=60)
    try:
        with pytest.raises(RedisConnectionError, match="certificate verify failed"):
            await state.r.ping()
    finally:
        await state.r.aclose()
