"""The local backend against the bridged one and a model: one random program, three runs.

Every step runs the same call on a :class:`LocalSessionContext` and on a bridged :class:`SessionContext`
(the shared in-process frontend over the test Redis) and checks that both return the same value, or
raise the same exception class with the same message. A plain-Python model (values, versions,
definitions, the revision) says what must happen wherever it knows the answer: which calls succeed,
the values and versions they leave behind, and by how much the revision moves.

Ids carry a random suffix, so the two backends' ids differ: messages and results are compared with
every id written ``var_<name>_<id>``, and ids themselves are checked for their form and for staying
the same from step to step.

The second half checks that the local and local-first contexts have the public methods of the
bridged ones, with the same signatures.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from unified_bridge import (
    AsyncLocalFirstContext,
    AsyncLocalSessionContext,
    AsyncSessionContext,
    LocalFirstContext,
    LocalSessionContext,
    SessionContext,
    VariableType,
)
from unified_bridge.errors import (
    AlreadyExistsError,
    ValidationError,
    VariableNotFoundError,
    VersionConflictError,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

# --- the program's vocabulary ---------------------------------------------------------------------

#: Valid names, few enough that registrations, writes and deletes keep meeting each other.
NAMES = ("a", "b", "c", "var_x", "_d.e-f")
#: Not valid as a variable name (the id-like ones are valid references, but not names).
BAD_NAMES = ("bad name", "", "var_x_0123abcd", "var_a_0123abcd", "9lives", "n" * 129, "a:b")
#: References that are no name a program registers here (looked up: not found, or invalid).
OTHER_REFS = ("bad name", "", "var_x_0123abcd", "zz", "n" * 129, "n" * 150, "a*")
#: The references no request may carry (a variable would be not found, these are not even asked for).
INVALID_REFS = frozenset({"bad name", "", "n" * 150, "a*"})

# (type, constraints, description, metadata): the definitions registrations pick from.
Def = tuple[Any, dict[str, Any] | None, str | None, dict[str, Any] | None]
DEFINITIONS: tuple[Def, ...] = (
    ("integer", {"min": 0, "max": 100}, None, None),
    (VariableType.INTEGER, None, None, None),  # what ``ctx[name] = 5`` registers
    ("INTEGER", {"min": 0, "max": 100}, "a counter", None),  # the first, with a description
    ("integer", {"min": 0, "max": 100}, None, {"unit": "steps"}),  # the first, with metadata
    ("float", {"min": -1.0, "max": 1.0}, None, None),
    ("float", None, None, None),
    ("string", {"enum": ["x", "y", "z"]}, None, None),
    ("string", {"max_length": 3}, None, None),
    ("boolean", None, None, None),
    ("embedding", {"dimensions": 3}, None, None),
    ("embedding", None, None, None),
)
BAD_DEFINITIONS: tuple[Def, ...] = (
    ("complex", None, None, None),
    ("integer", {"min": 5, "max": 1}, None, None),
    ("string", {"dimensions": 3}, None, None),
    ("integer", {"bogus": 1}, None, None),
    ("integer", None, None, {"": "x"}),
    ("integer", None, None, {"unit": 1}),
)

VALUES = st.one_of(
    st.integers(-3, 120),
    st.sampled_from([0.0, 0.5, -0.5, 1.0, 3.0, 1.5, -2.0, 250.0, math.inf]),
    st.sampled_from(["x", "y", "z", "xy", "xyzw", "", "7", "true", " False"]),
    st.booleans(),
    st.sampled_from([[0.1, 0.2, 0.3], [1, 2, 3], [0.5, 0.5], [], [1.0, True, 2.0], (0.25, 0.5, 0.75)]),
)
GLOBS = (None, "", "*", "a*", "?", "[ab]*", "[!a]*", "var_*", "*.*", "zz", "_*", "*[-]*")


def _double(value: Any) -> Any:
    return value * 2


def _plus_one(value: Any) -> Any:
    return value + 1


def _to_x(value: Any) -> Any:
    return "x"


def _fails(value: Any) -> Any:
    return 1 / 0


# Functions for update(name, fn); any exception they raise must come out of both backends as is.
UPDATE_FNS: tuple[Callable[[Any], Any], ...] = (lambda value: value, _double, _plus_one, _to_x, _fails)


# --- the model ------------------------------------------------------------------------------------

_INVALID = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def model_normalize(vtype: str, constraints: dict[str, Any], value: Any) -> Any:
    """The value a variable of this definition stores for ``value``, or ``_INVALID``.

    Written independently of ``unified_bridge.types`` for the values the program uses (README:
    integer accepts whole floats and rejects booleans; NaN and inf never pass a numeric bound)."""
    result: Any
    if vtype == "integer":
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int):
            result = value
        elif isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                return _INVALID
            result = int(value)
        elif isinstance(value, str):
            try:
                result = int(value)
            except ValueError:
                return _INVALID
        else:
            return _INVALID
    elif vtype == "float":
        if isinstance(value, bool):
            return _INVALID
        if _is_number(value):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value)
            except ValueError:
                return _INVALID
        else:
            return _INVALID
        if ("min" in constraints or "max" in constraints) and not math.isfinite(result):
            return _INVALID
    elif vtype == "string":
        if not isinstance(value, str):
            return _INVALID
        if "max_length" in constraints and len(value) > constraints["max_length"]:
            return _INVALID
        if "enum" in constraints and value not in constraints["enum"]:
            return _INVALID
        return value
    elif vtype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return _INVALID
    elif vtype == "embedding":
        if not isinstance(value, list | tuple) or not value:
            return _INVALID
        if not all(_is_number(item) and math.isfinite(item) for item in value):
            return _INVALID
        if "dimensions" in constraints and len(value) != constraints["dimensions"]:
            return _INVALID
        return [float(item) for item in value]
    else:  # pragma: no cover - the program uses no other type
        raise AssertionError(vtype)
    if "min" in constraints and result < constraints["min"]:
        return _INVALID
    if "max" in constraints and result > constraints["max"]:
        return _INVALID
    return result


def model_infer(value: Any) -> str | None:
    """The type ``ctx[name] = value`` registers, or None when none can be inferred."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple) and value and all(_is_number(item) for item in value):
        return "embedding"
    return None


