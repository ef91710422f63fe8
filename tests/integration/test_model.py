"""The frontend against a model: random sequences of operations, checked after every step.

Registers, updates (with and without compare-and-set), atomic and non-atomic batches (with repeated
names) and deletes go through real gRPC to real Redis; a plain-Python model says what must happen.
After every step the listing, versions and revision must match the model; at the end, the change
log replayed from revision 0 must be gap-free and rebuild the same values.
"""

from __future__ import annotations

import dataclasses
import itertools

import grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.integration.helpers import EventReader, create_session
from unified_bridge.proto import unified_bridge_pb2 as pb

NAMES = ("a", "b", "c")
# name -> (type, constraints): the definition every registration of that name uses, unless it
# deliberately registers another one (which must be ALREADY_EXISTS).
DEFINITIONS = {
    "a": (pb.VARIABLE_TYPE_INTEGER, pb.Constraints()),
    "b": (pb.VARIABLE_TYPE_STRING, pb.Constraints(max_length=5)),
    "c": (pb.VARIABLE_TYPE_INTEGER, pb.Constraints(max=100)),
}
values = st.one_of(
    st.integers(-5, 120).map(lambda n: ("i", n)), st.text("xyz", max_size=7).map(lambda s: ("s", s))
)
_sessions = itertools.count()


def _proto_value(value: tuple[str, object]) -> pb.Value:
    kind, raw = value
    if kind == "f":
        return pb.Value(float_value=raw)
    return pb.Value(integer_value=raw) if kind == "i" else pb.Value(string_value=raw)


ALTERNATIVE = (pb.VARIABLE_TYPE_FLOAT, pb.Constraints())


def _acceptable(definition: tuple[int, pb.Constraints], value: tuple[str, object]) -> bool:
    kind, raw = value
    var_type, constraints = definition
    if var_type == pb.VARIABLE_TYPE_FLOAT:
        return kind == "f"
    if var_type == pb.VARIABLE_TYPE_INTEGER:
        return kind == "i" and (not constraints.HasField("max") or raw <= constraints.max)
    return kind == "s" and len(raw) <= constraints.max_length


@dataclasses.dataclass
class Model:
    values: dict[str, tuple[str, object]] = dataclasses.field(default_factory=dict)
    versions: dict[str, int] = dataclasses.field(default_factory=dict)
    definitions: dict[str, tuple[int, pb.Constraints]] = dataclasses.field(default_factory=dict)
    revision: int = 0

    def apply_batch(
        self, items: list[tuple[str, tuple[str, object], int | None]], atomic: bool
    ) -> list[bool]:
        """Per-item success, applying items in order (later items see earlier ones' versions)."""
        versions = dict(self.versions)
        outcomes = []
        for name, value, expected in items:
            ok = (
                name in versions
                and _acceptable(self.definitions[name], value)
                and (expected is None or expected == versions[name])
            )
            if ok:
                versions[name] += 1
            outcomes.append(ok)
        if atomic and not all(outcomes):
            return outcomes
        for (name, value, _), ok in zip(items, outcomes, strict=True):
            if ok:
                self.values[name] = value
        self.versions = versions
        if any(outcomes):
            self.revision += 1
        return outcomes


