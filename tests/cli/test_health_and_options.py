"""bridge health, --version, global options from flags and BRIDGE_* variables, TLS, and exit codes."""

from __future__ import annotations

import socket
import subprocess
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

import unified_bridge
from tests.cli.conftest import one_error_line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_version(bridge, script):
    assert bridge("--version", target=False).stdout == f"bridge {unified_bridge.__version__}\n"
    done = script("--version")
    assert (done.returncode, done.stdout) == (0, f"bridge {unified_bridge.__version__}\n")


def test_health_of_a_serving_frontend_is_exit_0(bridge, frontend):
    result = bridge("health")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == [frontend.target, "SERVING"]
    liveness = bridge("health", "--service", "", "--json")
    assert liveness.exit_code == 0
    assert liveness.stdout.count('"SERVING"') == 1


def test_health_without_redis_is_not_serving_but_alive(bridge, frontend_factory):
    lonely = frontend_factory(redis_url=f"redis://127.0.0.1:{_free_port()}/0", redis_timeout_seconds=0.5)
    readiness = bridge("--target", lonely.target, "health", target=False)
    assert readiness.exit_code == 4
    assert readiness.stdout.splitlines()[1].split() == [lonely.target, "NOT_SERVING"]
    liveness = bridge("--target", lonely.target, "health", "--service", "", target=False)
    assert liveness.exit_code == 0


def test_health_of_every_target_and_unreachable_ones(bridge, frontend):
    dead = f"127.0.0.1:{_free_port()}"
    result = bridge("--target", f"{frontend.target},{dead}", "--timeout", "2", "health", target=False)
    assert result.exit_code == 4
    rows = [line.split()[:2] for line in result.stdout.splitlines()[1:]]
    assert rows == [[frontend.target, "SERVING"], [dead, "UNREACHABLE"]]


def test_health_of_an_unknown_service_is_exit_4(bridge):
    result = bridge("health", "--service", "no.such.Service")
    assert result.exit_code == 4
    assert "SERVICE_UNKNOWN" in result.stdout


def test_target_and_timeout_from_the_environment(bridge, frontend, populated, session_id):
    result = bridge(
        "sessions",
        "show",
        session_id,
        env={"BRIDGE_TARGET": frontend.target, "BRIDGE_TIMEOUT": "5"},
        target=False,
    )
    assert result.exit_code == 0, result.output
    bad_timeout = bridge("sessions", "list", env={"BRIDGE_TIMEOUT": "soon"})
    assert bad_timeout.exit_code == 2
    assert "Invalid value for '--timeout'" in bad_timeout.stderr


def test_a_flag_wins_over_the_environment(bridge, frontend, populated, session_id):
    dead = f"127.0.0.1:{_free_port()}"
    result = bridge(
        "--target", frontend.target, "sessions", "show", session_id, env={"BRIDGE_TARGET": dead}, target=False
    )
    assert result.exit_code == 0, result.output


def test_an_unreachable_frontend_is_exit_4(bridge):
    dead = f"127.0.0.1:{_free_port()}"
    result = bridge("--target", dead, "--timeout", "1", "sessions", "list", target=False)
    assert result.exit_code == 4
    assert one_error_line(result).startswith(f"bridge: error: the bridge at {dead} is unavailable: ")


@pytest.fixture
def guarded(frontend_factory):
    return frontend_factory(auth_tokens="s3cret")


def test_token_from_flag_and_environment(bridge, guarded, session_id):
    with unified_bridge.connect(guarded.target, token="s3cret") as client:
        client.session(session_id, cache=False).close()
    by_flag = bridge(
        "--target", guarded.target, "--token", "s3cret", "sessions", "show", session_id, target=False
    )
    assert by_flag.exit_code == 0, by_flag.output
    by_env = bridge(
        "sessions",
        "show",
        session_id,
        env={"BRIDGE_TARGET": guarded.target, "BRIDGE_TOKEN": "s3cret"},
        target=False,
    )
    assert by_env.exit_code == 0, by_env.output
    for token in ([], ["--token", "wrong"]):
        refused = bridge("--target", guarded.target, *token, "sessions", "show", session_id, target=False)
        assert refused.exit_code == 5
        assert "missing or invalid token" in one_error_line(refused)


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["sessions", "show"],
        ["--timeout", "0", "sessions", "list"],
        ["vars", "set", "s", "x"],
    ],
)
def test_usage_errors_are_exit_2(bridge, args):
    assert bridge(*args).exit_code == 2


