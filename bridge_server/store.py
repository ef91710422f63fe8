"""The variable store: every Redis access of the frontend, one Lua script per mutation.

Validation happens here, with the shared type module, before any script runs; the scripts
re-check only what can change concurrently (existence, definition, expected version).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack

from bridge_server.activity import ActivityTracker
from bridge_server.config import Settings
from bridge_server.contracts import (
    Context,
    CreateSessionArgs,
    CreateSessionStatus,
    DeleteSessionStatus,
    DeleteVariableArgs,
    NowArgs,
    ReadArgs,
    RegisterVariableArgs,
    RegisterVariableStatus,
    SetItemStatus,
    SetVariablesArgs,
    WatchPositionStatus,
    error_for,
    set_items,
    status_of,
)
from bridge_server.importer import ImportedVariable, SessionImporter
from bridge_server.keys import SessionKeys, session_id_from_key, session_keys, session_scan_pattern
from bridge_server.limits import checked_description, checked_encoding, checked_metadata, checked_ttl
from bridge_server.model import (
    Definition,
    SessionInfo,
    UpdateOutcome,
    ValueReader,
    VariableRecord,
    name_of_id,
)
from bridge_server.recent_reads import RecentReads
from bridge_server.records import Record, decode_record
from bridge_server.scripts import flags_supported, load_scripts, preload_scripts
from bridge_server.storage import ReplicatedWritesRedis
from unified_bridge._rules import (
    batch_too_large,
    check_not_id_like,
    check_ref,
    check_writer,
    in_atomic_batch,
    name_matcher,
)
from unified_bridge.errors import (
    BridgeError,
    SessionNotFoundError,
    ValidationError,
    VariableNotFoundError,
    VersionConflictError,
)
from unified_bridge.types import (
    VariableType,
    decode_value,
    new_variable_id,
    normalize_value,
    validate_constraints,
    validate_name,
    validate_session_id,
)

__all__ = ["ValueReader", "VariableStore"]

log = logging.getLogger(__name__)

# A definition that changed between our read and the script (delete + re-register) is re-read
# and re-validated this many times before the update gives up.
_DEFINITION_RETRIES = 3


def _now_ms() -> int:
    return int(time.time() * 1000)


class VariableStore:
    """Sessions and variables in Redis. Stateless apart from a cache of immutable definitions."""

    def __init__(self, redis: Any, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        # What values one change event may carry: half a message, the rest is room for the changes
        # listed without values (about 100 bytes each) and the envelope.
        self._event_value_budget = settings.max_message_bytes // 2
        self._scripts = load_scripts(
            redis, flags=not settings.uses_embedded_store, log_max_bytes=settings.change_log_bytes
        )
        # (session, id) -> (stored blob, Definition). A definition never changes under its id while
        # its session lives; but an import lets clients choose ids, so the key holds the session and a
        # read checks that the stored blob is still the cached one (a session deleted and imported again).
        self._definitions: dict[tuple[str, str], tuple[bytes, Definition]] = {}
        # (session, ref) -> id. May go stale (delete + re-register): the update script finds no record
        # under a stale id, and says whether its name has another variable now.
        self._ids: dict[tuple[str, str], str] = {}
        self._positions_in_flight: dict[str, asyncio.Future[int | None]] = {}
        self._recent = RecentReads(settings.read_cache_bytes)
        self._importer = SessionImporter(redis, self._scripts, settings)
        self._wait_for_replicas_after_writes()
        self._activity = ActivityTracker(settings.activity_refresh_seconds, settings.definition_cache_size)

    async def preload_scripts(self) -> None:
        if not await flags_supported(self._redis):
            # A store without script flags (fakeredis behind a URL): the same scripts, unflagged.
            # The importer's scripts carry no flags, so it keeps the ones it has.
            self._scripts = load_scripts(
                self._redis, flags=False, log_max_bytes=self._settings.change_log_bytes
            )
            self._wait_for_replicas_after_writes()
        await preload_scripts(self._redis, self._scripts)

    def _wait_for_replicas_after_writes(self) -> None:
        if isinstance(self._redis, ReplicatedWritesRedis):
            self._redis.wait_after_scripts(
                (script.sha, script.contract.wrote) for script in self._scripts.all() if script.contract.wrote
            )

    @property
    def settings(self) -> Settings:
        return self._settings

    def keys(self, session_id: str) -> SessionKeys:
        return session_keys(self._settings.key_prefix, session_id)

    # -- sessions -------------------------------------------------------------------------------

    def checked_session_id(self, session_id: str) -> str:
        return validate_session_id(session_id, self._settings.max_session_id_length)

    async def create_session(
        self, session_id: str | None, ttl_seconds: int | None, metadata: Mapping[str, str] | None
    ) -> tuple[SessionInfo, bool]:
        session_id = self.checked_session_id(session_id) if session_id else f"session_{secrets.token_hex(8)}"
        ttl = self._checked_ttl(ttl_seconds)
        metadata = self._checked_metadata(metadata)
        keys = self.keys(session_id)
        reply = await self._scripts.create_session(
            keys, CreateSessionArgs(_now_ms(), ttl, msgpack.packb(metadata))
        )
        info = SessionInfo.from_reply(session_id, reply.result(Context(session_id)))
        self._activity.refreshed(session_id, info.ttl_seconds)
        return info, reply.status is CreateSessionStatus.CREATED

    async def import_session(
        self,
        session_id: str,
        ttl_seconds: int | None,
        metadata: Mapping[str, str] | None,
        revision: int,
        variables: Sequence[ImportedVariable],
        digest: str,
    ) -> tuple[SessionInfo, bool]:
        """Create a whole session with its variables' ids and versions (see `bridge_server.importer`)."""
        info, imported, definitions = await self._importer.import_session(
            session_id, ttl_seconds, metadata, revision, variables, digest
        )
        if imported:
            for definition in definitions:
                self._definitions.pop((info.session_id, definition.id), None)
            self._activity.refreshed(info.session_id, info.ttl_seconds)
        return info, imported

    async def touch_session(self, session_id: str) -> SessionInfo:
        """Read a session and mark it active (get and heartbeat both do this)."""
        session_id = self.checked_session_id(session_id)
        reply = await self._scripts.touch_session(self.keys(session_id), NowArgs(_now_ms()))
        info = SessionInfo.from_reply(session_id, reply.result(Context(session_id)))
        self._activity.refreshed(session_id, info.ttl_seconds)
        return info

    async def delete_session(self, session_id: str) -> bool:
        session_id = self.checked_session_id(session_id)
        reply = await self._scripts.delete_session(self.keys(session_id), NowArgs(_now_ms()))
        reply.result(Context(session_id))
        # The (session, ref) -> id hints may stay: the scripts catch stale ones.
        self._activity.forget(session_id)
        return reply.status is DeleteSessionStatus.DELETED

    async def list_sessions(
        self, page_size: int, page_token: str, visible: Callable[[str], bool] | None = None
    ) -> tuple[list[str], str]:
        """A page of session ids and the token of the next page ("" when there is none).

        With ``visible``, only the ids it accepts: a page of one SCAN step may then hold fewer than
        ``page_size`` ids, or none, while its token still moves on.
        """
        size = max(1, min(page_size or 100, 1000))
        if self._settings.redis_cluster:
            return await self._list_sessions_on_cluster(size, page_token, visible)
        cursor = _page_cursor(page_token)
        prefix = self._settings.key_prefix
        cursor, found = await self._redis.scan(cursor=cursor, match=session_scan_pattern(prefix), count=size)
        ids = sorted(session_id_from_key(prefix, _text(key)) for key in found)
        if visible is not None:
            ids = [session_id for session_id in ids if visible(session_id)]
        return ids, (str(cursor) if cursor else "")

    async def _list_sessions_on_cluster(
        self, size: int, after: str, visible: Callable[[str], bool] | None
    ) -> tuple[list[str], str]:
        # A SCAN cursor belongs to one node: scan them all and page by id instead (an operator's
        # listing, so a full scan per page is acceptable).
        prefix = self._settings.key_prefix
        ids = sorted(
            [
                session_id_from_key(prefix, _text(key))
                async for key in self._redis.scan_iter(match=session_scan_pattern(prefix), count=1000)
            ]
        )
        if visible is not None:  # before paging, so the pages stay full
            ids = [session_id for session_id in ids if visible(session_id)]
        page = [session_id for session_id in ids if session_id > after][:size]
        more = bool(page) and page[-1] != ids[-1]
        return page, (page[-1] if more else "")

    # -- variables: reads -----------------------------------------------------------------------

    async def get(self, session_id: str, ref: str) -> VariableRecord:
        session_id = self.checked_session_id(session_id)
        record = await self._read_by_known_id(session_id, ref)  # a known ref passed the checks then
        if record is not None:
            return record
        records, missing, _ = await self.get_many(session_id, [ref])
        if missing:
            raise VariableNotFoundError.for_ref(ref)
        return records[0]

    async def _read_by_known_id(self, session_id: str, ref: str) -> VariableRecord | None:
        """One variable by a name or id this frontend has seen resolved, with one HMGET instead of the
        read script; None when the script must answer (ref not seen, TTL refresh due, or the id gone).

        Correct without the names hash: a live id keeps the name it was registered under (ids are
        `var_<name>_<suffix>`, never reused, and no name may have the form of an id), and deleting a
        variable removes its fields and its name in one script, so if the remembered id's fields
        exist, the name still maps to it. A session deleted or expired takes its keys with it.
        """
        var_id = self._ids.get((session_id, ref))
        if var_id is None or self._activity.due(session_id):
            return None
        raw = await self._redis.hget(self.keys(session_id).vars, var_id)
        if raw is None:
            self._ids.pop((session_id, ref), None)
            return None
        return self._variable(session_id, var_id, raw)

    async def get_many(
        self, session_id: str, refs: Sequence[str]
    ) -> tuple[list[VariableRecord], list[str], int]:
        """The variables found (in request order), the refs not found, and the session revision they
        were all read at (one atomic read)."""
        session_id = self.checked_session_id(session_id)
        self._check_batch_size(len(refs))
        for ref in refs:
            if (session_id, ref) not in self._ids:  # one resolved before passed the checks then
                self._checked_ref(ref)
        found, revision = await self._read(session_id, list(dict.fromkeys(refs)))
        return (
            [found[ref] for ref in refs if ref in found],
            [ref for ref in refs if ref not in found],
            revision,
        )

    async def _read(self, session_id: str, refs: Sequence[str]) -> tuple[dict[str, VariableRecord], int]:
        """The variables that exist among `refs` (already checked), by ref, and the revision read at."""
        touch = self._activity.due(session_id)
        # Names and ids hold no space (checked): one argument carries them all.
        reply = await self._scripts.get_variables(
            self.keys(session_id), ReadArgs(_now_ms(), int(touch)), [" ".join(refs)]
        )
        ttl, rows, revision = reply.result(Context(session_id))
        if touch:
            self._activity.refreshed(session_id, int(ttl))
        found = {}
        for ref, row in zip(refs, rows, strict=True):
            if row:
                var_id, raw = row
                found[ref] = record = self._variable(session_id, _text(var_id), raw)
                self._remember_id(session_id, ref, record.definition.id)
        return found, int(revision)

    async def list_variables(self, session_id: str, pattern: str = "") -> list[VariableRecord]:
        session_id = self.checked_session_id(session_id)
        matches = name_matcher(pattern)  # checked before any Redis work
        touch = self._activity.due(session_id)
        reply = await self._scripts.list_variables(self.keys(session_id), ReadArgs(_now_ms(), int(touch)))
        ttl, flat = reply.result(Context(session_id))
        if touch:
            self._activity.refreshed(session_id, int(ttl))
        records = []
        for i in range(0, len(flat), 2):
            var_id = _text(flat[i])
            if matches(name_of_id(var_id)):
                records.append(self._variable(session_id, var_id, flat[i + 1]))
        records.sort(key=lambda record: record.definition.name)
        return records

    # -- variables: mutations -------------------------------------------------------------------

    async def register(
        self,
        session_id: str,
        name: str,
        var_type: VariableType,
        read_value: ValueReader,
        constraints: Mapping[str, Any] | None,
        metadata: Mapping[str, str] | None,
        description: str,
    ) -> tuple[VariableRecord, bool, int]:
        """(the variable, whether it was created, the session revision after the call)."""
        session_id = self.checked_session_id(session_id)
        name = validate_name(name, self._settings.max_name_length)
        check_not_id_like(name)
        checked_constraints = validate_constraints(var_type, constraints)
        value = normalize_value(var_type, read_value(var_type), checked_constraints)
        checked_description(self._settings, description)
        now = _now_ms()
        definition = Definition(
            id=new_variable_id(name),
            name=name,
            type=var_type,
            constraints=checked_constraints,
            metadata=self._checked_metadata(metadata),
            description=description,
            created_at_ms=now,
        )
        encoded = self._checked_encoding(name, var_type, value, checked_constraints)
        blob = definition.to_blob()
        reply = await self._scripts.register_variable(
            self.keys(session_id),
            RegisterVariableArgs(
                now,
                name,
                definition.id,
                blob,
                encoded,
                self._settings.max_variables_per_session,
                self._settings.change_log_length,
                var_type.value,
            ),
        )
        context = Context(session_id, ref=name, limit=self._settings.max_variables_per_session)
        if reply.status is RegisterVariableStatus.NAME_TAKEN:
            # Registering the same definition again is not an error: it answers the existing one.
            records, _, revision = await self.get_many(session_id, [name])
            if records and records[0].definition.same_shape_as(definition):
                return records[0], False, revision
            if not records:  # deleted between the script and the read: a race, not a conflict
                raise VersionConflictError(f"variable {name} changed while it was registered; try again")
        (new_revision,) = reply.result(context)
        self._cache_definition(session_id, definition, blob)
        self._activity.refreshed(session_id)
        return VariableRecord(definition, value, 0, now), True, int(new_revision)

    async def set_many(
        self,
        session_id: str,
        updates: Sequence[tuple[str, ValueReader, int | None]],
        atomic: bool,
        writer: str = "",
    ) -> tuple[list[UpdateOutcome], int]:
        """Apply (ref, value, expected_version) updates; returns per-item outcomes and the revision.

        Atomic: the first failing item raises its error and nothing changes. Otherwise each item
        succeeds or fails on its own, and the outcomes say which. ``writer``: the writing context's
        token, which the live copy of the event carries (its own watch stream is spared the event).
        """
        session_id = self.checked_session_id(session_id)
        writer = check_writer(writer)
        self._check_batch_size(len(updates))
        if not updates:
            return [], await self._current_revision(session_id)
        definitions = await self._definitions_for(session_id, [ref for ref, _, _ in updates])
        for _attempt in range(_DEFINITION_RETRIES):
            outcomes: list[UpdateOutcome | None] = []
            pending: list[tuple[int, str, Definition, bytes, int | None]] = []
            for index, (ref, read_value, expected_version) in enumerate(updates):
                try:
                    definition = definitions.get(ref)
                    if definition is None:
                        raise VariableNotFoundError.for_ref(ref)
                    value = normalize_value(
                        definition.type, read_value(definition.type), definition.constraints
                    )
                    encoded = self._checked_encoding(
                        definition.name, definition.type, value, definition.constraints
                    )
                except BridgeError as error:
                    if atomic:
                        raise in_atomic_batch(ref, error, len(updates)) from error
                    outcomes.append(UpdateOutcome(ref, error=error))
                    continue
                outcomes.append(None)
                pending.append((index, ref, definition, encoded, expected_version))
            if not pending:
                return [o for o in outcomes if o is not None], await self._current_revision(session_id)
            reply = await self._run_set_script(session_id, pending, atomic, writer)
            # The script found no variable under the id it was given, and another one under its name.
            changed = [
                (ref, definition)
                for (_, ref, definition, _, _), status in zip(pending, reply[1::2], strict=True)
                if status == SetItemStatus.DEFINITION_CHANGED
            ]
            for ref, _ in changed:
                self._ids.pop((session_id, ref), None)  # the ref names another variable now, or none
            # A ref that is the old id itself is simply not found; a name is looked up again.
            stale = [ref for ref, definition in changed if ref != definition.id]
            if stale and (atomic or int(reply[0]) == 0):
                # Nothing was written: re-read the definitions that changed, validate again.
                for ref in stale:
                    definitions.pop(ref, None)
                definitions.update(await self._definitions_for(session_id, stale))
                continue
            results = self._outcomes(pending, outcomes, reply, atomic, len(updates))
            # The script says 0 when it changed nothing; the caller is owed the current revision.
            return results, int(reply[0]) or await self._current_revision(session_id)
        raise VersionConflictError("variable definitions kept changing during the update; try again")

    async def _current_revision(self, session_id: str) -> int:
        revision = await self._redis.hget(self.keys(session_id).session, "revision")
        if revision is None:
            raise SessionNotFoundError.for_id(session_id)
        return int(revision)

    async def delete(self, session_id: str, ref: str) -> tuple[str, int]:
        session_id = self.checked_session_id(session_id)
        self._checked_ref(ref)
        reply = await self._scripts.delete_variable(
            self.keys(session_id), DeleteVariableArgs(_now_ms(), ref, self._settings.change_log_length)
        )
        revision, var_id = reply.result(Context(session_id, ref=ref))
        self._ids.pop((session_id, ref), None)
        self._activity.refreshed(session_id)
        return _text(var_id), int(revision)

    async def watch_position(self, session_id: str) -> int | None:
        """The session's current revision, or None if the session is gone.

        A session with a watcher attached is in use: this marks it active, as reads do, when this
        frontend has not refreshed it lately. (Whether the log still reaches back far enough is
        found while reading it: see `watch._from_log`.)
        """
        touch = self._activity.due(session_id)
        reply = await self._scripts.watch_position(self.keys(session_id), ReadArgs(_now_ms(), int(touch)))
        values = reply.result(Context(session_id))
        if reply.status is WatchPositionStatus.NO_SESSION:
            return None
        if touch:
            self._activity.refreshed(session_id, int(values[1]))
        return int(values[0])

    async def shared_watch_position(self, session_id: str) -> int | None:
        """`watch_position`, read once for every caller asking about the session at the same time
        (the watchers of a quiet session check it together). A caller that is cancelled leaves the
        read to the others."""
        pending = self._positions_in_flight.get(session_id)
        if pending is None:
            pending = asyncio.ensure_future(self.watch_position(session_id))
            self._positions_in_flight[session_id] = pending
            pending.add_done_callback(lambda done: self._position_read(session_id, done))
        return await asyncio.shield(pending)

    def _position_read(self, session_id: str, done: asyncio.Future[int | None]) -> None:
        self._positions_in_flight.pop(session_id, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every caller may have been cancelled meanwhile

    async def read_log(self, session_id: str, after_revision: int, count: int = 1000) -> list[bytes]:
        """Raw events with revision > after_revision, oldest first, at most `count`."""
        entries = await self._redis.xrange(
            self.keys(session_id).log, min=f"({after_revision}-0", max="+", count=count
        )
        return [fields[b"e"] for _, fields in entries]

    # -- helpers --------------------------------------------------------------------------------

    async def _run_set_script(
        self,
        session_id: str,
        pending: Sequence[tuple[int, str, Definition, bytes, int | None]],
        atomic: bool,
        writer: str,
    ) -> list[Any]:
        """{revision or 0, then per item: status, detail} (see SET_VARIABLES in contracts.py).

        A write marks the session active and refreshes its TTL only when this frontend finds a
        refresh due, as a read does: most updates skip seven Redis calls."""
        items = set_items(
            (definition.id, expected, encoded) for _, _, definition, encoded, expected in pending
        )
        touch = self._activity.due(session_id)
        reply = await self._scripts.set_variables(
            self.keys(session_id),
            SetVariablesArgs(
                _now_ms(),
                1 if atomic else 0,
                self._settings.change_log_length,
                self._event_value_budget,
                int(touch),
                writer,
                items,
            ),
        )
        values = reply.result(Context(session_id))
        if touch:
            self._activity.refreshed(session_id, int(values[1]))
        del values[1]  # the TTL
        return values

    def _outcomes(
        self,
        pending: Sequence[tuple[int, str, Definition, bytes, int | None]],
        outcomes: list[UpdateOutcome | None],
        reply: list[Any],
        atomic: bool,
        batch_size: int,
    ) -> list[UpdateOutcome]:
        for position, (index, ref, definition, _, expected_version) in enumerate(pending):
            status = status_of(SetItemStatus, "set_variables", reply[1 + 2 * position])
            detail = reply[2 + 2 * position]
            if status is SetItemStatus.DEFINITION_CHANGED and ref == definition.id:
                status = SetItemStatus.NOT_FOUND  # asked by that very id, which is gone
            # An applied item, the common case, needs no error context.
            error = (
                None
                if status is SetItemStatus.UPDATED
                else error_for(
                    status, Context(ref=ref, expected_version=expected_version or 0, detail=detail)
                )
            )
            if error is None:
                outcomes[index] = UpdateOutcome(ref, definition.id, int(detail))
                continue
            if atomic:
                raise in_atomic_batch(ref, error, batch_size)
            outcomes[index] = UpdateOutcome(ref, error=error)
        return [o for o in outcomes if o is not None]

    async def _definitions_for(self, session_id: str, refs: Sequence[str]) -> dict[str, Definition]:
        found: dict[str, Definition] = {}
        unknown: list[str] = []
        for ref in refs:
            # A ref this frontend resolved before passed the checks then: only the others are checked.
            var_id = self._ids.get((session_id, ref))
            cached = self._definitions.get((session_id, var_id)) if var_id else None
            if cached is None:
                unknown.append(self._checked_ref(ref))
            else:
                found[ref] = cached[1]
        if unknown:
            records, _ = await self._read(session_id, list(dict.fromkeys(unknown)))
            found.update({ref: record.definition for ref, record in records.items()})
        return found

    def _variable(self, session_id: str, var_id: str, raw: bytes) -> VariableRecord:
        """A variable from its stored record (see `bridge_server.records`); the same object as the
        last read's when the record's bytes are the same."""
        key = (session_id, var_id)
        record = self._recent.get(key, raw)
        if record is not None:
            return record
        stored = decode_record(raw)
        definition = self._definition(session_id, var_id, stored)
        record = VariableRecord(
            definition, decode_value(definition.type, stored.value_blob), stored.version, stored.updated_at_ms
        )
        self._recent.remember(key, raw, record)
        return record

    def _definition(self, session_id: str, var_id: str, stored: Record) -> Definition:
        blob = stored.definition_blob
        cached = self._definitions.get((session_id, var_id))
        if cached is not None and cached[0] == blob and cached[1].type.value == stored.type:
            return cached[1]
        definition = Definition.from_blob(var_id, stored.type, blob)
        self._cache_definition(session_id, definition, blob)
        return definition

    def _cache_definition(self, session_id: str, definition: Definition, blob: bytes) -> None:
        if len(self._definitions) >= self._settings.definition_cache_size:
            self._definitions.clear()
        self._definitions[(session_id, definition.id)] = (blob, definition)

    def _remember_id(self, session_id: str, ref: str, var_id: str) -> None:
        if len(self._ids) >= self._settings.definition_cache_size:
            self._ids.clear()  # a cache of hints, cheap to rebuild: no need for LRU bookkeeping
        self._ids[(session_id, ref)] = var_id

    def _checked_ttl(self, ttl_seconds: int | None) -> int:
        return checked_ttl(self._settings, ttl_seconds)

    def _checked_metadata(self, metadata: Mapping[str, str] | None) -> dict[str, str]:
        return checked_metadata(self._settings, metadata)

    def _checked_ref(self, ref: str) -> str:
        return check_ref(ref, self._settings.max_name_length)

    def _check_batch_size(self, size: int) -> None:
        if size > self._settings.max_batch_size:
            raise batch_too_large(size, self._settings.max_batch_size)

    def _checked_encoding(
        self, name: str, var_type: VariableType, value: object, constraints: Mapping[str, Any]
    ) -> bytes:
        return checked_encoding(self._settings, name, var_type, value, constraints)


def _page_cursor(page_token: str) -> int:
    """A ListSessions page token is a SCAN cursor: a whole number below 2**64."""
    if page_token == "":
        return 0
    whole_number = page_token.isascii() and page_token.isdigit()  # isdigit alone accepts "²"
    if len(page_token) > 20 or not whole_number or int(page_token) >= 2**64:
        raise ValidationError(f"invalid page token: {page_token[:32]!r}")
    return int(page_token)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
