"""Scoped tokens (--auth-file): each token reaches the sessions its patterns match, read or read-write."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bridge_server.access import NEEDS, Need, refusal
from bridge_server.config import Settings
from bridge_server.scopes import Access, AccessFileError, Principal, glob_matches, load_access_file
from bridge_server.testing import free_port, wait_until, without_bridge_settings
from tests.integration.helpers import metric_sample, scrape_metrics
from unified_bridge import (
    AuthenticationError,
    PermissionDeniedError,
    SessionNotFoundError,
    VariableType,
    connect,
)
from unified_bridge.proto import unified_bridge_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["UnifiedBridge"]
UNAUTHENTICATED = "missing or invalid token: send the metadata 'authorization: Bearer <token>'"
_prefixes = itertools.count()


def rules(prefix: str, reader_sessions: tuple[str, ...] = ("-a-*", "-shared")) -> str:
    """An access file: a reader, a hashed read-write token on `<prefix>-a-*`, an admin."""
    sessions = ", ".join(f'"{prefix}{suffix}"' for suffix in reader_sessions)
    writer_hash = hashlib.sha256(b"writer-secret").hexdigest()
    return f"""
[[token]]
name = "reader"
secret = "reader-secret"
sessions = [{sessions}]
access = "read"

[[token]]
name = "writer"
secret_sha256 = "{writer_hash}"
sessions = ["{prefix}-a-*"]
access = "read-write"