def _definition_key(definition: Def) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    vtype, constraints, description, metadata = definition
    return str(VariableType.parse(vtype)), dict(constraints or {}), description or "", dict(metadata or {})


@dataclasses.dataclass
class Var:
    vtype: str
    constraints: dict[str, Any]
    description: str
    metadata: dict[str, Any]
    value: Any
    version: int = 0


@dataclasses.dataclass
class Model:
    variables: dict[str, Var] = dataclasses.field(default_factory=dict)
    revision: int = 0


# --- comparing outcomes ---------------------------------------------------------------------------

_ID = re.compile(r"var_([A-Za-z0-9_.\-]+?)_[0-9a-f]{8}(?![0-9a-f])")
_ID_FORM = re.compile(r"var_(.+)_[0-9a-f]{8}")


def _typed(value: Any) -> Any:
    """``value`` with every leaf tagged by its type (so 3 and 3.0, or 1 and True, differ) and every id
    written ``var_<name>_<id>`` (the suffix is random per backend)."""
    if isinstance(value, dict):
        return {_typed(key): _typed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(item) for item in value])
    if isinstance(value, VariableType):
        return ("VariableType", value.value)
    if isinstance(value, str):
        return ("str", _ID.sub(r"var_\1_<id>", value))
    return (type(value).__name__, value)


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    result: Any = None
    error: type[BaseException] | None = None
    message: str = ""

    def comparable(self) -> tuple[Any, ...]:
        if self.ok:
            return ("ok", _typed(self.result))
        return ("error", self.error, _ID.sub(r"var_\1_<id>", self.message))


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(True, call())
    except Exception as exc:  # every exception must agree, whatever its class
        return Outcome(False, error=type(exc), message=str(exc))


def _without_volatile(info: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in info.items() if key not in ("id", "created_at", "updated_at")}


