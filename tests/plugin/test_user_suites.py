"""The bridge_* fixtures as a user's suite sees them: pytest runs, in a subprocess, a suite written here.

The plugin is found through its `pytest11` entry point, as in a user's environment. The inner runs
have no pytest.ini of their own (so not this project's filterwarnings=error) and no cache.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import redis

from tests.harness.frontends import InProcessFrontend
from unified_bridge import connect

NO_CACHE = ("-p", "no:cacheprovider")


@pytest.fixture(autouse=True)
def _no_redis_from_this_environment(monkeypatch):
    """A Redis the outer run was pointed at must not decide where the inner runs' Redis comes from."""
    monkeypatch.delenv("BRIDGE_TEST_REDIS_URL", raising=False)


def _records(pytester: pytest.Pytester) -> list[dict[str, str]]:
    return [json.loads(line) for line in (pytester.path / "records.jsonl").read_text().splitlines()]


USER_SUITE = """
import json
import pathlib

import pytest

from unified_bridge import connect


def record(**entry):
    with pathlib.Path({records!r}).open("a") as out:
        out.write(json.dumps(entry) + "\\n")


def test_sets_and_reads_a_variable(bridge_session, bridge_frontend):
    bridge_session["temperature"] = 0.7
    assert bridge_session["temperature"] == 0.7
    with connect(bridge_frontend.target) as other:  # a second client sees it while the test runs
        assert bridge_session.session_id in other.list_sessions()
        with other.session(bridge_session.session_id) as same:
            same["temperature"] = 0.9
    assert bridge_session["temperature"] == 0.9  # read from the bridge, not from a cache
    assert bridge_session.cache_stats()["hits"] == 0
    record(session=bridge_session.session_id)


def test_gets_a_session_of_its_own(bridge_session):
    assert "temperature" not in bridge_session
    record(session=bridge_session.session_id)


def test_keeps_what_it_writes_through_the_client(bridge_client):
    bridge_client.session({kept!r})["marker"] = "written by the inner run"


@pytest.mark.asyncio
async def test_the_async_client(bridge_async_client):
    session = await bridge_async_client.session({kept_async!r})
    await session.set("steps", 3)
    assert await session.get_variable("steps") == 3
"""


def test_a_suite_gets_fresh_sessions_on_the_redis_it_names_and_they_are_deleted_after(
    pytester: pytest.Pytester, redis_url: str, frontend: InProcessFrontend, session_id: str
) -> None:
    kept, kept_async = f"{session_id}_kept", f"{session_id}_kept_async"
    records = str(pytester.path / "records.jsonl")
    pytester.makepyfile(test_user=USER_SUITE.format(records=records, kept=kept, kept_async=kept_async))

    result = pytester.runpytest_subprocess(*NO_CACHE, f"--bridge-redis-url={redis_url}")

    result.assert_outcomes(passed=4)
    first, second = (entry["session"] for entry in _records(pytester))
    assert first != second
    # Read through another frontend on the Redis the option named: what the suite kept is there,
    # the sessions of bridge_session are not.
    with connect(frontend.target) as client:
        try:
            sessions = client.list_sessions()
            assert first not in sessions
            assert second not in sessions
            with client.session(kept) as ctx:
                assert ctx["marker"] == "written by the inner run"
            with client.session(kept_async) as ctx:
                assert ctx["steps"] == 3
        finally:
            client.delete_session(kept)
            client.delete_session(kept_async)


PRIVATE_REDIS_SUITE = """
import pathlib

import pytest
import redis

import bridge_server.testing
from unified_bridge import LimitExceededError

bridge_server.testing.docker_answers = lambda: False  # the same choice on a machine with Docker


def test_runs_on_a_private_redis_server(bridge_redis, bridge_session):
    bridge_session["x"] = 1
    with redis.Redis.from_url(bridge_redis) as client:
        assert client.ping()
        assert client.dbsize() > 0
    pathlib.Path({records!r}).write_text(bridge_redis)


def test_the_frontend_has_the_flags_given(bridge_session):
    bridge_session["a"] = 1
    with pytest.raises(LimitExceededError):
        bridge_session["b"] = 2
"""


def test_without_a_url_a_private_redis_server_is_started_and_stopped(pytester: pytest.Pytester) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary: the plugin's fallback Redis is a private redis-server")
    records = pytester.path / "records.txt"
    pytester.makepyfile(test_user=PRIVATE_REDIS_SUITE.format(records=str(records)))

    result = pytester.runpytest_subprocess(*NO_CACHE, "--bridge-frontend-args=--max-variables-per-session 1")

    result.assert_outcomes(passed=2)
    url = records.read_text()
    assert url.startswith("redis://127.0.0.1:")
    with redis.Redis.from_url(url, socket_timeout=2) as client, pytest.raises(redis.ConnectionError):
        client.ping()


