"""SessionContext against real frontends over a real Redis: every behaviour of the reference tests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest

from unified_bridge import (
    AlreadyExistsError,
    BridgeError,
    SessionContext,
    ValidationError,
    VariableNotFoundError,
    VariableType,
    VersionConflictError,
)
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


class TestVariableLifecycle:
    def test_register_and_get(self, ctx: SessionContext) -> None:
        var_id = ctx.register_variable(
            "test_var",
            VariableType.FLOAT,
            3.14,
            constraints={"min": 0, "max": 10},
            metadata={"purpose": "testing"},
        )
        assert var_id.startswith("var_test_var_")
        assert ctx.get_variable("test_var") == 3.14
        assert ctx.get_variable(var_id) == 3.14
        listed = {v["name"]: v for v in ctx.list_variables()}
        assert listed["test_var"]["metadata"] == {"purpose": "testing"}
        assert listed["test_var"]["constraints"] == {"min": 0, "max": 10}
        assert listed["test_var"]["type"] == "float"
        assert listed["test_var"]["id"] == var_id

    def test_register_is_idempotent_for_the_same_definition(self, ctx: SessionContext) -> None:
        first = ctx.register_variable("same", VariableType.INTEGER, 1)
        assert ctx.register_variable("same", VariableType.INTEGER, 1) == first
        with pytest.raises(AlreadyExistsError):
            ctx.register_variable("same", VariableType.STRING, "other")

    def test_update_variable_bumps_version(self, ctx: SessionContext) -> None:
        ctx.register_variable("counter", VariableType.INTEGER, 0)
        assert ctx.update_variable("counter", 42) == 1
        assert ctx.get_variable("counter") == 42
        counter = next(v for v in ctx.list_variables() if v["name"] == "counter")
        assert counter["version"] == 1

    def test_compare_and_set(self, ctx: SessionContext) -> None:
        ctx.register_variable("cas", VariableType.INTEGER, 0)
        assert ctx.update_variable("cas", 1, expected_version=0) == 1
        with pytest.raises(VersionConflictError):
            ctx.update_variable("cas", 2, expected_version=0)
        assert ctx["cas"] == 1

    def test_delete_variable(self, ctx: SessionContext) -> None:
        ctx.register_variable("temp_var", VariableType.STRING, "temporary")
        assert "temp_var" in ctx
        ctx.delete_variable("temp_var")
        assert "temp_var" not in ctx
        with pytest.raises(VariableNotFoundError, match="not found"):
            ctx.get_variable("temp_var")

    def test_constraints_enforced(self, ctx: SessionContext) -> None:
        ctx.register_variable("percentage", VariableType.FLOAT, 0.5, constraints={"min": 0.0, "max": 1.0})
        ctx.update_variable("percentage", 0.8)
        assert ctx["percentage"] == 0.8
        with pytest.raises(ValidationError, match="above maximum"):
            ctx.update_variable("percentage", 1.5)
        assert ctx["percentage"] == 0.8

    def test_list_variables_pattern(self, ctx: SessionContext) -> None:
        for name in ("lr_a", "lr_b", "other"):
            ctx[name] = 1.0
        assert [v["name"] for v in ctx.list_variables("lr_*")] == ["lr_a", "lr_b"]

    def test_session_created_when_missing(self, frontend, session_id: str) -> None:
        with grpc.insecure_channel(frontend.target) as channel:
            stub = pb_grpc.UnifiedBridgeStub(channel)
            with SessionContext(stub, session_id) as first:
                first["x"] = 1
            with SessionContext(stub, session_id) as again:  # exists now: reused, not reset
                assert again["x"] == 1


class TestBatchOperations:
    def test_batch_get(self, ctx: SessionContext) -> None:
        for i in range(5):
            ctx.register_variable(f"var_{i}", VariableType.INTEGER, i * 10)
        values = ctx.get_variables([f"var_{i}" for i in range(5)])
        assert values == {f"var_{i}": i * 10 for i in range(5)}

    def test_batch_get_missing_raises(self, ctx: SessionContext) -> None:
        ctx["present"] = 1
        with pytest.raises(VariableNotFoundError, match="absent"):
            ctx.get_variables(["present", "absent"])

    def test_batch_update_non_atomic(self, ctx: SessionContext) -> None:
        ctx.register_variable("a", VariableType.INTEGER, 1)
        ctx.register_variable("b", VariableType.INTEGER, 2)
        ctx.register_variable("c", VariableType.INTEGER, 3, constraints={"max": 10})
        results = ctx.update_variables({"a": 10, "b": 20, "c": 30}, atomic=False)
        assert results["a"] is True
        assert results["b"] is True
        assert isinstance(results["c"], str)
        assert "above maximum" in results["c"]
        assert (ctx["a"], ctx["b"], ctx["c"]) == (10, 20, 3)

    def test_batch_update_atomic(self, ctx: SessionContext) -> None:
        ctx.register_variable("x", VariableType.INTEGER, 1)
        ctx.register_variable("y", VariableType.INTEGER, 2)
        ctx.register_variable("z", VariableType.INTEGER, 3, constraints={"max": 10})
        with pytest.raises(ValidationError):
            ctx.update_variables({"x": 100, "y": 200, "z": 300}, atomic=True)
        assert (ctx["x"], ctx["y"], ctx["z"]) == (1, 2, 3)

    def test_batch_update_unknown_name(self, ctx: SessionContext) -> None:
        ctx["known"] = 1
        results = ctx.update_variables({"known": 2, "unknown": 3})
        assert results["known"] is True
        assert "not found" in str(results["unknown"]).lower()


class TestCaching:
    @pytest.mark.bridged_only  # the near cache's counters and TTL
    def test_repeated_reads_hit_the_cache(self, ctx: SessionContext) -> None:
        ctx.register_variable("cached_var", VariableType.STRING, "test value")
        ctx.clear_cache()
        assert ctx["cached_var"] == "test value"
        before = ctx.cache_stats()
        for _ in range(10):
            assert ctx["cached_var"] == "test value"
        after = ctx.cache_stats()
        assert after["hits"] - before["hits"] == 10
        assert after["misses"] == before["misses"]
        assert 0 < after["hit_rate"] <= 1

    def test_cache_invalidation_on_update(self, ctx: SessionContext) -> None:
        ctx.register_variable("test", VariableType.INTEGER, 1)
        assert ctx["test"] == 1
        ctx["test"] = 2
        assert ctx["test"] == 2

    @pytest.mark.bridged_only  # the near cache's counters and TTL
    def test_cache_ttl(self, ctx: SessionContext) -> None:
        ctx.set_cache_ttl(timedelta(seconds=0))  # every entry is expired at once
        ctx.register_variable("ttl_test", VariableType.INTEGER, 42)
        misses = ctx.cache_stats()["misses"]
        assert ctx["ttl_test"] == 42
        assert ctx["ttl_test"] == 42
        assert ctx.cache_stats()["misses"] == misses + 2

    def test_without_cache_every_read_goes_to_the_server(self, client, session_id: str) -> None:
        with client.session(session_id, cache=False) as plain:
            plain["v"] = 1
            assert plain["v"] == 1
            assert plain["v"] == 1
            assert plain.cache_stats()["hits"] == 0
            assert plain.watch_target is None

    def test_mutable_values_are_copied(self, ctx: SessionContext) -> None:
        ctx.register_variable("emb", VariableType.EMBEDDING, [1.0, 2.0], constraints={"dimensions": 2})
        first = ctx["emb"]
        first.append(99.0)
        assert ctx["emb"] == [1.0, 2.0]


class TestConcurrency:
    def test_concurrent_reads(self, ctx: SessionContext) -> None:
        ctx.register_variable("shared", VariableType.INTEGER, 0)
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: ctx.get_variable("shared"), range(100)))
        assert results == [0] * 100

    def test_functional_updates_are_never_lost(self, ctx: SessionContext) -> None:
        ctx.register_variable("counter", VariableType.INTEGER, 0)

        def increment_50_times(_: int) -> None:
            for _ in range(50):
                ctx.update("counter", lambda v: v + 1)

        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(increment_50_times, range(20)))
        assert ctx["counter"] == 1000
        assert ctx.get_variable_info("counter")["version"] == 1000

    def test_session_isolation(self, frontend, session_id: str) -> None:
        with grpc.insecure_channel(frontend.target) as channel:
            stub = pb_grpc.UnifiedBridgeStub(channel)
            with (
                SessionContext(stub, session_id + "_1") as ctx1,
                SessionContext(stub, session_id + "_2") as ctx2,
            ):
                ctx1.register_variable("isolated", VariableType.STRING, "session1")
                ctx2.register_variable("isolated", VariableType.STRING, "session2")
                assert ctx1["isolated"] == "session1"
                assert ctx2["isolated"] == "session2"
                ctx1["isolated"] = "updated1"
                assert ctx1["isolated"] == "updated1"
                assert ctx2["isolated"] == "session2"


class TestErrorHandling:
    def test_invalid_type_fails_without_a_round_trip(self, ctx: SessionContext) -> None:
        ctx.register_variable("typed", VariableType.INTEGER, 42)
        revision = ctx.revision
        with pytest.raises(ValueError, match="Cannot convert"):
            ctx["typed"] = "not a number"
        assert ctx.revision == revision
        assert ctx["typed"] == 42

    def test_nonexistent_variable(self, ctx: SessionContext) -> None:
        with pytest.raises(KeyError) as exc_info:
            ctx.get_variable("does_not_exist")
        assert "not found" in str(exc_info.value).lower()
        assert isinstance(exc_info.value, VariableNotFoundError)
        assert exc_info.value.grpc_status == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]

    def test_constraint_validation(self, ctx: SessionContext) -> None:
        ctx.register_variable(
            "short_string", VariableType.STRING, "test", constraints={"min_length": 3, "max_length": 10}
        )
        with pytest.raises(ValueError, match=r"short|least|minimum|length"):
            ctx["short_string"] = "a"
        with pytest.raises(ValueError, match=r"long|most|maximum|length"):
            ctx["short_string"] = "a" * 20
        ctx.register_variable(
            "pattern_string", VariableType.STRING, "ABC123", constraints={"pattern": "^[A-Z]+[0-9]+$"}
        )
        ctx["pattern_string"] = "XYZ789"
        with pytest.raises(ValueError, match="pattern"):
            ctx["pattern_string"] = "abc123"
        assert ctx["pattern_string"] == "XYZ789"

    def test_bad_registration_is_rejected_locally(self, ctx: SessionContext) -> None:
        with pytest.raises(ValidationError):
            ctx.register_variable("bad name!", VariableType.INTEGER, 1)
        with pytest.raises(ValidationError, match="above maximum"):
            ctx.register_variable("too_big", VariableType.INTEGER, 11, constraints={"max": 10})

    def test_closed_context_refuses_calls(self, frontend, session_id: str) -> None:
        with grpc.insecure_channel(frontend.target) as channel:
            context = SessionContext(pb_grpc.UnifiedBridgeStub(channel), session_id)
            context["x"] = 1
            context.close()
            with pytest.raises(BridgeError, match="closed"):
                context["x"] = 2


class TestPythonAPIPatterns:
    def test_dict_style_access(self, ctx: SessionContext) -> None:
        ctx["new_var"] = 42
        assert ctx["new_var"] == 42
        assert "new_var" in ctx
        assert "not_exist" not in ctx
        ctx["new_var"] = 100
        assert ctx["new_var"] == 100
        assert ctx.get_variable_info("new_var")["type"] == VariableType.INTEGER
        del ctx["new_var"]
        assert "new_var" not in ctx

    def test_attribute_style_access(self, ctx: SessionContext) -> None:
        ctx.register_variable("attr_var", VariableType.FLOAT, 1.5)
        assert ctx.v.attr_var == 1.5
        ctx.v.attr_var = 2.5
        assert ctx.v.attr_var == 2.5
        ctx.v.auto_attr = "hello"
        assert ctx.v.auto_attr == "hello"
        with pytest.raises(AttributeError):
            _ = ctx.v.missing_attr

    def test_batch_context_manager(self, ctx: SessionContext) -> None:
        for i in range(5):
            ctx[f"batch_{i}"] = i
        with ctx.batch_updates() as batch:
            for i in range(5):
                batch[f"batch_{i}"] = i * 10
            assert ctx[f"batch_{i}"] == i  # nothing is sent before the block ends
        assert batch.results == {f"batch_{i}": True for i in range(5)}
        for i in range(5):
            assert ctx[f"batch_{i}"] == i * 10

    def test_batch_that_raises_commits_nothing(self, ctx: SessionContext) -> None:
        ctx["kept"] = 1

        def abandoned_batch() -> None:
            with ctx.batch_updates() as batch:
                batch["kept"] = 2
                raise RuntimeError("abandon the batch")

        with pytest.raises(RuntimeError):
            abandoned_batch()
        assert ctx["kept"] == 1

    def test_variable_proxy(self, ctx: SessionContext) -> None:
        ctx["proxy_var"] = 0
        var = ctx.variable("proxy_var")
        for i in range(5):
            var.value = i
            assert var.value == i
        assert var.update(lambda v: v + 10) == 14
        assert var.info()["version"] == 6


class TestWatch:
    def test_watch_yields_changes_of_the_named_variables(self, ctx: SessionContext) -> None:
        ctx["watched"] = 0
        ctx["ignored"] = 1
        ctx["watched"] = 1  # a write's reply carries the revision (a registration's does not)
        events = ctx.watch(["watched"], from_revision=ctx.revision)
        ctx["ignored"] = 2
        ctx["watched"] = 2
        ctx.delete_variable("watched")
        first, second = next(events), next(events)
        events.close()  # type: ignore[attr-defined]
        assert (first.kind, first.changes[0].name, first.changes[0].value) == ("updated", "watched", 2)
        assert (second.kind, second.changes[0].name) == ("deleted", "watched")
        assert second.revision == first.revision + 1


class TestClient:
    def test_client_session_with_server_chosen_id(self, client) -> None:
        with client.session(metadata={"owner": "tests"}) as ctx:
            assert ctx.session_id
            ctx["x"] = 1
            assert ctx.session_id in client.list_sessions()
            assert ctx.delete_session() is True

    def test_bad_target(self) -> None:
        from unified_bridge import connect

        with pytest.raises(ValidationError):
            connect("no-port-here")


class TestMessageSizes:
    def test_the_client_accepts_what_a_frontend_may_send(self, frontend_factory, session_id: str) -> None:
        """grpc's own default (4 MiB) is below the frontend's (8 MiB): the SDK raises it to match."""
        from unified_bridge import LimitExceededError, connect

        roomy = frontend_factory(max_value_bytes=6 * 1024 * 1024)
        big = "x" * (5 * 1024 * 1024)
        with connect(roomy.target) as client, client.session(session_id, cache=False) as ctx:
            ctx.register_variable("big", VariableType.STRING, big)
            assert ctx["big"] == big
        small = [("grpc.max_receive_message_length", 1024 * 1024)]
        with (
            connect(roomy.target, options=small) as client,
            client.session(session_id, cache=False) as ctx,
            pytest.raises(LimitExceededError),  # the caller's own option wins
        ):
            ctx.get_variable("big")