_sessions = itertools.count()


class Backends(RuleBasedStateMachine):
    """Set up by the test function: ``channel`` reaches the shared frontend, ``session_prefix`` is
    unique to the test."""

    channel: grpc.Channel
    session_prefix: str

    def __init__(self) -> None:
        super().__init__()
        self.session = f"{self.session_prefix}_{next(_sessions)}"
        self.stub = pb_grpc.UnifiedBridgeStub(self.channel)
        self.local = LocalSessionContext(self.session)
        self.bridged = SessionContext(self.stub, self.session)
        self.model = Model()
        # name -> id, per backend: ids must stay the same until the variable is deleted.
        self.ids: dict[str, dict[str, str]] = {"local": {}, "bridged": {}}
        self.stale: dict[str, list[str]] = {"local": [], "bridged": []}
        self.bridged_exact = True  # whether bridged.revision must equal the model's right now
        self.revision_lag_seen = False

    def teardown(self) -> None:
        self.local.close()
        self.bridged.delete_session()

    # --- helpers ---------------------------------------------------------------------------------

    def both(self, call: Callable[[Any, dict[str, str]], Any]) -> Outcome:
        """Run ``call(ctx, ids)`` on both backends; they must agree. Returns the local outcome."""
        local = _outcome(lambda: call(self.local, self.ids["local"]))
        bridged = _outcome(lambda: call(self.bridged, self.ids["bridged"]))
        assert local.comparable() == bridged.comparable(), (local, bridged)
        return local

    def expect(self, outcome: Outcome, error: type[BaseException] | None) -> None:
        if error is None:
            assert outcome.ok, outcome
        else:
            assert not outcome.ok, (outcome, error)
            assert outcome.error is error, (outcome, error)

    def ref_of(self, ids: dict[str, str], name: str, by_id: bool) -> str:
        return ids.get(name, name) if by_id else name

    def wrote(self, changed: bool) -> None:
        """A write that returns the session revision: the bridged context knows it exactly now."""
        if changed:
            self.model.revision += 1
            self.bridged_exact = True

    def registered(self, name: str, var: Var) -> None:
        self.model.variables[name] = var
        self.model.revision += 1
        self.bridged_exact = True  # RegisterVariableResponse carries the revision

    def deleted(self, name: str) -> None:
        del self.model.variables[name]
        for side in ("local", "bridged"):
            self.stale[side].append(self.ids[side].pop(name))

    def writable(self, name: str, value: Any) -> Any:
        var = self.model.variables.get(name)
        return _INVALID if var is None else model_normalize(var.vtype, var.constraints, value)

    # --- registrations ---------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), definition=st.sampled_from(DEFINITIONS), value=VALUES)
    def register(self, name: str, definition: Def, value: Any) -> None:
        vtype, constraints, description, metadata = definition
        outcome = self.both(
            lambda ctx, ids: ctx.register_variable(name, vtype, value, constraints, metadata, description)
        )
        key = _definition_key(definition)
        normalized = model_normalize(key[0], key[1], value)
        if normalized is _INVALID:
            self.expect(outcome, ValidationError)
            return
        known = self.model.variables.get(name)
        if known is not None:
            if (known.vtype, known.constraints, known.description, known.metadata) == key:
                self.expect(outcome, None)  # a repeat: the existing id, nothing changes
                assert outcome.result == self.ids["local"][name]
            else:
                self.expect(outcome, AlreadyExistsError)
            return
        self.expect(outcome, None)
        self.registered(name, Var(*key, normalized))
        self.note_new_id(name, outcome.result)

    def note_new_id(self, name: str, local_id: str) -> None:
        self.ids["local"][name] = local_id
        self.ids["bridged"][name] = self.bridged.get_variable_info(name)["id"]
        for side in ("local", "bridged"):
            found = _ID_FORM.fullmatch(self.ids[side][name])
            assert found is not None, self.ids[side][name]
            assert found.group(1) == name, self.ids[side][name]
            assert self.ids[side][name] not in self.stale[side]

    @rule(name=st.sampled_from(BAD_NAMES + NAMES), definition=st.sampled_from(DEFINITIONS + BAD_DEFINITIONS))
    def register_invalid(self, name: str, definition: Def) -> None:
        if name in NAMES and definition in DEFINITIONS:
            return  # a valid registration: the job of ``register``
        vtype, constraints, description, metadata = definition
        value = {"integer": 1, "float": 0.5, "string": "x", "boolean": True}.get(
            str(vtype).lower(), [0.0, 0.0, 0.0]
        )
        outcome = self.both(
            lambda ctx, ids: ctx.register_variable(name, vtype, value, constraints, metadata, description)
        )
        self.expect(outcome, ValidationError)

    @rule(name=st.sampled_from(NAMES), value=VALUES)
    def register_again(self, name: str, value: Any) -> None:
        """Another value under the same definition: still a repeat (the value is not part of it)."""
        var = self.model.variables.get(name)
        if var is None:
            return
        outcome = self.both(
            lambda ctx, ids: ctx.register_variable(
                name, var.vtype, value, var.constraints or None, var.metadata or None, var.description or None
            )
        )
        if model_normalize(var.vtype, var.constraints, value) is _INVALID:
            self.expect(outcome, ValidationError)
        else:
            self.expect(outcome, None)

    # --- writes ----------------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES + BAD_NAMES), value=VALUES)
    def set_item(self, name: str, value: Any) -> None:
        def call(ctx: Any, ids: dict[str, str]) -> None:
            ctx[name] = value

        outcome = self.both(call)
        var = self.model.variables.get(name)
        if name not in NAMES:
            self.expect(outcome, ValidationError)
        elif var is not None:
            normalized = self.writable(name, value)
            self.expect(outcome, ValidationError if normalized is _INVALID else None)
            if outcome.ok:
                var.value, var.version = normalized, var.version + 1
                self.wrote(True)
        else:
            vtype = model_infer(value)
            normalized = _INVALID if vtype is None else model_normalize(vtype, {}, value)
            self.expect(outcome, ValidationError if normalized is _INVALID else None)
            if outcome.ok:
                assert vtype is not None
                self.registered(name, Var(vtype, {}, "", {}, normalized))
                self.note_new_id(name, self.local.get_variable_info(name)["id"])

    @rule(
        name=st.sampled_from(NAMES + OTHER_REFS),
        by_id=st.booleans(),
        value=VALUES,
        expected=st.one_of(st.none(), st.integers(-1, 1)),
    )
    def update_variable(self, name: str, by_id: bool, value: Any, expected: int | None) -> None:
        var = self.model.variables.get(name)
        expected_version = None if expected is None else (var.version if var else 0) + expected
        if expected_version == -1:
            # No variable has a negative version: both backends refuse the argument itself, first.
            outcome = self.both(
                lambda ctx, ids: ctx.update_variable(self.ref_of(ids, name, by_id), value, -1)
            )
            self.expect(outcome, ValidationError)
            assert outcome.message == "expected_version must be a whole number of at least 0, got -1"
            return
        outcome = self.both(
            lambda ctx, ids: ctx.update_variable(self.ref_of(ids, name, by_id), value, expected_version)
        )
        if var is None:
            self.expect(outcome, ValidationError if name in INVALID_REFS else VariableNotFoundError)
            return
        normalized = self.writable(name, value)
        if normalized is _INVALID:
            self.expect(outcome, ValidationError)  # checked before the version is looked at
            return
        if expected_version is not None and expected_version != var.version:
            self.expect(outcome, VersionConflictError)
            return
        self.expect(outcome, None)
        var.value, var.version = normalized, var.version + 1
        assert outcome.result == var.version
        self.wrote(True)

    @precondition(lambda self: bool(self.stale["local"]))
    @rule(data=st.data())
    def use_stale_id(self, data: st.DataObject) -> None:
        """An id of a deleted variable names nothing, even when the name is registered again."""
        index = data.draw(st.integers(0, len(self.stale["local"]) - 1))
        outcome = self.both(lambda ctx, ids: ctx.update_variable(self.stale[self._side(ctx)][index], 1))
        self.expect(outcome, VariableNotFoundError)
        outcome = self.both(lambda ctx, ids: ctx.get_variable(self.stale[self._side(ctx)][index]))
        self.expect(outcome, VariableNotFoundError)

    def _side(self, ctx: Any) -> str:
        return "local" if ctx is self.local else "bridged"

    @rule(
        items=st.lists(
            st.tuples(st.sampled_from((*NAMES, "zz", "bad name")), VALUES, st.booleans()),
            max_size=4,
        ),
        atomic=st.booleans(),
    )
    def update_variables(self, items: list[tuple[str, Any, bool]], atomic: bool) -> None:
        # by_id: the item names the variable by its id (so one batch may name a variable twice).
        def updates(ids: dict[str, str]) -> dict[str, Any]:
            return {self.ref_of(ids, name, by_id): value for name, value, by_id in items}

        outcome = self.both(lambda ctx, ids: ctx.update_variables(updates(ids), atomic=atomic))
        # What the model makes of it, item by item (keys as the local backend's refs).
        batch = updates(self.ids["local"])
        by_ref = {self.ref_of(self.ids["local"], name, by_id): name for name, _, by_id in items}
        per_item: dict[str, tuple[str, Any]] = {}
        for ref, value in batch.items():
            name = by_ref[ref]
            per_item[ref] = (name, self.writable(name, value))
        if any(by_ref[ref] == "bad name" for ref in batch):
            # An invalid reference is a bad request, atomic or not.
            self.expect(outcome, ValidationError)
            return
        failed = [ref for ref, (_, normalized) in per_item.items() if normalized is _INVALID]
        if atomic and failed:
            first = per_item[failed[0]][0]
            self.expect(outcome, ValidationError if first in self.model.variables else VariableNotFoundError)
            return
        self.expect(outcome, None)
        assert {ref: result is True for ref, result in outcome.result.items()} == {
            ref: ref not in failed for ref in batch
        }
        for name, normalized in per_item.values():
            if normalized is not _INVALID:
                var = self.model.variables[name]
                var.value, var.version = normalized, var.version + 1
        self.wrote(len(failed) < len(batch))

    @rule(name=st.sampled_from(NAMES + OTHER_REFS), by_id=st.booleans(), fn=st.sampled_from(UPDATE_FNS))
    def update(self, name: str, by_id: bool, fn: Callable[[Any], Any]) -> None:
        outcome = self.both(lambda ctx, ids: ctx.update(self.ref_of(ids, name, by_id), fn))
        var = self.model.variables.get(name)
        if var is None:
            self.expect(outcome, ValidationError if name in INVALID_REFS else VariableNotFoundError)
            return
        try:
            new_value = fn(var.value)
        except Exception as exc:  # fn's own error comes out as it is
            self.expect(outcome, type(exc))
            return
        normalized = model_normalize(var.vtype, var.constraints, new_value)
        if normalized is _INVALID:
            self.expect(outcome, ValidationError)
            return
        self.expect(outcome, None)
        assert outcome.result == new_value  # the value fn returned, as given
        var.value, var.version = normalized, var.version + 1
        self.wrote(True)

    @rule(name=st.sampled_from(NAMES + OTHER_REFS), by_id=st.booleans(), style=st.booleans())
    def delete(self, name: str, by_id: bool, style: bool) -> None:
        def call(ctx: Any, ids: dict[str, str]) -> None:
            ref = self.ref_of(ids, name, by_id)
            if style:
                del ctx[ref]
            else:
                ctx.delete_variable(ref)

        outcome = self.both(call)
        if name in self.model.variables:
            self.expect(outcome, None)
            self.deleted(name)
            self.wrote(True)
        elif name in INVALID_REFS:
            self.expect(outcome, ValidationError)
        else:
            self.expect(outcome, VariableNotFoundError)

    # --- reads -----------------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES + OTHER_REFS), by_id=st.booleans(), style=st.sampled_from(range(4)))
    def read_one(self, name: str, by_id: bool, style: int) -> None:
        def call(ctx: Any, ids: dict[str, str]) -> Any:
            ref = self.ref_of(ids, name, by_id)
            if style == 0:
                return ctx.get_variable(ref)
            if style == 1:
                return ctx[ref]
            if style == 2:
                return ref in ctx
            info = ctx.get_variable_info(ref)
            assert info["id"] == ids[name]
            return _without_volatile(info)

        outcome = self.both(call)
        var = self.model.variables.get(name)
        invalid = name in INVALID_REFS
        if invalid:
            self.expect(outcome, ValidationError)
        elif style == 2:
            assert outcome.result == (var is not None)
        elif var is None:
            self.expect(outcome, VariableNotFoundError)
        elif style == 3:
            self.expect(outcome, None)
            assert outcome.result == {
                "name": name,
                "type": VariableType(var.vtype),
                "value": var.value,
                "constraints": var.constraints,
                "metadata": var.metadata,
                "description": var.description,
                "version": var.version,
            }
        else:
            self.expect(outcome, None)
            assert _typed(outcome.result) == _typed(var.value)

    @rule(
        refs=st.lists(st.tuples(st.sampled_from((*NAMES, "zz", "var_x_0123abcd")), st.booleans()), max_size=4)
    )
    def read_many(self, refs: list[tuple[str, bool]]) -> None:
        outcome = self.both(
            lambda ctx, ids: ctx.get_variables([self.ref_of(ids, name, by_id) for name, by_id in refs])
        )
        missing = [name for name, _ in refs if name not in self.model.variables]
        if missing:
            self.expect(outcome, VariableNotFoundError)
            return
        self.expect(outcome, None)
        local_refs = [self.ref_of(self.ids["local"], name, by_id) for name, by_id in refs]
        assert outcome.result == {ref: self.model.variables[self._name_of(ref)].value for ref in local_refs}

    def _name_of(self, ref: str) -> str:
        for name, var_id in self.ids["local"].items():
            if ref == var_id:
                return name
        return ref

    @rule(pattern=st.sampled_from(GLOBS))
    def list_some(self, pattern: str | None) -> None:
        outcome = self.both(lambda ctx, ids: [_without_volatile(i) for i in ctx.list_variables(pattern)])
        self.expect(outcome, None)
        expected = sorted(name for name in self.model.variables if _glob(pattern, name))
        assert [info["name"] for info in outcome.result] == expected

    # --- after every step ------------------------------------------------------------------------

    @invariant()
    def everything_agrees(self) -> None:
        listed = {"local": self.local.list_variables(), "bridged": self.bridged.list_variables()}
        assert [_typed(_without_volatile(i)) for i in listed["local"]] == [
            _typed(_without_volatile(i)) for i in listed["bridged"]
        ]
        for side, infos in listed.items():
            # Ids: the form var_<name>_<8 hex>, the same from the step that made them until deleted.
            assert {info["name"]: info["id"] for info in infos} == self.ids[side], side
        assert {info["name"]: (info["version"], info["value"]) for info in listed["local"]} == {
            name: (var.version, var.value) for name, var in sorted(self.model.variables.items())
        }
        assert [info["name"] for info in listed["local"]] == sorted(self.model.variables)
        # The revision: the local context's is the session's; the server's is the same; the bridged
        # context's is never ahead, and exact right after a write whose reply carries it.
        assert self.local.revision == self.model.revision
        server = self.stub.GetSession(pb.GetSessionRequest(session_id=self.session))
        assert server.revision == self.model.revision
        if self.bridged_exact:
            assert self.bridged.revision == self.model.revision
        else:
            assert self.bridged.revision <= self.model.revision
            if self.bridged.revision < self.model.revision:
                self.revision_lag_seen = True