# As in an environment with the SDK alone: the server extra's modules cannot be imported.
WITHOUT_SERVER_EXTRA = """
import sys

for name in ("redis", "fakeredis", "prometheus_client", "grpc_health", "grpc_reflection"):
    sys.modules[name] = None
import pytest

raise SystemExit(pytest.main(sys.argv[1:]))
"""


def test_without_the_server_extra_the_plugin_loads_and_its_fixtures_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_user="""
        import sys

        def test_that_needs_no_bridge():
            assert "bridge_server.pytest_plugin" in sys.modules
            assert sys.modules.get("redis", "blocked") is None

        def test_that_needs_the_bridge(bridge_session):
            pass
        """
    )

    result = pytester.run(sys.executable, "-c", WITHOUT_SERVER_EXTRA, *NO_CACHE, "-rE")

    result.assert_outcomes(passed=1, errors=1)
    assert (
        "the bridge_* fixtures start a frontend, which needs the server extra (missing: redis, "
        "fakeredis, prometheus_client, grpc_health, grpc_reflection): "
        "pip install 'unified-bridge[server]'"
    ) in result.stdout.str()


RUNNING_FRONTEND_SUITE = """
import json
import pathlib

import pytest


def test_writes_through_the_running_frontend(bridge_session, bridge_client, bridge_frontend):
    bridge_session["temperature"] = 0.7
    assert bridge_session["temperature"] == 0.7
    assert bridge_session.session_id in bridge_client.list_sessions()
    entry = {{"session": bridge_session.session_id, "target": bridge_frontend.target,
              "kind": type(bridge_frontend).__name__}}
    pathlib.Path({records!r}).write_text(json.dumps(entry))


@pytest.mark.asyncio
async def test_the_async_client_carries_the_token_too(bridge_async_client):
    assert isinstance(await bridge_async_client.list_sessions(), list)


def test_the_redis_behind_it_is_not_known(bridge_redis):
    pass
"""


def test_a_suite_runs_against_frontends_already_running_with_their_token(
    pytester: pytest.Pytester, frontend_factory
) -> None:
    running = frontend_factory(auth_tokens="suite-secret")
    records = pytester.path / "records.json"
    pytester.makepyfile(test_user=RUNNING_FRONTEND_SUITE.format(records=str(records)))

    result = pytester.runpytest_subprocess(
        *NO_CACHE, "-rE", f"--bridge-target={running.target}", "--bridge-token=suite-secret"
    )

    result.assert_outcomes(passed=2, errors=1)
    assert "with --bridge-target the Redis behind those frontends is not known" in result.stdout.str()
    entry = json.loads(records.read_text())
    assert entry["target"] == running.target
    assert entry["kind"] == "RunningFrontend"  # nothing was started
    with connect(running.target, token="suite-secret") as client:
        assert entry["session"] not in client.list_sessions()  # deleted after its test


def test_flags_for_a_frontend_that_is_not_started_are_refused(pytester: pytest.Pytester, frontend) -> None:
    pytester.makepyfile(test_user="def test_it(bridge_session):\n    pass\n")

    result = pytester.runpytest_subprocess(
        *NO_CACHE, "-rE", f"--bridge-target={frontend.target}", "--bridge-frontend-args=--max-batch-size 5"
    )

    result.assert_outcomes(errors=1)
    assert "with --bridge-target none is started" in result.stdout.str()


def test_with_the_sdk_alone_a_suite_runs_against_a_running_frontend(
    pytester: pytest.Pytester, frontend
) -> None:
    pytester.makepyfile(
        test_user="""
        import sys

        def test_it(bridge_session):
            assert sys.modules.get("redis", "blocked") is None
            bridge_session["steps"] = 3
            assert bridge_session["steps"] == 3
        """
    )

    result = pytester.run(
        sys.executable, "-c", WITHOUT_SERVER_EXTRA, *NO_CACHE, f"--bridge-target={frontend.target}"
    )

    result.assert_outcomes(passed=1)


def test_a_suite_reaches_a_running_tls_frontend_trusting_the_ca_given(
    pytester: pytest.Pytester, frontend_factory, tmp_path
) -> None:
    from tests.harness.certs import CertificateAuthority

    ca = CertificateAuthority("plugin test CA")
    cert, key = ca.issue("frontend", hosts=("127.0.0.1",)).write(tmp_path, "server")
    running = frontend_factory(tls_cert=cert, tls_key=key)
    pytester.makepyfile(test_user="def test_it(bridge_session):\n    bridge_session['x'] = 1\n")

    result = pytester.runpytest_subprocess(
        *NO_CACHE, f"--bridge-target={running.target}", f"--bridge-tls-ca={ca.write(tmp_path)}"
    )

    result.assert_outcomes(passed=1)
