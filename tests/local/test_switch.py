"""Local-first contexts moving to the bridge: what the move keeps, what a failed move keeps, and the
reference's scenarios. Real frontends over a real Redis; faults come from a real gRPC relay."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from bridge_server.testing import free_port
from tests.harness.relay import Relay
from unified_bridge import (
    AlreadyExistsError,
    AuthenticationError,
    BridgeClient,
    BridgeError,
    BridgeUnavailableError,
    LimitExceededError,
    LocalFirstContext,
    ValidationError,
    VariableType,
    connect,
    local_first,
)
from unified_bridge.proto import unified_bridge_pb2 as pb

MIGRATION_KEYS = {"migrated_from", "migrated_at"}


@pytest.fixture
def bridge(frontend) -> Iterator[BridgeClient]:
    with connect(frontend.target) as client:
        yield client


@pytest.fixture
def relay(frontend) -> Iterator[Relay]:
    server = Relay(frontend.target)
    yield server
    server.stop()


def populate(ctx: Any) -> None:
    """A session with every kind of variable, some written more than once."""
    ctx.register_variable(
        "temperature",
        VariableType.FLOAT,
        0.7,
        constraints={"min": 0.0, "max": 2.0},
        metadata={"source": "test"},
        description="Generation randomness",
    )
    ctx.register_variable("tokens", VariableType.INTEGER, 256, constraints={"min": 1, "max": 4096})
    ctx.register_variable("model", VariableType.STRING, "local", constraints={"enum": ["local", "fast"]})
    ctx.register_variable("enabled", VariableType.BOOLEAN, True)
    ctx.register_variable("strategy", VariableType.CHOICE, "a", constraints={"choices": ["a", "b"]})
    ctx.register_variable("emb", VariableType.EMBEDDING, [0.5, 1.5], constraints={"dimensions": 2})
    ctx.register_variable("weights", VariableType.TENSOR, [[1, 2], [3, 4]], constraints={"dtype": "int32"})
    ctx["temperature"] = 0.9
    ctx["tokens"] = 512
    ctx.update("tokens", lambda n: n * 2)


def comparable(variables: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Variables by name, without the metadata a move adds."""
    return {
        v["name"]: {
            **v,
            "metadata": {k: m for k, m in v["metadata"].items() if k not in MIGRATION_KEYS},
            "constraints": {
                k: (float(c) if isinstance(c, int) and k in ("min", "max") else c)
                for k, c in v["constraints"].items()
            },
        }
        for v in variables
    }


def assert_nothing_lost(ctx: LocalFirstContext, before: dict[str, dict[str, Any]], revision: int) -> None:
    assert not ctx.is_bridged
    assert ctx.backend.kind == "local"
    assert comparable(ctx.list_variables()) == before
    assert ctx.revision == revision
    ctx["after_failure"] = 1  # still writable, still local
    assert ctx["after_failure"] == 1


