"""Everything a session context decides, written once for the sync and the async context.

:class:`SessionCore` owns the near cache, the known variable definitions and the session revision, and
expresses each operation as a *flow* (see :mod:`unified_bridge._calls`): it builds the requests,
validates values early with the shared :mod:`unified_bridge.types` module, decodes the responses and
keeps the cache coherent. The contexts only drive the flows.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from unified_bridge._backoff import backoff_delay
from unified_bridge._cache import UNKNOWN_REVISION, NearCache
from unified_bridge._calls import Flow, Pause, Rpc
from unified_bridge._models import Definition, VariableInfo, decode_change_value, decode_variable
from unified_bridge._rules import check_expected_version
from unified_bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    ValidationError,
    VariableNotFoundError,
    VersionConflictError,
)
from unified_bridge.proto import unified_bridge_pb2 as pb2
from unified_bridge.types import (
    VariableType,
    constraints_to_proto,
    infer_type,
    normalize_value,
    validate_constraints,
    validate_metadata,
    validate_name,
    value_to_proto,
)

__all__ = ["DEFAULT_CACHE_TTL", "SessionCore", "delete_session", "list_sessions"]

logger = logging.getLogger("unified_bridge")

#: Default cache TTL in seconds: a backstop only, coherence comes from the watch stream.
DEFAULT_CACHE_TTL = 60.0

#: update(fn): compare-and-set attempts before giving up with VersionConflictError.
DEFAULT_UPDATE_ATTEMPTS = 1000


class _Definitions:
    """Definitions by id (immutable per id, so never stale) and the name -> id map (which can be)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Definition] = {}
        self._id_by_name: dict[str, str] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str) -> Definition | None:
        found = self._by_id.get(ref)
        if found is not None:
            return found
        var_id = self._id_by_name.get(ref)
        return None if var_id is None else self._by_id.get(var_id)

    def remember(self, definition: Definition) -> None:
        with self._lock:
            self._by_id[definition.id] = definition
            self._id_by_name[definition.name] = definition.id

    def forget(self, var_id: str, name: str) -> None:
        with self._lock:
            self._by_id.pop(var_id, None)
            if self._id_by_name.get(name) == var_id:
                del self._id_by_name[name]

    def forget_names(self) -> None:
        """Events were lost: any name may now mean another id."""
        with self._lock:
            self._id_by_name.clear()


# After a retry, what a repeat of an applied call would answer (see _calls._Attempts): a
# compare-and-set finding the version it wrote itself, a delete by id finding nothing to delete.
_CAS_AMBIGUOUS = frozenset({"FAILED_PRECONDITION"})
_DELETE_AMBIGUOUS = frozenset({"NOT_FOUND"})
_NONE: frozenset[str] = frozenset()


def _conflict_pause(attempt: int) -> Pause:
    # Full jitter: contenders spread out instead of colliding again in lockstep.
    return Pause(backoff_delay(attempt + 1, 0.001, 0.05, full_jitter=True))


# --- flows that need no session state (the clients run them too) ---------------------------------


def delete_session(session_id: str) -> Flow[bool]:
    """DeleteSession (idempotent, so retried): whether the session existed."""
    request = pb2.DeleteSessionRequest(session_id=session_id)
    response: pb2.DeleteSessionResponse = yield Rpc("DeleteSession", request, True)
    return response.deleted


def list_sessions() -> Flow[list[str]]:
    """Every session id, page after page (each page is idempotent, so retried)."""
    ids: list[str] = []
    token = ""
    while True:
        request = pb2.ListSessionsRequest(page_token=token)
        response: pb2.ListSessionsResponse = yield Rpc("ListSessions", request, True)
        ids.extend(response.session_ids)
        token = response.next_page_token
        if not token:
            return ids