[[token]]
name = "file-admin"
secret = "file-admin-secret"
admin = true
"""


class Caller:
    """Raw calls of any UnifiedBridge method with one bearer token."""

    def __init__(self, channel: grpc.Channel, token: str) -> None:
        self._channel = channel
        self._metadata = [("authorization", f"Bearer {token}")]

    def __call__(self, method: str, **fields: Any) -> Any:
        descriptor = SERVICE.methods_by_name[method]
        request = getattr(pb, descriptor.input_type.name)(**fields)
        response_class = getattr(pb, descriptor.output_type.name)
        path = f"/{SERVICE.full_name}/{method}"
        if descriptor.server_streaming:
            stream = self.open_stream(method, **fields)
            try:
                return next(stream)  # the first event of the replay, or the refusal
            finally:
                stream.cancel()
        call = self._channel.unary_unary(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_class.FromString,
        )
        return call(request, metadata=self._metadata, timeout=10)

    def open_stream(self, method: str, **fields: Any) -> Any:
        descriptor = SERVICE.methods_by_name[method]
        request = getattr(pb, descriptor.input_type.name)(**fields)
        open_call = self._channel.unary_stream(
            f"/{SERVICE.full_name}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=getattr(pb, descriptor.output_type.name).FromString,
        )
        return open_call(request, metadata=self._metadata, timeout=30)

    def refused(self, method: str, **fields: Any) -> grpc.RpcError:
        try:
            response = self(method, **fields)
        except grpc.RpcError as error:
            return error
        raise AssertionError(f"{method} {fields} should have failed, returned {response!r}")


def assert_denied(error: grpc.RpcError, pattern: str) -> None:
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (error.code(), error.details())
    assert re.search(pattern, error.details()), error.details()


@pytest.fixture
def prefix() -> str:
    return f"sc{os.getpid()}x{next(_prefixes)}"


@pytest.fixture
def access_file(tmp_path: Path, prefix: str) -> Path:
    path = tmp_path / "access.toml"
    path.write_text(rules(prefix))
    return path


@pytest.fixture
def scoped(frontend_factory, access_file):
    return frontend_factory(auth_file=str(access_file), auth_tokens="flag-admin")


@pytest.fixture
def callers(scoped) -> Iterator[dict[str, Caller]]:
    with grpc.insecure_channel(scoped.target) as channel:
        yield {
            name: Caller(channel, token)
            for name, token in (
                ("reader", "reader-secret"),
                ("writer", "writer-secret"),
                ("admin", "flag-admin"),
                ("file-admin", "file-admin-secret"),
                ("stranger", "not-a-token"),
            )
        }


def _with_variable(admin: Caller, session_id: str, value: int = 1) -> None:
    admin("CreateSession", session_id=session_id)
    admin(
        "RegisterVariable",
        session_id=session_id,
        name="x",
        type=pb.VARIABLE_TYPE_INTEGER,
        value=pb.Value(integer_value=value),
    )


def test_a_read_only_token_reads_and_watches_but_cannot_write(callers, prefix):
    reader, admin = callers["reader"], callers["admin"]
    session = f"{prefix}-a-1"
    _with_variable(admin, session, 7)
    assert reader("GetSession", session_id=session).session_id == session
    assert reader("Heartbeat", session_id=session).session_id == session
    assert reader("GetVariable", session_id=session, name_or_id="x").value.integer_value == 7
    assert [v.name for v in reader("GetVariables", session_id=session, names_or_ids=["x"]).variables] == ["x"]
    assert [v.name for v in reader("ListVariables", session_id=session).variables] == ["x"]
    assert reader("WatchSession", session_id=session).changes[0].value.integer_value == 7

    write = r"^permission denied: token 'reader' may not write session '.*-a-1' \(its scope: read on sessions"
    value = pb.Value(integer_value=8)
    assert_denied(reader.refused("SetVariable", session_id=session, name_or_id="x", value=value), write)
    update = pb.VariableUpdate(name_or_id="x", value=value)
    assert_denied(reader.refused("SetVariables", session_id=session, updates=[update]), write)
    assert_denied(reader.refused("DeleteVariable", session_id=session, name_or_id="x"), write)
    assert_denied(reader.refused("DeleteSession", session_id=session), write)
    # Opening a session that does not exist never creates it for a read-only token.
    assert reader.refused("CreateSession", session_id=f"{prefix}-a-2").code() == grpc.StatusCode.NOT_FOUND
    # Nothing the refused calls asked for happened.
    assert admin("GetVariable", session_id=session, name_or_id="x").value.integer_value == 7
    assert admin.refused("GetSession", session_id=f"{prefix}-a-2").code() == grpc.StatusCode.NOT_FOUND


def test_a_token_reaches_only_the_sessions_its_patterns_match(callers, prefix):
    writer, admin = callers["writer"], callers["admin"]
    mine, theirs = f"{prefix}-a-x", f"{prefix}-b-x"
    assert writer("CreateSession", session_id=mine).created
    writer(
        "RegisterVariable",
        session_id=mine,
        name="x",
        type=pb.VARIABLE_TYPE_INTEGER,
        value=pb.Value(integer_value=1),
    )
    assert (
        writer("SetVariable", session_id=mine, name_or_id="x", value=pb.Value(integer_value=2)).revision == 2
    )
    assert writer("GetVariable", session_id=mine, name_or_id="x").value.integer_value == 2
    assert writer("DeleteSession", session_id=mine).deleted  # read-write on a session may delete it

    _with_variable(admin, theirs)
    outside = r"^permission denied: token 'writer' may not (read|write) session '.*-b-x'"
    assert_denied(writer.refused("GetSession", session_id=theirs), outside)
    assert_denied(writer.refused("GetVariable", session_id=theirs, name_or_id="x"), outside)
    assert_denied(writer.refused("WatchSession", session_id=theirs), outside)
    assert_denied(writer.refused("DeleteSession", session_id=theirs), outside)
    # The whole id must match: "<prefix>-a-*" is not "<prefix>-ab" nor "x<prefix>-a-1".
    for near_miss in (f"{prefix}-ab", f"x{prefix}-a-1", f"{prefix}.a-1"):
        assert_denied(writer.refused("CreateSession", session_id=near_miss), "may not open")
    # A scoped token names the sessions it creates: the server's choice could fall outside its patterns.
    assert_denied(writer.refused("CreateSession"), "token 'writer' must name the session it creates")
    assert admin("GetSession", session_id=theirs).session_id == theirs


def test_a_watch_outside_the_scope_is_denied(callers, prefix):
    session = f"{prefix}-b-watched"
    _with_variable(callers["admin"], session)
    error = callers["reader"].refused("WatchSession", session_id=session)
    assert_denied(error, r"token 'reader' may not read session '.*-b-watched'")
    assert callers["file-admin"]("WatchSession", session_id=session).kind == pb.EVENT_KIND_REGISTERED


def test_an_unknown_token_is_unauthenticated_for_every_method(callers, prefix):
    for method in SERVICE.methods_by_name:
        error = (
            callers["stranger"].refused(method, session_id=f"{prefix}-a-1")
            if method != "ListSessions"
            else (callers["stranger"].refused(method))
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, method
        assert error.details() == UNAUTHENTICATED


def test_every_method_of_the_service_is_mapped_and_enforced(callers, prefix):
    assert set(NEEDS) == set(SERVICE.methods_by_name)
    outside = f"{prefix}-b-out"
    for method, need in NEEDS.items():
        request_class = getattr(pb, SERVICE.methods_by_name[method].input_type.name)
        if need is Need.LIST:
            assert "session_id" not in request_class.DESCRIPTOR.fields_by_name
            continue
        assert "session_id" in request_class.DESCRIPTOR.fields_by_name, method
        # Out of its patterns, every such method is refused to a scoped token before it does anything.
        assert_denied(callers["writer"].refused(method, session_id=outside), f"may not {need.value} session")
    # A method the table does not know is refused to everyone but an admin (fail closed).
    everywhere = Principal.scoped("everywhere", Access.READ_WRITE, ("*",))
    assert refusal("SomeFutureMethod", pb.GetSessionRequest(session_id="s"), everywhere) is not None
    assert (
        refusal("SomeFutureMethod", pb.GetSessionRequest(session_id="s"), Principal("op", admin=True)) is None
    )
    assert refusal("GetSession", pb.GetSessionRequest(session_id="s"), None) is not None


def test_list_sessions_shows_a_scoped_token_only_its_sessions_across_pages(
    frontend_factory, redis_process_factory, access_file, prefix
):
    redis_server = redis_process_factory()  # its own Redis, so the admin's listing is exactly known
    frontend = frontend_factory(
        redis_url=redis_server.url, auth_file=str(access_file), auth_tokens="flag-admin"
    )
    with grpc.insecure_channel(frontend.target) as channel:
        admin, reader, writer = (Caller(channel, t) for t in ("flag-admin", "reader-secret", "writer-secret"))
        tenant_a = {f"{prefix}-a-{n}" for n in range(12)}
        tenant_b = {f"{prefix}-b-{n}" for n in range(12)}
        shared = {f"{prefix}-shared"}
        for session in sorted(tenant_a | tenant_b | shared):
            admin("CreateSession", session_id=session)

        def every_page(caller: Caller) -> list[list[str]]:
            pages, token = [], ""
            while True:
                response = caller("ListSessions", page_size=3, page_token=token)
                pages.append(list(response.session_ids))
                assert response.next_page_token != token or not token  # the token moves on
                token = response.next_page_token
                if not token:
                    return pages

        reader_pages = every_page(reader)
        assert len(reader_pages) > 2  # several pages, some shorter than asked for once filtered
        assert sorted(itertools.chain.from_iterable(reader_pages)) == sorted(tenant_a | shared)
        assert set(itertools.chain.from_iterable(every_page(writer))) == tenant_a
        assert set(itertools.chain.from_iterable(every_page(admin))) == tenant_a | tenant_b | shared

    # The SDK pages to the end the same way, and gets the filtered ids.
    with connect(frontend.target, token="reader-secret") as client:
        assert sorted(client.list_sessions()) == sorted(tenant_a | shared)
    with connect(frontend.target, token="file-admin-secret") as client:
        assert set(client.list_sessions()) == tenant_a | tenant_b | shared


def test_the_sdk_raises_permission_denied_error(scoped, prefix):
    with connect(scoped.target, token="writer-secret", timeout=5) as client:
        with client.session(f"{prefix}-a-sdk") as ctx:
            ctx.register_variable("x", VariableType.INTEGER, 1)
            assert ctx["x"] == 1
        with pytest.raises(PermissionDeniedError) as info:
            client.session(f"{prefix}-b-sdk")
    assert isinstance(info.value, AuthenticationError)  # what it was raised as before scopes
    assert info.value.grpc_status == grpc.StatusCode.PERMISSION_DENIED
    assert "token 'writer' may not open session" in str(info.value)


def test_a_read_only_token_opens_an_existing_session_with_the_sdk(scoped, prefix):
    session = f"{prefix}-shared"
    with connect(scoped.target, token="flag-admin", timeout=5) as admin, admin.session(session) as ctx:
        ctx.register_variable("x", VariableType.INTEGER, 1)
    with connect(scoped.target, token="reader-secret", timeout=5) as client:
        with client.session(session) as ctx:
            assert ctx["x"] == 1
            with pytest.raises(PermissionDeniedError, match="token 'reader' may not write session"):
                ctx["x"] = 2
        with pytest.raises(SessionNotFoundError):
            client.session(f"{prefix}-a-never-created")
        assert f"{prefix}-a-never-created" not in client.list_sessions()


def test_secret_sha256_is_accepted_and_a_wrong_secret_is_not(callers, prefix):
    session = f"{prefix}-a-hashed"
    assert callers["writer"]("CreateSession", session_id=session).created  # the file holds only its hash
    # The hash itself is not the token.
    hashed = Caller(callers["writer"]._channel, hashlib.sha256(b"writer-secret").hexdigest())
    assert hashed.refused("GetSession", session_id=session).code() == grpc.StatusCode.UNAUTHENTICATED


# -- the access file ----------------------------------------------------------------------------


def test_globs_match_whole_ids_with_only_star_and_question_mark_special():
    matches = [("tenant-a-*", "tenant-a-"), ("tenant-a-*", "tenant-a-42"), ("s?", "s1"), ("a.b", "a.b")]
    matches += [("[ab]", "[ab]"), ("*", ""), ("*a*a*a*a*a*a*a*a*b", "a" * 200 + "b")]
    misses = [("tenant-a-*", "xtenant-a-1"), ("tenant-a-*", "tenant-b-1"), ("s?", "s"), ("s?", "s12")]
    misses += [("a.b", "aXb"), ("[ab]", "a")]  # "." is only a dot; no character classes
    misses += [("*a*a*a*a*a*a*a*a*b", "a" * 5000)]  # no runaway backtracking
    assert [glob_matches(p, t) for p, t in matches] == [True] * len(matches)
    assert [glob_matches(p, t) for p, t in misses] == [False] * len(misses)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[[token]]\nname = 'x'\nsecret = 'y'\nsessions = ['a*'\n", "not valid TOML"),
        ("", "holds no \\[\\[token\\]\\]"),
        ("[[token]]\nname = 'x'\nsecret = 'y'\nsesions = ['a']\n", "unknown key 'sesions'"),
        ("[[token]]\nname = 'x'\nsessions = ['a']\n", "exactly one of 'secret' and 'secret_sha256'"),
        ("[[token]]\nname = 'x'\nsecret_sha256 = 'abc'\n", "64 hex digits"),
        (
            "[[token]]\nname = 'x'\nsecret = 'y'\naccess = 'write'\n",
            "'access' must be 'read' or 'read-write'",
        ),
        (
            "[[token]]\nname = 'x'\nsecret = 'y'\nadmin = true\nsessions = ['a']\n",
            "admin token reaches every",
        ),
        ("[[token]]\nname = 'x'\nsecret = 'y'\n[[token]]\nname = 'x'\nsecret = 'z'\n", "used twice"),
        ("[[token]]\nname = 'x'\nsecret = 'y'\n[[token]]\nname = 'z'\nsecret = 'y'\n", "another token's"),
    ],
)
def test_an_unusable_access_file_is_refused_with_its_reason(tmp_path, content, problem):
    path = tmp_path / "access.toml"
    path.write_text(content)
    with pytest.raises(AccessFileError, match=f"^access file {re.escape(str(path))}: .*{problem}"):
        load_access_file(str(path))


def test_the_access_file_is_a_setting_of_its_own(tmp_path, access_file):
    assert Settings.from_env({"BRIDGE_AUTH_FILE": str(access_file)}).auth_file == str(access_file)
    with pytest.raises(AccessFileError, match="cannot read it"):
        Settings.from_args(["--auth-file", str(tmp_path / "missing.toml")], environ={})


def test_a_bad_access_file_at_start_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "access.toml"
    path.write_text("[[token]]\nname = 'ci'\nsecret = 'do-not-print-me'\naccess = 'everything'\n")
    result = subprocess.run(
        [sys.executable, "-m", "bridge_server", "--port", "0", "--auth-file", str(path)],
        capture_output=True,
        text=True,
        env=without_bridge_settings(),
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"bridge-server: access file {path}: token #1 ('ci'): 'access' must be")
    assert "do-not-print-me" not in result.stderr


# -- reloading on SIGHUP ------------------------------------------------------------------------


def _allowed(caller: Caller, session_id: str) -> bool:
    try:
        caller("GetSession", session_id=session_id)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.PERMISSION_DENIED:
            raise
        return False
    return True


def test_sighup_reloads_the_access_file(frontend_process_factory, access_file, prefix):
    frontend = frontend_process_factory("--auth-file", str(access_file), "--auth-tokens", "flag-admin")
    session = f"{prefix}-b-later"
    with grpc.insecure_channel(frontend.target) as channel:
        admin, reader = Caller(channel, "flag-admin"), Caller(channel, "reader-secret")
        admin("CreateSession", session_id=session)
        assert not _allowed(reader, session)

        access_file.write_text(rules(prefix, reader_sessions=("-b-*",)))
        os.kill(frontend.pid, signal.SIGHUP)
        wait_until(lambda: _allowed(reader, session), "the reloaded rules to let the reader in")
        frontend.wait_for_line(re.compile(r"access rules reloaded from .*: 4 tokens"))
        assert not _allowed(reader, f"{prefix}-a-1")  # the new rules replaced the old ones


def test_a_bad_reload_keeps_the_previous_rules(frontend_process_factory, access_file, prefix):
    frontend = frontend_process_factory("--auth-file", str(access_file))
    session = f"{prefix}-a-kept"
    with grpc.insecure_channel(frontend.target) as channel:
        admin, reader = Caller(channel, "file-admin-secret"), Caller(channel, "reader-secret")
        admin("CreateSession", session_id=session)
        assert _allowed(reader, session)

        access_file.write_text('[[token]]\nname = "reader"\nsecret = "reader-secret"\nsessions = "oops"\n')
        os.kill(frontend.pid, signal.SIGHUP)
        line = frontend.wait_for_line(re.compile(r"access rules NOT reloaded.*"))
        assert "'sessions' must be a list" in line.group(0)
        assert _allowed(reader, session)  # still the old rules: read on <prefix>-a-*
        assert admin("GetSession", session_id=session).session_id == session
        assert not any("reader-secret" in entry for entry in frontend.log)  # secrets are never logged


def test_an_open_watch_ends_once_a_reload_takes_its_session_away(
    frontend_process_factory, access_file, prefix
):
    metrics_port = free_port()
    frontend = frontend_process_factory("--auth-file", str(access_file), "--metrics-port", str(metrics_port))
    session = f"{prefix}-a-watched"
    with grpc.insecure_channel(frontend.target) as channel:
        admin, reader = Caller(channel, "file-admin-secret"), Caller(channel, "reader-secret")
        _with_variable(admin, session)
        stream = reader.open_stream("WatchSession", session_id=session)
        assert next(stream).kind == pb.EVENT_KIND_REGISTERED

        access_file.write_text(rules(prefix, reader_sessions=("-shared",)))
        os.kill(frontend.pid, signal.SIGHUP)
        frontend.wait_for_line(re.compile(r"access rules reloaded"))
        admin("SetVariable", session_id=session, name_or_id="x", value=pb.Value(integer_value=2))
        kinds: list[int] = []
        with pytest.raises(grpc.RpcError) as info:
            kinds.extend(event.kind for event in stream)
        assert set(kinds) <= {pb.EVENT_KIND_CAUGHT_UP}  # CAUGHT_UP may still come; the change does not
        assert_denied(info.value, r"^permission denied: token 'reader' may not read session '.*-a-watched'")
        assert ("ub-error", "PermissionDeniedError") in tuple(info.value.trailing_metadata())
    ended = 'bridge_rpc_calls_total{code="PERMISSION_DENIED",method="WatchSession"}'
    wait_until(lambda: ended in scrape_metrics(metrics_port), "the ended stream to be counted")
    assert metric_sample(scrape_metrics(metrics_port), ended) == 1


def test_the_startup_line_counts_scoped_tokens_as_authentication(access_file):
    from bridge_server.app import describe_protection, unprotected_exposure

    scoped = Settings(auth_file=str(access_file), host="0.0.0.0")
    assert describe_protection(scoped) == "auth: on (scoped tokens), TLS: off"
    assert not unprotected_exposure(scoped)
    both = Settings(auth_file=str(access_file), auth_tokens="admin")
    assert describe_protection(both) == "auth: on (bearer tokens, scoped tokens), TLS: off"
