"""The UnifiedBridge gRPC service: a thin mapping between protobuf and the variable store.

Errors are translated in exactly one place, `bridge_server.errors.status_for` (its docstring has the
table). A failed call also names its error class in the trailing metadata (`ERROR_METADATA_KEY`), so
the SDK raises the same class without reading the message (two classes share NOT_FOUND), and a
compare-and-set conflict sends the variable's current version (`CURRENT_VERSION_METADATA_KEY`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from bridge_server.access import may_create, session_filter
from bridge_server.convert import (
    event_to_proto,
    import_digest,
    imported_variable_from_proto,
    own_writes_to_proto,
    session_to_proto,
    variable_to_proto,
)
from bridge_server.errors import Status, status_for
from bridge_server.events import ChangeEvent, LiveEvent
from bridge_server.fanout import EventHub
from bridge_server.handlers import Rejected
from bridge_server.metrics import Metrics
from bridge_server.store import ValueReader, VariableStore
from bridge_server.stream_limits import StreamSlots
from bridge_server.watch import OwnWrites, watch_session
from unified_bridge._rules import check_writer
from unified_bridge.errors import (
    CURRENT_VERSION_METADATA_KEY,
    ERROR_METADATA_KEY,
    BridgeUnavailableError,
    ValidationError,
    wire_name,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc
from unified_bridge.types import VariableType, constraints_from_proto, value_from_proto

__all__ = ["BridgeServicer"]

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Response = TypeVar("Response")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: Status) -> NoReturn:
    """End the call with ``status``, naming the error class (and what the caller can act on, such as
    a compare-and-set's current version) in the trailing metadata."""
    if status.error_class is not None:
        trailing = [(ERROR_METADATA_KEY, wire_name(status.error_class))]
        if status.current_version is not None:
            trailing.append((CURRENT_VERSION_METADATA_KEY, str(status.current_version)))
        context.set_trailing_metadata(tuple(trailing))
    await context.abort(status.code, status.message)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def unary(
    method: Callable[[Any, Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[Response]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[Response]]:
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: grpc.aio.ServicerContext[Any, Any]) -> Response:
        metrics: Metrics = self.metrics
        started = time.perf_counter()
        try:
            if isinstance(request, Rejected):
                raise request.error()
            if (refusal := self.refusal()) is not None:
                raise BridgeUnavailableError(refusal)
            response = await method(self, request, context)
        except Exception as exc:
            status = status_for(exc)
            metrics.finished(name, status.code.name)
            await _abort(context, status)
        metrics.unary(name).succeeded(time.perf_counter() - started)
        return response

    return wrapper


def _what_fits(variables: list[pb.Variable], budget: int) -> int:
    """How many of ``variables`` (at least one) a response can carry within ``budget`` bytes."""
    used = 0
    for count, variable in enumerate(variables):
        used += variable.ByteSize() + 8  # the field's tag and length
        if used > budget and count > 0:
            return count
    return len(variables)


def _event_bytes(event: ChangeEvent | LiveEvent) -> bytes:
    """An event's message bytes; a live event's are made by the first of the session's watchers
    here, and the others send the same bytes."""
    if isinstance(event, LiveEvent):
        if event.wire is None:
            event.wire = event_to_proto(event.event).SerializeToString()
        return event.wire
    return event_to_proto(event).SerializeToString()


def _value_reader(message: pb.Value) -> ValueReader:
    return lambda var_type: value_from_proto(var_type, message)


class BridgeServicer(pb_grpc.UnifiedBridgeServicer):
    def __init__(
        self,
        store: VariableStore,
        hub: EventHub,
        metrics: Metrics,
        refusal: Callable[[], str | None] = lambda: None,
        streams: StreamSlots | None = None,
    ) -> None:
        self._store = store
        self._hub = hub
        self.metrics = metrics
        #: Why every call is refused right now (Redis may evict keys: see bridge_server.eviction).
        self.refusal = refusal
        # What one response may carry: the message limit less room for its envelope.
        self._response_budget = store.settings.max_message_bytes * 3 // 4
        self._message_limit = store.settings.max_message_bytes
        self.streams = streams or StreamSlots(total=10_000, per_connection=1000)

    # -- sessions -------------------------------------------------------------------------------

    @unary
    async def CreateSession(
        self, request: pb.CreateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CreateSessionResponse:
        if not may_create(request.session_id):
            # A read-only caller opening a session: refreshed if it exists, NOT_FOUND if not.
            info = await self._store.touch_session(request.session_id)
            return pb.CreateSessionResponse(session=session_to_proto(info), created=False)
        info, created = await self._store.create_session(
            request.session_id or None, request.ttl_seconds or None, dict(request.metadata)
        )
        return pb.CreateSessionResponse(session=session_to_proto(info), created=created)

    @unary
    async def ImportSession(
        self, request: pb.ImportSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ImportSessionResponse:
        digest = import_digest(request)
        info, imported = await self._store.import_session(
            request.session_id,
            request.ttl_seconds or None,
            dict(request.metadata),
            request.revision,
            [imported_variable_from_proto(variable) for variable in request.variables],
            digest,
        )
        return pb.ImportSessionResponse(session=session_to_proto(info), imported=imported, digest=digest)

    @unary
    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        return session_to_proto(await self._store.touch_session(request.session_id))

    @unary
    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        return session_to_proto(await self._store.touch_session(request.session_id))

    @unary
    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteSessionResponse:
        return pb.DeleteSessionResponse(deleted=await self._store.delete_session(request.session_id))

    @unary
    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListSessionsResponse:
        # A scoped caller sees only its sessions: a page may hold fewer ids (even none) than asked,
        # and the next page token still moves on, so paging until the token is "" reaches the end.
        ids, token = await self._store.list_sessions(request.page_size, request.page_token, session_filter())
        return pb.ListSessionsResponse(session_ids=ids, next_page_token=token)

    # -- variables ------------------------------------------------------------------------------

    @unary
    async def RegisterVariable(
        self, request: pb.RegisterVariableRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterVariableResponse:
        if not request.HasField("value"):
            raise ValidationError("value is required")
        record, created, revision = await self._store.register(
            request.session_id,
            request.name,
            VariableType.from_proto(request.type),
            _value_reader(request.value),
            constraints_from_proto(request.constraints),
            dict(request.metadata),
            request.description,
        )
        return pb.RegisterVariableResponse(
            variable=variable_to_proto(record), created=created, revision=revision
        )

    @unary
    async def GetVariable(  # type: ignore[override]  # the generated base knows no pre-encoded bytes
        self, request: pb.GetVariableRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        """The Variable message's bytes: encoded once per record (see `VariableRecord.wire`)."""
        record = await self._store.get(request.session_id, request.name_or_id)
        if record.wire is None:
            record.wire = variable_to_proto(record).SerializeToString()
        return record.wire

    @unary
    async def GetVariables(
        self, request: pb.GetVariablesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetVariablesResponse:
        refs = list(request.names_or_ids)
        records, missing, revision = await self._store.get_many(request.session_id, refs)
        absent = set(missing)
        found_refs = [ref for ref in refs if ref not in absent]
        protos = [variable_to_proto(r) for r in records]
        sent = _what_fits(protos, self._response_budget)
        return pb.GetVariablesResponse(
            variables=protos[:sent], missing=missing, revision=revision, deferred=found_refs[sent:]
        )

    @unary
    async def SetVariable(
        self, request: pb.SetVariableRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SetVariableResponse:
        if not request.HasField("value"):
            raise ValidationError("value is required")
        expected = request.expected_version if request.HasField("expected_version") else None
        outcomes, revision = await self._store.set_many(
            request.session_id,
            [(request.name_or_id, _value_reader(request.value), expected)],
            atomic=True,
            writer=request.writer,
        )
        return pb.SetVariableResponse(id=outcomes[0].id, version=outcomes[0].version, revision=revision)

    @unary
    async def SetVariables(
        self, request: pb.SetVariablesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SetVariablesResponse:
        updates = []
        for update in request.updates:
            if not update.HasField("value"):
                raise ValidationError(f"value is required for {update.name_or_id or 'an update'}")
            expected = update.expected_version if update.HasField("expected_version") else None
            updates.append((update.name_or_id, _value_reader(update.value), expected))
        outcomes, revision = await self._store.set_many(
            request.session_id, updates, atomic=request.atomic, writer=request.writer
        )
        response = pb.SetVariablesResponse(revision=revision)
        add = response.results.add  # built in place: a message passed in would be copied
        for outcome in outcomes:
            if outcome.error is None:
                add(name_or_id=outcome.ref, ok=True, id=outcome.id, version=outcome.version)
            else:
                code, message = status_for(outcome.error)[:2]
                add(name_or_id=outcome.ref, ok=False, error=pb.UpdateError(code=code.name, message=message))
        return response

    @unary
    async def DeleteVariable(
        self, request: pb.DeleteVariableRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteVariableResponse:
        var_id, revision = await self._store.delete(request.session_id, request.name_or_id)
        return pb.DeleteVariableResponse(id=var_id, revision=revision)

    @unary
    async def ListVariables(
        self, request: pb.ListVariablesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListVariablesResponse:
        records = await self._store.list_variables(request.session_id, request.pattern)
        after = request.page_token
        protos = [variable_to_proto(r) for r in records if not after or r.definition.name > after]
        sent = _what_fits(protos, self._response_budget)
        more = protos[sent - 1].name if sent < len(protos) else ""
        return pb.ListVariablesResponse(variables=protos[:sent], next_page_token=more)

    # -- watch ----------------------------------------------------------------------------------

    async def WatchSession(  # type: ignore[override]  # the generated base knows no pre-encoded bytes
        self, request: pb.WatchSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.WatchEvent | bytes]:
        """Events as messages, or as the bytes of one already encoded (see `handlers`)."""
        code = grpc.StatusCode.OK
        peer = context.peer()
        slot = False
        try:
            if isinstance(request, Rejected):
                raise request.error()
            if (refusal := self.refusal()) is not None:
                raise BridgeUnavailableError(refusal)
            self.streams.take(peer)
            slot = True
            self.metrics.watch_streams.inc()
            checked_time = (
                request.from_revision_time.ToMilliseconds()
                if request.HasField("from_revision_time")
                else None
            )
            events = watch_session(
                self._store,
                self._hub,
                request.session_id,
                request.from_revision,
                request.from_now,
                checked_time,
                check_writer(request.writer),
                self._message_limit // 4,
            )
            async for event in events:
                if isinstance(event, OwnWrites):
                    # The own writes' field, then the message they ride on: protobuf parses the
                    # concatenation as one message, so a shared event's bytes stay shared.
                    if event.then is None:
                        yield own_writes_to_proto(event.writes, alone=True)
                        continue
                    listed = own_writes_to_proto(event.writes, alone=False).SerializeToString()
                    carried = _event_bytes(event.then)
                    if len(listed) + len(carried) <= self._message_limit:
                        yield listed + carried
                    else:  # together past the message limit: one after the other
                        yield own_writes_to_proto(event.writes, alone=True)
                        yield carried
                else:
                    yield _event_bytes(event)
        except (asyncio.CancelledError, GeneratorExit):  # the caller cancelled or went away
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            status = status_for(exc)
            code = status.code
            await _abort(context, status)
        finally:
            self.metrics.finished("WatchSession", code.name)  # first: a scrape that sees the
            if slot:  # stream gone from the gauge sees it counted
                self.streams.give_back(peer)
                self.metrics.watch_streams.dec()