def _glob(pattern: str | None, name: str) -> bool:
    """Glob semantics written out: ``*``, ``?``, ``[...]`` and ``[!...]``; no pattern matches all."""
    if not pattern:
        return True
    regex = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            regex += ".*"
        elif char == "?":
            regex += "."
        elif char == "[":
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            i = end
        else:
            regex += re.escape(char)
        i += 1
    return re.fullmatch(regex, name, re.DOTALL) is not None


@pytest.fixture
def machine(frontend: Any, session_id: str) -> Iterator[type[Backends]]:
    with grpc.insecure_channel(frontend.target) as channel:
        Backends.channel = channel
        Backends.session_prefix = session_id
        yield Backends


def test_the_local_backend_behaves_like_the_bridged_one(machine: type[Backends]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def test_the_bridged_revision_counts_a_registration_at_once(frontend: Any, session_id: str) -> None:
    with LocalSessionContext(session_id) as local:
        local.register_variable("a", "integer", 1)
        assert local.revision == 1
    with (
        grpc.insecure_channel(frontend.target) as channel,
        SessionContext(pb_grpc.UnifiedBridgeStub(channel), session_id, cache=False) as bridged,
    ):
        bridged.register_variable("a", "integer", 1)
        try:
            assert bridged.revision == 1
        finally:
            bridged.update_variable("a", 2)
            assert bridged.revision == 2  # a write's reply brings it up to date
            bridged.delete_session()


# --- the same methods, with the same signatures ---------------------------------------------------

_DUNDERS = ("__getitem__", "__setitem__", "__delitem__", "__contains__")
_SYNC_DUNDERS = (*_DUNDERS, "__enter__", "__exit__")
_ASYNC_DUNDERS = ("__aenter__", "__aexit__")
#: What the local-first contexts add (they can move to the bridge), and what a local context adds.
_LOCAL_FIRST_EXTRAS = frozenset(
    {"ensure_bridged", "register_program", "backend", "is_bridged", "programs", "limits"}
)
_ASYNC_LOCAL_FIRST_EXTRAS = _LOCAL_FIRST_EXTRAS | {"start"}


def _members(cls: type, dunders: tuple[str, ...]) -> dict[str, Any]:
    names = {name for name in dir(cls) if not name.startswith("_")} | {
        name for name in dunders if hasattr(cls, name)
    }
    return {name: inspect.getattr_static(cls, name) for name in names}


def _shape(member: Any) -> tuple[Any, ...]:
    """What must agree: a property is a property; a method its kind (coroutine, async generator, plain)
    and its parameters' names, kinds, defaults and annotation text (annotations may be strings)."""
    if isinstance(member, property):
        return ("property",)
    function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
    if not callable(function):
        return ("attribute", type(member).__name__)
    signature = inspect.signature(function)
    parameters = tuple(
        (p.name, p.kind, repr(p.default), str(p.annotation) if p.annotation is not p.empty else None)
        for p in signature.parameters.values()
    )
    kind = (
        "coroutine"
        if inspect.iscoroutinefunction(function)
        else "async generator"
        if inspect.isasyncgenfunction(function)
        else "function"
    )
    return (type(member).__name__, kind, parameters)


@pytest.mark.parametrize(
    ("reference", "others", "dunders", "extras"),
    [
        (SessionContext, (LocalSessionContext, LocalFirstContext), _SYNC_DUNDERS, _LOCAL_FIRST_EXTRAS),
        (
            AsyncSessionContext,
            (AsyncLocalSessionContext, AsyncLocalFirstContext),
            (*_DUNDERS, *_ASYNC_DUNDERS),
            _ASYNC_LOCAL_FIRST_EXTRAS,
        ),
    ],
    ids=["sync", "async"],
)
def test_local_contexts_have_the_bridged_signatures(
    reference: type, others: tuple[type, ...], dunders: tuple[str, ...], extras: frozenset[str]
) -> None:
    wanted = _members(reference, dunders)
    for other in others:
        found = _members(other, dunders)
        missing = sorted(set(wanted) - set(found))
        assert not missing, f"{other.__name__} lacks {missing}"
        unexpected = sorted(set(found) - set(wanted) - extras)
        assert not unexpected, f"{other.__name__} has public members the bridged context lacks: {unexpected}"
        for name, member in wanted.items():
            assert _shape(found[name]) == _shape(member), (other.__name__, name)
