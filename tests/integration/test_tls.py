"""TLS and mutual TLS: the frontend's flags, the SDK's options, and what is refused.

Certificates are made per test module (tests/harness/certs.py): a CA, a server certificate for
127.0.0.1 and localhost, a client certificate, and a second CA that nobody trusts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bridge_server.app import (
    SERVICE_NAME,
    TlsFileError,
    describe_protection,
    is_loopback,
    server_credentials,
    unprotected_exposure,
)
from bridge_server.config import Settings
from bridge_server.testing import FrontendProcess, without_bridge_settings
from tests.harness.certs import CertificateAuthority, Issued
from unified_bridge import (
    AuthenticationError,
    BridgeUnavailableError,
    LocalFirstContext,
    ValidationError,
    VariableType,
    connect,
    connect_async,
)
from unified_bridge._transport import channel_credentials

# Refusals are handshake failures (UNAVAILABLE, retried until the deadline): keep the deadline short.
REFUSED_TIMEOUT = 2.0


@dataclass(frozen=True)
class Pki:
    ca: CertificateAuthority
    ca_path: str
    server_cert: str
    server_key: str
    client: Issued
    stranger: Issued  # a client certificate from a CA the frontend does not trust
    other_ca: CertificateAuthority
    junk: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority("Unified Bridge test CA")
    other_ca = CertificateAuthority("some other CA")
    server_cert, server_key = ca.issue("frontend", hosts=("127.0.0.1", "localhost")).write(
        directory, "server"
    )
    junk = directory / "junk.pem"
    junk.write_text("not a certificate\n")
    return Pki(
        ca=ca,
        ca_path=ca.write(directory),
        server_cert=server_cert,
        server_key=server_key,
        client=ca.issue("worker", client=True),
        stranger=other_ca.issue("intruder", client=True),
        other_ca=other_ca,
        junk=str(junk),
    )


@pytest.fixture
def tls_frontend(frontend_factory, pki):
    return frontend_factory(tls_cert=pki.server_cert, tls_key=pki.server_key)


@pytest.fixture
def mtls_frontend(frontend_factory, pki):
    return frontend_factory(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca_path)


def _mtls_options(pki: Pki) -> dict[str, bytes]:
    return {
        "root_certificates": pki.ca.cert_pem,
        "client_cert": pki.client.cert,
        "client_key": pki.client.key,
    }


# --- the SDK over TLS ----------------------------------------------------------------------------


def test_sdk_round_trip_and_watch_over_tls(tls_frontend, pki, session_id):
    with (
        connect(tls_frontend.target, root_certificates=pki.ca.cert_pem) as client,
        client.session(session_id) as ctx,
    ):
        ctx.register_variable("lr", VariableType.FLOAT, 0.1)
        ctx["lr"] = 0.2
        events = ctx.watch(["lr"], from_revision=ctx.revision)
        ctx["lr"] = 0.3
        event = next(events)
        events.close()
        assert ctx["lr"] == 0.3
        assert (event.kind, event.changes[0].name, event.changes[0].value) == ("updated", "lr", 0.3)
        assert ctx.wait_for_cache()  # the cache's own watch stream is over TLS too


def test_several_tls_frontends_round_robin_and_watch(frontend_factory, pki, session_id):
    """The round-robin channel names addresses, not a host: it verifies against the first target."""
    first, second = (frontend_factory(tls_cert=pki.server_cert, tls_key=pki.server_key) for _ in range(2))
    with (
        connect([first.target, second.target], root_certificates=pki.ca.cert_pem) as client,
        client.session(session_id) as ctx,
    ):
        for value in range(4):
            ctx["n"] = value
        events = ctx.watch(["n"], from_revision=ctx.revision)
        ctx["n"] = 10
        assert next(events).changes[0].value == 10
        events.close()
        assert ctx["n"] == 10


def test_plaintext_client_against_a_tls_frontend_is_unavailable(tls_frontend, session_id):
    with (
        connect(tls_frontend.target, timeout=REFUSED_TIMEOUT) as client,
        pytest.raises(BridgeUnavailableError),
    ):
        client.session(session_id)


def test_tls_client_against_a_plaintext_frontend_is_unavailable(frontend, pki, session_id):
    with (
        connect(frontend.target, root_certificates=pki.ca.cert_pem, timeout=REFUSED_TIMEOUT) as client,
        pytest.raises(BridgeUnavailableError),
    ):
        client.session(session_id)


@pytest.mark.parametrize(
    "how",
    ["root of another CA", "the system's roots", "another server name"],
)
def test_a_server_the_client_cannot_verify_is_refused(tls_frontend, pki, session_id, how):
    options = {
        "root of another CA": {"root_certificates": pki.other_ca.cert_pem},
        "the system's roots": {"tls": True},
        "another server name": {
            "root_certificates": pki.ca.cert_pem,
            "options": [("grpc.ssl_target_name_override", "bridge.example.org")],
        },
    }[how]
    with (
        connect(tls_frontend.target, timeout=REFUSED_TIMEOUT, **options) as client,
        pytest.raises(BridgeUnavailableError),
    ):
        client.session(session_id)


def test_the_localhost_name_is_verified_too(tls_frontend, pki, session_id):
    target = f"localhost:{tls_frontend.port}"
    with connect(target, root_certificates=pki.ca.cert_pem) as client, client.session(session_id) as ctx:
        ctx["x"] = 1
        assert ctx["x"] == 1


# --- mutual TLS ----------------------------------------------------------------------------------


def test_mtls_accepts_a_client_certificate_of_its_ca(mtls_frontend, pki, session_id):
    with connect(mtls_frontend.target, **_mtls_options(pki)) as client, client.session(session_id) as ctx:
        ctx["x"] = 1
        assert ctx["x"] == 1
        assert ctx.wait_for_cache()


def test_mtls_refuses_a_client_without_a_certificate(mtls_frontend, pki, session_id):
    with (
        connect(mtls_frontend.target, root_certificates=pki.ca.cert_pem, timeout=REFUSED_TIMEOUT) as client,
        pytest.raises(BridgeUnavailableError),
    ):
        client.session(session_id)


def test_mtls_refuses_a_client_certificate_of_another_ca(mtls_frontend, pki, session_id):
    with (
        connect(
            mtls_frontend.target,
            root_certificates=pki.ca.cert_pem,
            client_cert=pki.stranger.cert,
            client_key=pki.stranger.key,
            timeout=REFUSED_TIMEOUT,
        ) as client,
        pytest.raises(BridgeUnavailableError),
    ):
        client.session(session_id)


async def test_async_client_over_mtls_with_a_token(frontend_factory, pki, session_id):
    guarded = frontend_factory(
        tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca_path, auth_tokens="s3cret"
    )
    async with connect_async(guarded.target, token="s3cret", **_mtls_options(pki)) as client:
        ctx = await client.session(session_id)
        await ctx.set("x", 5)
        events = ctx.watch(["x"], from_revision=ctx.revision)
        await ctx.set("x", 6)
        event = await anext(events)
        await events.aclose()
        assert event.changes[0].value == 6
        assert await ctx.get_variable("x") == 6
        await ctx.close()


def test_a_local_first_context_moves_to_a_tls_bridge(mtls_frontend, pki, session_id):
    with (
        connect(mtls_frontend.target, **_mtls_options(pki)) as client,
        LocalFirstContext(session_id, bridge=client) as ctx,
    ):
        ctx["x"] = 1
        ctx.ensure_bridged()
        assert ctx.is_bridged
        assert ctx["x"] == 1
        with client.session(session_id) as other:
            assert other["x"] == 1


# --- TLS and tokens together ---------------------------------------------------------------------


def test_tls_and_a_token_together(frontend_factory, pki, session_id):
    guarded = frontend_factory(tls_cert=pki.server_cert, tls_key=pki.server_key, auth_tokens="s3cret")
    with (
        connect(guarded.target, token="s3cret", root_certificates=pki.ca.cert_pem) as client,
        client.session(session_id) as ctx,
    ):
        ctx["x"] = 1
        assert ctx.wait_for_cache()  # the watch stream carries the token over TLS too
        assert ctx["x"] == 1
    with (
        connect(guarded.target, token="wrong", root_certificates=pki.ca.cert_pem, timeout=5) as client,
        pytest.raises(AuthenticationError),
    ):
        client.session(session_id)


# --- health and reflection share the port, so they are behind TLS --------------------------------


def test_health_is_served_over_tls_only(tls_frontend, pki):
    credentials = grpc.ssl_channel_credentials(pki.ca.cert_pem)
    with grpc.secure_channel(tls_frontend.target, credentials) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(tls_frontend.target) as channel, pytest.raises(grpc.RpcError) as info:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=REFUSED_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_health_under_mtls_needs_a_client_certificate(mtls_frontend, pki):
    credentials = grpc.ssl_channel_credentials(pki.ca.cert_pem, pki.client.key, pki.client.cert)
    with grpc.secure_channel(mtls_frontend.target, credentials) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_over_tls_lists_the_service(tls_frontend, pki):
    credentials = grpc.ssl_channel_credentials(pki.ca.cert_pem)
    with grpc.secure_channel(tls_frontend.target, credentials) as channel:
        responses = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for response in responses for s in response.list_services_response.service}
    assert SERVICE_NAME in names


# --- the SDK's options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"client_cert": b"-----BEGIN CERTIFICATE-----\n"}, "client_cert and client_key go together"),
        ({"client_key": b"-----BEGIN PRIVATE KEY-----\n"}, "client_cert and client_key go together"),
        ({"root_certificates": "ca.pem"}, "root_certificates must be PEM bytes"),
        ({"root_certificates": b"not pem"}, "root_certificates is not PEM"),
        ({"tls": True, "credentials": grpc.ssl_channel_credentials()}, "either credentials= or the TLS"),
    ],
)
def test_bad_tls_options_are_a_clear_value_error(options, says):
    with pytest.raises(ValidationError, match=re.escape(says)) as info:
        connect("127.0.0.1:1", **options)
    assert isinstance(info.value, ValueError)


def test_credentials_alone_still_work(tls_frontend, pki, session_id):
    credentials = grpc.ssl_channel_credentials(pki.ca.cert_pem)
    with connect(tls_frontend.target, credentials=credentials) as client, client.session(session_id) as ctx:
        ctx["x"] = 1
        assert ctx["x"] == 1


def test_no_tls_option_means_plaintext_or_the_given_credentials():
    given = grpc.ssl_channel_credentials()
    assert channel_credentials(None) is None
    assert channel_credentials(given) is given
    assert channel_credentials(None, tls=True) is not None


# --- the frontend's settings and startup ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"tls_cert": "server.crt"}, "tls_cert is set but tls_key is not"),
        ({"tls_key": "server.key"}, "tls_key is set but tls_cert is not"),
        ({"tls_client_ca": "ca.crt"}, "tls_client_ca (mutual TLS) needs TLS"),
    ],
)
def test_half_a_tls_setting_is_a_value_error(fields, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        Settings(**fields)


def test_tls_settings_come_from_the_environment_too():
    settings = Settings.from_env({"BRIDGE_TLS_CERT": "a.crt", "BRIDGE_TLS_KEY": "a.key"})
    assert (settings.tls_cert, settings.tls_key, settings.uses_tls) == ("a.crt", "a.key", True)


def test_unusable_tls_files_are_a_clear_error(pki, tmp_path):
    _, other_key = pki.other_ca.issue("x", hosts=("127.0.0.1",)).write(tmp_path, "other")
    both = {"tls_cert": pki.server_cert, "tls_key": pki.server_key}
    encrypted_key = str(tmp_path / "encrypted.key")
    Path(encrypted_key).write_bytes(
        serialization.load_pem_private_key(Path(pki.server_key).read_bytes(), None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    cases = [
        ({"tls_cert": str(tmp_path / "missing.crt"), "tls_key": pki.server_key}, "cannot be read"),
        ({"tls_cert": pki.junk, "tls_key": pki.server_key}, "is not PEM"),
        ({**both, "tls_key": pki.server_cert}, f"--tls-key {pki.server_cert!r} is not PEM"),
        ({**both, "tls_key": other_key}, "the key does not belong to the certificate"),
        ({**both, "tls_key": encrypted_key}, "is encrypted: gRPC needs an unencrypted key"),
        ({**both, "tls_client_ca": pki.junk}, f"--tls-client-ca {pki.junk!r} is not PEM"),
        ({**both, "tls_client_ca": str(tmp_path)}, f"--tls-client-ca {str(tmp_path)!r} cannot be read"),
    ]
    for fields, says in cases:
        with pytest.raises(TlsFileError, match=re.escape(says)):
            server_credentials(Settings(**fields))


def _run_frontend(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge_server", "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=without_bridge_settings(),
    )


def test_startup_with_only_a_certificate_is_one_line_and_exit_2(pki):
    done = _run_frontend("--tls-cert", pki.server_cert)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bridge-server: tls_cert is set but tls_key is not: TLS needs both "
        "(--tls-cert and --tls-key, or BRIDGE_TLS_CERT and BRIDGE_TLS_KEY)"
    ]


def test_startup_with_an_unusable_certificate_is_one_line_and_exit_2(pki):
    done = _run_frontend("--tls-cert", pki.junk, "--tls-key", pki.server_key)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"bridge-server: --tls-cert {pki.junk!r} is not PEM: it has no '-----BEGIN CERTIFICATE-----' line"
    ]


def test_a_tls_frontend_process_says_so_and_serves(redis_url, pki, session_id):
    args = ("--tls-cert", pki.server_cert, "--tls-key", pki.server_key, "--tls-client-ca", pki.ca_path)
    with FrontendProcess(redis_url, *args) as process:
        with connect(process.target, **_mtls_options(pki)) as client, client.session(session_id) as ctx:
            ctx["x"] = 1
            assert ctx["x"] == 1
        line = next(line for line in process.log if "listening on" in line)
    assert "auth: off, TLS: on, mutual (client certificates required)" in line
    assert not any("neither authentication nor TLS" in line for line in process.log)


# --- the warning for an unprotected frontend beyond this machine ---------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("bridge.internal", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("fields", "warn"),
    [
        ({"host": "0.0.0.0"}, True),
        ({"host": "10.0.0.5"}, True),
        ({"host": "127.0.0.1"}, False),
        ({"host": "0.0.0.0", "auth_tokens": "t"}, False),
        ({"host": "0.0.0.0", "tls_cert": "c", "tls_key": "k"}, False),
    ],
)
def test_unprotected_exposure(fields, warn):
    assert unprotected_exposure(Settings(**fields)) is warn


def test_describe_protection_names_auth_and_tls_but_no_secret():
    plain = describe_protection(Settings())
    both = describe_protection(Settings(auth_tokens="s3cret", tls_cert="c", tls_key="k"))
    assert plain == "auth: off, TLS: off"
    assert both == "auth: on (bearer tokens), TLS: on"
    assert "s3cret" not in both


def test_a_frontend_open_to_the_network_warns():
    """The one process test of the warning: the embedded store (no data) on every interface, briefly."""
    with FrontendProcess(None, "--host", "0.0.0.0") as process:
        process.wait_for_line(re.compile("neither authentication nor TLS"))
    assert any("auth: off, TLS: off" in line for line in process.log)