class SessionCore:
    """The state and logic of one session context (no I/O)."""

    def __init__(self, session_id: str, *, cache_ttl: float = DEFAULT_CACHE_TTL) -> None:
        self.session_id = session_id
        self.cache = NearCache(cache_ttl)
        self.definitions = _Definitions()
        self.revision = 0
        # Put on every write; the cache's own watch stream lists those writes instead of sending
        # them back ("" until the cache follows a stream, see unified_bridge._watch).
        self.writer = ""

    # --- small helpers ---------------------------------------------------------------------------

    def note_revision(self, revision: int) -> None:
        if revision > self.revision:
            self.revision = revision

    def absorb(
        self,
        var: pb2.Variable,
        token: int | None = None,
        requested: str | None = None,
        as_of: int = UNKNOWN_REVISION,
    ) -> VariableInfo:
        """Decode a variable from the server, remember its definition and, with a token, cache it
        (``as_of``: the session revision it was read at, when the server said)."""
        info = decode_variable(var)
        self.definitions.remember(info.definition)
        if token is not None:
            self.cache.fill(token, info.id, info.name, info.version, info.value, requested, as_of)
        return info

    def _encode(self, definition: Definition, value: Any) -> tuple[Any, pb2.Value]:
        normalized = normalize_value(definition.type, value, definition.constraints)
        return normalized, value_to_proto(definition.type, normalized, definition.constraints)

    # --- reads -----------------------------------------------------------------------------------

    def fetch(self, ref: str) -> Flow[VariableInfo]:
        """GetVariable, filling the cache unless an invalidation arrives meanwhile."""
        token = self.cache.begin_read()
        var = yield Rpc(
            "GetVariable", pb2.GetVariableRequest(session_id=self.session_id, name_or_id=ref), True
        )
        return self.absorb(var, token, ref)

    def get(self, ref: str) -> Flow[Any]:
        info = yield from self.fetch(ref)
        return info.value

    def get_many(self, refs: Iterable[str]) -> Flow[dict[str, Any]]:
        """``{ref: value}``, all at one session revision: from the cache when it can vouch for that
        (see :meth:`NearCache.snapshot`), else from one atomic read of them all."""
        refs = list(refs)
        cached = self.cache.snapshot(refs)
        if cached is not None:
            return cached
        by_key: dict[str, VariableInfo] = {}
        wanted = refs
        while wanted:  # more than one call only when the values do not fit in one response
            token = self.cache.begin_read()
            request = pb2.GetVariablesRequest(session_id=self.session_id, names_or_ids=wanted)
            response: pb2.GetVariablesResponse = yield Rpc("GetVariables", request, True)
            if response.missing:
                raise VariableNotFoundError.for_ref(", ".join(response.missing))
            # A frontend that does not say the revision (0) leaves the values of unknown age.
            as_of = response.revision or UNKNOWN_REVISION
            for var in response.variables:
                info = self.absorb(var, token, as_of=as_of)
                by_key[info.id] = by_key[info.name] = info
            wanted = list(response.deferred)
        for ref in refs:
            if ref not in by_key:
                raise VariableNotFoundError.for_ref(ref)
        return {ref: by_key[ref].value for ref in refs}

    def contains(self, ref: str) -> Flow[bool]:
        if ref in self.cache:
            return True
        try:
            yield from self.fetch(ref)
        except VariableNotFoundError:
            return False
        return True

    def list(self, pattern: str | None) -> Flow[list[dict[str, Any]]]:
        listed: list[dict[str, Any]] = []
        page = ""
        while True:  # one page unless the variables do not fit in one response
            token = self.cache.begin_read()
            request = pb2.ListVariablesRequest(
                session_id=self.session_id, pattern=pattern or "", page_token=page
            )
            response: pb2.ListVariablesResponse = yield Rpc("ListVariables", request, True)
            listed.extend(self.absorb(var, token).as_dict() for var in response.variables)
            page = response.next_page_token
            if not page:
                return listed

    def definition(self, ref: str) -> Flow[tuple[Definition, bool]]:
        """The definition of ``ref`` and whether it came from memory (and so may be stale by name)."""
        known = self.definitions.resolve(ref)
        if known is not None:
            return known, True
        info = yield from self.fetch(ref)
        return info.definition, False

    # --- writes ----------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        var_type: VariableType | str,
        value: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> Flow[tuple[VariableInfo, bool]]:
        """RegisterVariable: (the variable, whether it was created). Idempotent, so retried."""
        validate_name(name)
        vtype = VariableType.parse(var_type)
        checked = validate_constraints(vtype, constraints)
        normalized = normalize_value(vtype, value, checked)
        checked_metadata = validate_metadata(metadata)
        request = pb2.RegisterVariableRequest(
            session_id=self.session_id,
            name=name,
            type=vtype.to_proto(),  # type: ignore[arg-type]  # the proto enum is an int
            value=value_to_proto(vtype, normalized, checked),
            constraints=constraints_to_proto(checked),
            metadata=checked_metadata,
            description=description or "",
        )
        token = self.cache.begin_read()
        response: pb2.RegisterVariableResponse = yield Rpc("RegisterVariable", request, True)
        self.note_revision(response.revision)
        return self.absorb(response.variable, token), response.created

    def set(
        self, ref: str, value: Any, expected_version: int | None = None, *, retry: bool | None = None
    ) -> Flow[int]:
        """SetVariable after a local check; returns the new version.

        The request names the variable by id, so a name re-registered elsewhere is never written with a
        stale definition: the id is then gone, and we look the name up again once.
        """
        check_expected_version(expected_version)
        if retry is None:
            retry = expected_version is not None  # compare-and-set cannot apply twice
        for attempt in (1, 2):
            definition, from_memory = yield from self.definition(ref)
            normalized, proto_value = self._encode(definition, value)
            request = pb2.SetVariableRequest(
                session_id=self.session_id, name_or_id=definition.id, value=proto_value, writer=self.writer
            )
            if expected_version is not None:
                request.expected_version = expected_version
            token = self.cache.begin_read()
            try:
                response: pb2.SetVariableResponse = yield Rpc(
                    "SetVariable", request, retry, _CAS_AMBIGUOUS if expected_version is not None else _NONE
                )
            except VariableNotFoundError:
                self.cache.invalidate(definition.id, definition.name)
                self.definitions.forget(definition.id, definition.name)
                if from_memory and ref != definition.id and attempt == 1:
                    continue
                raise VariableNotFoundError.for_ref(ref) from None
            except BaseException:
                self.cache.invalidate(definition.id, definition.name)  # outcome unknown
                raise
            self.note_revision(response.revision)
            self.cache.write_through(
                token, definition.id, definition.name, response.version, normalized, response.revision
            )
            return response.version
        raise AssertionError("unreachable")  # pragma: no cover

    def set_item(self, name: str, value: Any) -> Flow[None]:
        """``ctx[name] = value``: update, or register with an inferred type when the name is new."""
        if self.definitions.resolve(name) is None:
            try:
                yield from self.fetch(name)
            except VariableNotFoundError:
                try:
                    info, created = yield from self.register(name, infer_type(value), value)
                except AlreadyExistsError:
                    created = False  # registered concurrently with another definition: update it
                else:
                    if created or info.value == value:
                        return
        yield from self.set(name, value)

    def update(self, ref: str, fn: Callable[[Any], Any], max_attempts: int) -> Flow[Any]:
        """Read, apply ``fn``, compare-and-set; on a version conflict read again and retry.

        The compare-and-set itself is not retried on UNAVAILABLE: had the first attempt landed, the retry
        would conflict and ``fn`` would be applied twice. The caller sees BridgeUnavailableError instead.
        """
        attempt = 0
        snapshot = self.cache.peek(ref)
        while True:
            attempt += 1
            if snapshot is None:
                info = yield from self.fetch(ref)
                current, version = info.value, info.version
            else:
                current, version = snapshot
            new_value = fn(current)
            try:
                yield from self.set(ref, new_value, expected_version=version, retry=False)
            except VersionConflictError:
                if attempt >= max_attempts:
                    raise
                snapshot = None
                yield _conflict_pause(attempt)
                continue
            return new_value

    def set_many(self, updates: Mapping[str, Any], atomic: bool) -> Flow[dict[str, bool | str]]:
        """SetVariables: ``{ref: True | "error message"}``; atomic raises and changes nothing."""
        refs = list(updates)
        unknown = [ref for ref in refs if self.definitions.resolve(ref) is None]
        if unknown:
            token = self.cache.begin_read()
            request = pb2.GetVariablesRequest(session_id=self.session_id, names_or_ids=unknown)
            found: pb2.GetVariablesResponse = yield Rpc("GetVariables", request, True)
            for var in found.variables:
                self.absorb(var, token)
        results: dict[str, bool | str] = {}
        sent: list[tuple[str, Definition, Any]] = []
        batch = pb2.SetVariablesRequest(session_id=self.session_id, atomic=atomic, writer=self.writer)
        for ref in refs:
            try:
                definition = self.definitions.resolve(ref)
                if definition is None:
                    raise VariableNotFoundError.for_ref(ref)
                normalized, proto_value = self._encode(definition, updates[ref])
            except (ValidationError, VariableNotFoundError) as exc:
                if atomic:
                    raise
                results[ref] = str(exc)
                continue
            batch.updates.add(name_or_id=definition.id, value=proto_value)
            sent.append((ref, definition, normalized))
        if sent:
            token = self.cache.begin_read()
            try:
                response: pb2.SetVariablesResponse = yield Rpc("SetVariables", batch, False)
            except BaseException:
                for _, definition, _ in sent:
                    self.cache.invalidate(definition.id, definition.name)
                raise
            self.note_revision(response.revision)
            self.cache.begin_batch()  # one mutation: a snapshot sees all of it or none
            try:
                for (ref, definition, normalized), result in zip(sent, response.results, strict=True):
                    if result.ok:
                        results[ref] = True
                        self.cache.write_through(
                            token,
                            definition.id,
                            definition.name,
                            result.version,
                            normalized,
                            response.revision,
                        )
                    else:
                        results[ref] = result.error.message or result.error.code or "update failed"
                        self.cache.invalidate(definition.id, definition.name)
            finally:
                self.cache.end_batch()
        return {ref: results[ref] for ref in refs}

    def delete(self, ref: str) -> Flow[None]:
        """DeleteVariable; by id when the id is known, and then retried (a second delete of one id
        cannot remove anything else)."""
        known = self.definitions.resolve(ref)
        target = known.id if known is not None else ref
        request = pb2.DeleteVariableRequest(session_id=self.session_id, name_or_id=target)
        try:
            response: pb2.DeleteVariableResponse = yield Rpc(
                "DeleteVariable", request, known is not None, _DELETE_AMBIGUOUS
            )
        except VariableNotFoundError:
            if known is not None:
                self.cache.invalidate(known.id, known.name)
                self.definitions.forget(known.id, known.name)
            raise VariableNotFoundError.for_ref(ref) from None
        except BaseException:
            # Outcome unknown (or interrupted): the variable may be gone, so nothing cached may say
            # it is there.
            self.cache.invalidate(known.id if known is not None else ref, known.name if known else ref)
            raise
        var_id = response.id or target
        name = known.name if known is not None else ref
        self.cache.invalidate(var_id, name)
        self.definitions.forget(var_id, name)
        self.note_revision(response.revision)

    # --- sessions --------------------------------------------------------------------------------

    def create_session(self, ttl: float | None, metadata: Mapping[str, str] | None) -> Flow[str]:
        """CreateSession (idempotent, so retried); returns the session id (the server's, if none)."""
        request = pb2.CreateSessionRequest(
            session_id=self.session_id, ttl_seconds=int(ttl or 0), metadata=dict(metadata or {})
        )
        response: pb2.CreateSessionResponse = yield Rpc("CreateSession", request, True)
        self.session_id = response.session.session_id or self.session_id
        self.note_revision(response.session.revision)
        return self.session_id

    # --- the watch stream ------------------------------------------------------------------------

    def on_stream_lost(self) -> None:
        self.cache.stop_serving()

    def on_watch_event(self, event: pb2.WatchEvent, expected_revision: int) -> None:
        """Apply one event to the cache and the definitions. ``expected_revision`` is the revision the
        event should carry if none was missed."""
        kind = event.kind
        if kind == pb2.EVENT_KIND_CAUGHT_UP:
            self.note_revision(event.revision)
            self.cache.start_serving(event.revision)
            return
        if kind in (pb2.EVENT_KIND_HISTORY_GONE, pb2.EVENT_KIND_SESSION_DELETED):
            logger.info("session %s: %s; cache cleared", self.session_id, pb2.EventKind.Name(kind))
            self.definitions.forget_names()
            self.cache.restart_stream(event.revision)
            if kind == pb2.EVENT_KIND_SESSION_DELETED:
                self.cache.stop_serving()
            self.note_revision(event.revision)
            return
        for own in event.own_writes:  # this context's own writes, listed without values
            self._check_gap(expected_revision, own.revision)
            self.cache.begin_batch()
            try:
                for change in own.changes:
                    self.cache.confirm(change.id, change.name, change.version, own.revision)
            finally:
                self.cache.end_batch(own.revision)
            self.note_revision(own.revision)
            expected_revision = own.revision + 1
        if kind == pb2.EVENT_KIND_OWN_WRITES:
            return
        self._check_gap(expected_revision, event.revision)
        self.cache.begin_batch()  # the changes of one event: a snapshot sees all of them or none
        try:
            for change in event.changes:
                self._apply_change(kind, change, event.revision)
        finally:
            self.cache.end_batch(event.revision)
        self.note_revision(event.revision)

    def _check_gap(self, expected_revision: int, revision: int) -> None:
        if revision != expected_revision:
            logger.warning(
                "session %s: revision gap (expected %d, got %d); cache cleared",
                self.session_id,
                expected_revision,
                revision,
            )
            self.definitions.forget_names()
            self.cache.clear()

    def _apply_change(self, kind: int, change: pb2.VariableChange, revision: int) -> None:
        if kind == pb2.EVENT_KIND_DELETED:
            self.definitions.forget(change.id, change.name)
            self.cache.invalidate(change.id, change.name)
            return
        if kind in (pb2.EVENT_KIND_REGISTERED, pb2.EVENT_KIND_IMPORTED):
            known = self.definitions.resolve(change.name)
            if known is not None and known.id != change.id:
                self.definitions.forget(known.id, known.name)
        if change.value.WhichOneof("kind") is None:  # no value: only "a new version exists"
            self.cache.invalidate(change.id, change.name)
            return
        try:
            # Decoded only if the cache refreshes an entry with it: most events just invalidate.
            self.cache.apply_change(
                change.id,
                change.name,
                change.version,
                functools.partial(decode_change_value, change.value),
                revision,
            )
        except BridgeError:
            logger.exception("session %s: undecodable value in event for %s", self.session_id, change.name)
            self.cache.invalidate(change.id, change.name)