class TestTheMove:
    def test_keeps_every_value_id_version_constraint_and_metadata(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            populate(ctx)
            before = ctx.list_variables()
            revision = ctx.revision
            ctx.ensure_bridged()
            assert ctx.is_bridged
            assert ctx.backend.kind == "bridged"
            assert ctx.backend.switches == 1
            assert ctx.backend.last_switch_seconds is not None
            after = ctx.list_variables()
            assert comparable(after) == comparable(before)  # ids, versions, timestamps included
            assert ctx.revision == revision + 1  # the move is one mutation
            for variable in after:
                assert variable["metadata"]["migrated_from"] == "local"
                datetime.fromisoformat(variable["metadata"]["migrated_at"])
            assert after[0]["metadata"]
            # Another program sees the same session on the bridge.
            with bridge.session(session_id) as other:
                assert other["tokens"] == 1024
                assert other.get_variable_info("tokens")["version"] == 2
                assert other["weights"] == [[1, 2], [3, 4]]
            # Writing goes on from the kept versions, and the rules still hold.
            assert ctx.update_variable("tokens", 100) == 3
            with pytest.raises(ValidationError, match="above maximum"):
                ctx["temperature"] = 2.5
            # The program registers its variables again after the move: the same definition is a repeat.
            ids = {v["name"]: v["id"] for v in after}
            assert (
                ctx.register_variable(
                    "temperature",
                    VariableType.FLOAT,
                    0.7,
                    constraints={"min": 0.0, "max": 2.0},
                    metadata={"source": "test"},
                    description="Generation randomness",
                )
                == ids["temperature"]
            )

    def test_second_ensure_bridged_is_a_no_op(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx["counter"] = 42
            for _ in range(3):
                ctx.ensure_bridged()
                assert ctx.backend.switches == 1
            assert ctx["counter"] == 42

    def test_empty_session(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx.ensure_bridged()
            ctx.register_variable("post_switch", VariableType.STRING, "works")
            assert ctx["post_switch"] == "works"

    def test_hundred_variables_with_constraints_and_metadata(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            for i in range(1, 101):
                ctx.register_variable(
                    f"var_{i}",
                    VariableType.INTEGER,
                    i,
                    constraints={"min": 0, "max": 1000},
                    metadata={"index": str(i)},
                )
            ctx.ensure_bridged()
            assert (ctx["var_1"], ctx["var_50"], ctx["var_100"]) == (1, 50, 100)
            listed = ctx.list_variables()
            assert len(listed) == 100
            assert {v["metadata"]["index"] for v in listed} == {str(i) for i in range(1, 101)}
            with pytest.raises(ValidationError):
                ctx["var_7"] = 1001

    def test_many_variables_go_in_chunks(self, frontend_factory, session_id: str) -> None:
        small_chunks = frontend_factory(import_chunk_size=100)
        with connect(small_chunks.target) as client, LocalFirstContext(session_id, bridge=client) as ctx:
            for i in range(1200):
                ctx[f"v{i}"] = i
            ctx.update_variables({f"v{i}": -i for i in range(0, 1200, 7)}, atomic=True)
            before = comparable(ctx.list_variables())
            ctx.ensure_bridged()
            assert comparable(ctx.list_variables()) == before

    def test_complex_constraints_still_enforced(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx.register_variable("ranged", VariableType.FLOAT, 0.5, constraints={"min": 0.0, "max": 1.0})
            ctx.register_variable(
                "pattern", VariableType.STRING, "ABC123", constraints={"pattern": "^[A-Z]+[0-9]+$"}
            )
            ctx.register_variable(
                "choice", VariableType.STRING, "red", constraints={"enum": ["red", "green", "blue"]}
            )
            ctx.ensure_bridged()
            for name, bad in (("ranged", 2.0), ("pattern", "invalid"), ("choice", "yellow")):
                with pytest.raises(ValidationError):
                    ctx[name] = bad
            ctx["ranged"], ctx["pattern"], ctx["choice"] = 0.7, "XYZ789", "blue"
            assert ctx.get_variables(["ranged", "pattern", "choice"]) == {
                "ranged": 0.7,
                "pattern": "XYZ789",
                "choice": "blue",
            }

    def test_type_errors_in_both_backends(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx.register_variable("typed", VariableType.INTEGER, 42)
            with pytest.raises(ValidationError, match="Cannot convert") as local_error:
                ctx["typed"] = "not an integer"
            ctx.ensure_bridged()
            with pytest.raises(ValidationError, match="Cannot convert") as bridged_error:
                ctx["typed"] = "not an integer"
            assert str(local_error.value) == str(bridged_error.value)
            assert ctx["typed"] == 42

    def test_start_bridged(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge, start_bridged=True) as ctx:
            assert ctx.is_bridged
            assert ctx.backend.switches == 0
            ctx["x"] = 1
            assert session_id in bridge.list_sessions()

    def test_local_first_factory_and_bridge_given_late(self, frontend, session_id: str) -> None:
        with local_first(session_id) as ctx:
            ctx["x"] = 1
            with pytest.raises(ValidationError, match="no bridge"):
                ctx.ensure_bridged()
            assert ctx.backend.failed_switches == 0  # not an attempt: nothing to move to
            ctx.ensure_bridged(bridge=frontend.target)  # a target: the context connects and owns it
            assert ctx.is_bridged
            assert ctx["x"] == 1


class TestPrograms:
    @pytest.mark.parametrize(
        "spec",
        [
            {"type": "dspy", "requires_python": True},
            {"requires_bridge": True},
            {"shared": True},
            SimpleNamespace(requires_bridge=True),
            SimpleNamespace(requires_python=True),
        ],
        ids=[
            "requires_python key",
            "requires_bridge key",
            "shared key",
            "requires_bridge attr",
            "requires_python attr",
        ],
    )
    def test_a_program_that_shares_moves_the_session(self, bridge, session_id: str, spec: Any) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx["pre_switch"] = "local_value"
            ctx.register_program("prog", spec)
            assert ctx.backend.kind == "bridged"
            assert ctx.backend.switches == 1
            assert ctx["pre_switch"] == "local_value"
            assert "prog" in ctx.programs

    def test_a_local_program_stays_local(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx.register_program("elixir_only", {"type": "native", "requires_python": False})
            ctx.register_program("overridden", {"requires_python": True}, requires_bridge=False)
            assert ctx.backend.kind == "local"
            ctx.register_program("forced", {}, requires_bridge=True)
            assert ctx.backend.kind == "bridged"

    def test_a_program_whose_move_fails_is_not_registered(self, session_id: str) -> None:
        unreachable = connect(f"127.0.0.1:{free_port()}", timeout=0.5)
        with unreachable, LocalFirstContext(session_id, bridge=unreachable) as ctx:
            with pytest.raises(BridgeUnavailableError):
                ctx.register_program("needs_sharing", {"shared": True})
            assert "needs_sharing" not in ctx.programs


class TestReferenceWorkflows:
    def test_llm_configuration_workflow(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx.register_variable(
                "model",
                VariableType.STRING,
                "gpt-3.5-turbo",
                constraints={"enum": ["gpt-3.5-turbo", "gpt-4", "claude-3"]},
                description="LLM model selection",
            )
            ctx.register_variable(
                "temperature",
                VariableType.FLOAT,
                0.7,
                constraints={"min": 0.0, "max": 2.0},
                description="Generation randomness",
            )
            ctx.register_variable(
                "max_tokens",
                VariableType.INTEGER,
                256,
                constraints={"min": 1, "max": 4096},
                description="Maximum response length",
            )
            ctx.register_variable(
                "top_p",
                VariableType.FLOAT,
                1.0,
                constraints={"min": 0.0, "max": 1.0},
                description="Nucleus sampling",
            )
            for update in (
                {"temperature": 0.5, "max_tokens": 512},
                {"model": "gpt-4", "temperature": 0.8},
                {"max_tokens": 1024, "top_p": 0.95},
            ):
                assert all(result is True for result in ctx.update_variables(update).values())
            final = {"model": "gpt-4", "temperature": 0.8, "max_tokens": 1024, "top_p": 0.95}
            assert ctx.get_variables(list(final)) == final
            ctx.register_program("llm_program", {"type": "dspy", "requires_python": True})
            assert ctx.is_bridged
            assert ctx.get_variables(["model", "temperature"]) == {"model": "gpt-4", "temperature": 0.8}

    def test_multi_stage_pipeline(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx.register_variable("input_text", VariableType.STRING, "Process this text")
            ctx.register_variable("preprocessing_done", VariableType.BOOLEAN, False)
            ctx["input_text"] = ctx["input_text"].upper()
            ctx["preprocessing_done"] = True
            assert ctx.backend.kind == "local"
            ctx.register_program(
                "nlp_analyzer", {"type": "python", "requires_python": True, "module": "TextAnalyzer"}
            )
            assert ctx.backend.kind == "bridged"
            assert ctx["input_text"] == "PROCESS THIS TEXT"
            assert ctx["preprocessing_done"] is True
            ctx.register_variable("analysis_complete", VariableType.BOOLEAN, True)
            ctx.register_variable("results", VariableType.STRING, "Analysis results here")
            names = {v["name"] for v in ctx.list_variables()}
            assert {"input_text", "preprocessing_done", "analysis_complete", "results"} <= names


class TestFailedMoves:
    """Every failure leaves the context local with every value, counts a failed switch, and raises."""

    def _fails(self, ctx: LocalFirstContext, error: type[BaseException], match: str | None = None) -> None:
        before, revision = comparable(ctx.list_variables()), ctx.revision
        with pytest.raises(error, match=match):
            ctx.ensure_bridged()
        assert ctx.backend.failed_switches == 1
        assert ctx.backend.switches == 0
        assert isinstance(ctx.backend.last_error, error)
        assert_nothing_lost(ctx, before, revision)

    def test_bridge_unreachable(self, frontend, session_id: str) -> None:
        with (
            connect(f"127.0.0.1:{free_port()}", timeout=0.5) as nowhere,
            LocalFirstContext(session_id, bridge=nowhere) as ctx,
        ):
            populate(ctx)
            self._fails(ctx, BridgeUnavailableError)
            # The same context moves once a bridge answers.
            with connect(frontend.target) as bridge:
                ctx.ensure_bridged(bridge=bridge)
                assert ctx.backend.switches == 1
                assert ctx.backend.failed_switches == 1
                assert ctx["tokens"] == 1024

    def test_credentials_refused(self, frontend_factory, session_id: str) -> None:
        guarded = frontend_factory(auth_tokens="right-token")
        with (
            connect(guarded.target, token="wrong-token") as bridge,
            LocalFirstContext(session_id, bridge=bridge) as ctx,
        ):
            populate(ctx)
            self._fails(ctx, AuthenticationError)

    def test_a_limit_of_the_bridge(self, frontend_factory, session_id: str) -> None:
        strict = frontend_factory(max_variables_per_session=5)
        with connect(strict.target) as bridge, LocalFirstContext(session_id, bridge=bridge) as ctx:
            populate(ctx)  # seven variables
            self._fails(ctx, LimitExceededError)

    def test_session_already_on_the_bridge_with_other_content(self, bridge, session_id: str) -> None:
        with bridge.session(session_id) as other:
            other["theirs"] = "keep me"
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            populate(ctx)
            self._fails(ctx, AlreadyExistsError)
        with bridge.session(session_id) as other:
            assert other.list_variables()[0]["name"] == "theirs"  # nothing of ours went in

    def test_an_answer_that_does_not_verify(self, relay: Relay, session_id: str) -> None:
        def wrong_count(request: bytes, forward: Any, context: grpc.ServicerContext) -> bytes:
            parsed = pb.ImportSessionRequest.FromString(request)
            session = pb.Session(session_id=parsed.session_id, revision=parsed.revision + 1, variable_count=0)
            return pb.ImportSessionResponse(session=session, imported=True).SerializeToString()

        relay.hooks["ImportSession"] = wrong_count
        with connect(relay.target) as bridge, LocalFirstContext(session_id, bridge=bridge) as ctx:
            populate(ctx)
            self._fails(ctx, BridgeError, "could not be verified")

    def test_writers_busy_past_the_timeout(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx["slow"] = 0
            inside, release = threading.Event(), threading.Event()

            def slow_update(value: int) -> int:
                inside.set()
                release.wait(10)
                return value + 1

            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(ctx.update, "slow", slow_update)
                inside.wait(10)
                with pytest.raises(BridgeError, match="writers were still busy"):
                    ctx.ensure_bridged(timeout=0.05)
                release.set()
                pending.result(10)
            assert ctx["slow"] == 1
            assert ctx.backend.failed_switches == 1
            ctx.ensure_bridged()
            assert ctx["slow"] == 1


class TestLostReplies:
    def test_a_reply_lost_after_the_import_ran_is_retried_safely(self, relay: Relay, session_id: str) -> None:
        drops = [1]

        def drop_first_reply(request: bytes, forward: Any, context: grpc.ServicerContext) -> bytes:
            reply = forward(request)  # the import ran on the bridge
            if drops[0]:
                drops[0] -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost")
            return reply  # type: ignore[no-any-return]

        relay.hooks["ImportSession"] = drop_first_reply
        with connect(relay.target) as bridge, LocalFirstContext(session_id, bridge=bridge) as ctx:
            populate(ctx)
            ctx.ensure_bridged()  # retried: the bridge recognizes its own import
            assert ctx.backend.switches == 1
            assert relay.calls["ImportSession"] == 2
            assert ctx["tokens"] == 1024

    def test_an_unknown_outcome_is_resolved_by_the_next_attempt(self, relay: Relay, session_id: str) -> None:
        lose_replies = [True]

        def lose_every_reply(request: bytes, forward: Any, context: grpc.ServicerContext) -> bytes:
            reply = forward(request)
            if lose_replies[0]:
                context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost")
            return reply  # type: ignore[no-any-return]

        relay.hooks["ImportSession"] = lose_every_reply
        with connect(relay.target, timeout=2) as bridge, LocalFirstContext(session_id, bridge=bridge) as ctx:
            populate(ctx)
            with pytest.raises(BridgeUnavailableError):
                ctx.ensure_bridged()
            assert not ctx.is_bridged  # the import did run, but the context cannot know: it stays local
            lose_replies[0] = False
            ctx.ensure_bridged()  # the same import again: "already done", not ALREADY_EXISTS
            assert ctx.is_bridged
            assert ctx["tokens"] == 1024


class TestConcurrency:
    THREADS, UPDATES = 4, 1500

    def _hammer(self, ctx: LocalFirstContext, switch: Any) -> tuple[int, int]:
        """(updates made before the switch returned, after it)."""
        ctx.register_variable("counter", VariableType.INTEGER, 0)
        started = threading.Barrier(self.THREADS + 1)
        halfway, switched = threading.Event(), threading.Event()
        counts = [[0, 0] for _ in range(self.THREADS)]

        def work(index: int) -> None:
            started.wait()
            for i in range(self.UPDATES):
                ctx.update("counter", lambda n: n + 1)
                counts[index][switched.is_set()] += 1
                if index == 0 and i == self.UPDATES // 2:
                    halfway.set()
                    switched.wait(60)  # the others go on writing while the switch runs

        with ThreadPoolExecutor(self.THREADS) as pool:
            done = [pool.submit(work, i) for i in range(self.THREADS)]
            started.wait()
            halfway.wait(60)
            try:
                switch()
            finally:
                switched.set()
            for future in done:
                future.result(120)
        assert ctx["counter"] == self.THREADS * self.UPDATES
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    def test_updates_across_a_move(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            _, after = self._hammer(ctx, ctx.ensure_bridged)
            assert ctx.is_bridged
            assert after >= self.UPDATES - self.UPDATES // 2 - 1  # thread 0 wrote its last 749 on the bridge
            with bridge.session(session_id) as other:
                assert other["counter"] == self.THREADS * self.UPDATES

    def test_updates_across_a_failed_move(self, session_id: str) -> None:
        with (
            connect(f"127.0.0.1:{free_port()}", timeout=0.5) as nowhere,
            LocalFirstContext(session_id, bridge=nowhere) as ctx,
        ):

            def failing_switch() -> None:
                with pytest.raises(BridgeUnavailableError):
                    ctx.ensure_bridged()

            _, after = self._hammer(ctx, failing_switch)
            assert not ctx.is_bridged
            assert after >= self.UPDATES - self.UPDATES // 2 - 1

    def test_readers_never_wait_and_writers_wait_for_the_move(self, relay: Relay, session_id: str) -> None:
        in_import, reads_done = threading.Event(), threading.Event()

        def hold_until_read(request: bytes, forward: Any, context: grpc.ServicerContext) -> bytes:
            in_import.set()
            if not reads_done.wait(20):  # readers blocked by the move would never get here
                context.abort(grpc.StatusCode.UNAVAILABLE, "readers did not make progress during the move")
            return forward(request)  # type: ignore[no-any-return]

        relay.hooks["ImportSession"] = hold_until_read
        with connect(relay.target, timeout=30) as bridge, LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx["x"] = 1

            def reader() -> int:
                in_import.wait(20)
                for _ in range(1000):
                    assert ctx["x"] == 1
                reads_done.set()
                return 1000

            def writer() -> int:
                in_import.wait(20)
                return ctx.update_variable("x", 2)  # waits for the move, then lands on the bridge

            with ThreadPoolExecutor(3) as pool:
                reads, write = pool.submit(reader), pool.submit(writer)
                ctx.ensure_bridged()
                assert reads.result(30) == 1000
                assert write.result(30) == 1
            with bridge.session(session_id) as other:
                assert other["x"] == 2


class TestWatchAcrossTheMove:
    def test_an_iterator_opened_before_the_move_goes_on_without_a_gap(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx["a"] = 0
            events = ctx.watch(from_revision=0)
            ctx["a"] = 1
            ctx["b"] = "x"
            local_revision = ctx.revision
            ctx.ensure_bridged()
            ctx["a"] = 2
            ctx.delete_variable("b")
            seen = [next(events) for _ in range(6)]
            events.close()  # type: ignore[attr-defined]
            assert [e.revision for e in seen] == list(range(1, 7))
            assert [e.kind for e in seen] == [
                "registered",
                "updated",
                "registered",
                "imported",
                "updated",
                "deleted",
            ]
            assert seen[3].revision == local_revision + 1
            assert {c.name for c in seen[3].changes} == {"a", "b"}
            assert (seen[4].changes[0].name, seen[4].changes[0].value) == ("a", 2)

    def test_a_filtered_iterator_resumes_where_it_scanned(self, bridge, session_id: str) -> None:
        with LocalFirstContext(session_id, bridge=bridge) as ctx:
            ctx["watched"] = 0
            events = ctx.watch(["watched"])  # pulled only after the move: it still starts locally
            ctx["other"] = 1  # scanned and skipped by the iterator, never delivered
            ctx.ensure_bridged()
            ctx["watched"] = 5
            kinds = [(e.kind, e.revision) for e in (next(events), next(events))]
            events.close()  # type: ignore[attr-defined]
            assert kinds == [("imported", 3), ("updated", 4)]


def test_an_import_repeated_with_the_same_time_is_already_done(bridge, session_id: str) -> None:
    from unified_bridge._local_store import LocalStore

    store = LocalStore(session_id)
    store.register("x", VariableType.INTEGER, 3)
    snapshot = store.snapshot()
    moved = datetime(2026, 12, 4, 12, 0)
    assert bridge.import_session(snapshot, migrated_at=moved).imported is True
    assert bridge.import_session(snapshot, migrated_at=moved).imported is False  # a lost reply's retry
    with pytest.raises(AlreadyExistsError):
        bridge.import_session(snapshot)  # stamped now: other content