def test_the_frontend_behaves_like_the_model(stub, session_id):
    class Bridge(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.session = f"{session_id}_{next(_sessions)}"
            create_session(stub, self.session)
            self.model = Model()

        def _call(self, method, request) -> grpc.StatusCode:
            try:
                method(request)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        @rule(name=st.sampled_from(NAMES), value=values, alternative=st.booleans())
        def register(self, name, value, alternative):
            definition = ALTERNATIVE if alternative else DEFINITIONS[name]
            if alternative:
                value = ("f", 0.5)
            request = pb.RegisterVariableRequest(
                session_id=self.session,
                name=name,
                type=definition[0],
                constraints=definition[1],
                value=_proto_value(value),
            )
            code = self._call(stub.RegisterVariable, request)
            if not _acceptable(definition, value):
                # A request that is wrong in itself is refused before any state is looked at.
                assert code == grpc.StatusCode.INVALID_ARGUMENT
                return
            if name in self.model.values:
                same = self.model.definitions[name] == definition
                assert code == (grpc.StatusCode.OK if same else grpc.StatusCode.ALREADY_EXISTS)
                return  # idempotent or refused: nothing changes either way
            assert code == (
                grpc.StatusCode.OK if _acceptable(definition, value) else grpc.StatusCode.INVALID_ARGUMENT
            )
            if code == grpc.StatusCode.OK:
                self.model.values[name] = value
                self.model.versions[name] = 0
                self.model.definitions[name] = definition
                self.model.revision += 1

        @rule(name=st.sampled_from(NAMES), value=values, cas=st.booleans(), skew=st.integers(0, 1))
        def set_one(self, name, value, cas, skew):
            expected = self.model.versions.get(name, 0) + skew if cas else None
            request = pb.SetVariableRequest(
                session_id=self.session, name_or_id=name, value=_proto_value(value)
            )
            if expected is not None:
                request.expected_version = expected
            code = self._call(stub.SetVariable, request)
            before = self.model.revision
            (ok,) = self.model.apply_batch([(name, value, expected)], atomic=True)
            assert (code == grpc.StatusCode.OK) == ok, (code, name, value, expected)
            if not ok:
                assert self.model.revision == before
                if name not in self.model.values:
                    assert code == grpc.StatusCode.NOT_FOUND
                elif not _acceptable(self.model.definitions[name], value):
                    assert code == grpc.StatusCode.INVALID_ARGUMENT
                else:
                    assert code == grpc.StatusCode.FAILED_PRECONDITION

        @rule(
            items=st.lists(
                st.tuples(st.sampled_from(NAMES), values, st.one_of(st.none(), st.integers(0, 4))),
                min_size=1,
                max_size=4,
            ),
            atomic=st.booleans(),
        )
        def set_many(self, items, atomic):
            request = pb.SetVariablesRequest(session_id=self.session, atomic=atomic)
            for name, value, expected in items:
                update = request.updates.add(name_or_id=name, value=_proto_value(value))
                if expected is not None:
                    update.expected_version = expected
            try:
                response = stub.SetVariables(request)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                response, code = None, exc.code()
            outcomes = self.model.apply_batch(list(items), atomic)
            if atomic and not all(outcomes):
                assert code != grpc.StatusCode.OK
                return
            assert code == grpc.StatusCode.OK
            assert [result.ok for result in response.results] == outcomes

        @rule(name=st.sampled_from(NAMES))
        def delete(self, name):
            code = self._call(
                stub.DeleteVariable, pb.DeleteVariableRequest(session_id=self.session, name_or_id=name)
            )
            if name in self.model.values:
                assert code == grpc.StatusCode.OK
                del self.model.values[name]
                del self.model.versions[name]
                del self.model.definitions[name]
                self.model.revision += 1
            else:
                assert code == grpc.StatusCode.NOT_FOUND

        @invariant()
        def listing_versions_and_revision_match(self):
            listed = stub.ListVariables(pb.ListVariablesRequest(session_id=self.session)).variables
            seen = {v.name: (v.version, _python(v.value)) for v in listed}
            assert seen == {
                name: (self.model.versions[name], self.model.values[name][1]) for name in self.model.values
            }
            assert (
                stub.GetSession(pb.GetSessionRequest(session_id=self.session)).revision == self.model.revision
            )

        def teardown(self):
            reader = EventReader(stub, self.session)
            try:
                replayed = reader.until_caught_up()
            finally:
                reader.close()
            assert [event.revision for event in replayed] == list(range(1, self.model.revision + 1))
            rebuilt: dict[str, object] = {}
            for event in replayed:
                for change in event.changes:
                    if event.kind == pb.EVENT_KIND_DELETED:
                        rebuilt.pop(change.name, None)
                    else:
                        rebuilt[change.name] = _python(change.value)
            assert rebuilt == {name: value for name, (_, value) in self.model.values.items()}

    run_state_machine_as_test(
        Bridge,
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def _python(value: pb.Value) -> object:
    return getattr(value, value.WhichOneof("kind"))