def test_the_script_reports_expected_errors_in_one_line(script, frontend, session_id):
    done = script("--target", frontend.target, "sessions", "show", session_id)
    assert done.returncode == 3
    assert done.stderr == f"bridge: error: Session not found: {session_id}\n"
    by_env = script("sessions", "show", session_id, env={"BRIDGE_TARGET": frontend.target})
    assert by_env.returncode == 3


def test_the_script_runs_commands(script, frontend, populated, session_id):
    done = script("--target", frontend.target, "vars", "set", session_id, "steps", "-0")
    assert done.returncode == 0, done.stderr
    got = script("--target", frontend.target, "vars", "get", session_id, "steps")
    assert (got.returncode, got.stdout) == (0, "0\n")
    bad = script("--target", frontend.target, "vars", "set", session_id, "steps", "-5")
    assert bad.returncode == 2
    assert bad.stderr.startswith("bridge: error: bad value for steps (integer")


# --- TLS -------------------------------------------------------------------------------------------


def _certificate(directory, name: str, *, ca=None):
    """A key and certificate for localhost (self-signed when ``ca`` is None, else signed by it)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subject = ["-subj", f"/CN={name}"]
    if ca is None:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *subject,
             "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
            check=True, capture_output=True,
        )  # fmt: skip
        return key, cert
    request = directory / f"{name}.csr"
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", *subject,
         "-keyout", key, "-out", request],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", request, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
         "-days", "2", "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture
def tls_health_server(tmp_path):
    """A gRPC health service behind TLS that requires a client certificate signed by its CA."""
    ca = _certificate(tmp_path, "localhost")
    client = _certificate(tmp_path, "client", ca=ca)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(ca[0].read_bytes(), ca[1].read_bytes())],
        root_certificates=ca[1].read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("localhost:0", credentials)
    server.start()
    yield f"localhost:{port}", ca, client
    server.stop(None)


def test_tls_with_a_client_certificate(bridge, tls_health_server):
    target, ca, client = tls_health_server
    tls = ["--target", target, "--tls-ca", str(ca[1])]
    with_cert = bridge(
        *tls,
        "--tls-cert",
        str(client[1]),
        "--tls-key",
        str(client[0]),
        "health",
        "--service",
        "",
        target=False,
    )
    assert with_cert.exit_code == 0, with_cert.output
    assert "SERVING" in with_cert.stdout
    by_env = bridge(
        "health", "--service", "",
        env={"BRIDGE_TARGET": target, "BRIDGE_TLS_CA": str(ca[1]), "BRIDGE_TLS_CERT": str(client[1]),
             "BRIDGE_TLS_KEY": str(client[0])},
        target=False,
    )  # fmt: skip
    assert by_env.exit_code == 0, by_env.output
    without_cert = bridge(*tls, "--timeout", "2", "health", "--service", "", target=False)
    assert without_cert.exit_code == 4
    assert "UNREACHABLE" in without_cert.stdout
    plaintext = bridge("--target", target, "--timeout", "2", "health", "--service", "", target=False)
    assert plaintext.exit_code == 4


def test_a_client_certificate_needs_its_key(bridge, tmp_path):
    pem = tmp_path / "cert.pem"
    pem.write_text("not really a certificate")
    result = bridge("--tls-cert", str(pem), "health")
    assert result.exit_code == 2
    assert (
        one_error_line(result) == "bridge: error: --tls-cert and --tls-key go together: give both or neither"
    )


def test_ctrl_c_is_exit_130(bridge, monkeypatch):
    from unified_bridge.cli import _sessions

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_sessions, "iter_session_ids", interrupted)
    result = bridge("sessions", "list")
    assert result.exit_code == 130
    assert result.stderr == "bridge: interrupted\n"


def test_a_limit_of_the_frontend_is_exit_7(bridge, frontend_factory, session_id):
    small = frontend_factory(max_value_bytes=64)
    with unified_bridge.connect(small.target) as client, client.session(session_id, cache=False) as ctx:
        ctx.register_variable("note", "string", "short")
    result = bridge("--target", small.target, "vars", "set", session_id, "note", "x" * 200, target=False)
    assert result.exit_code == 7, result.output
    one_error_line(result)
