"""ImportSession: create a whole session at once, with the variables' own ids, versions and timestamps.

This is how a local, in-process session moves to the bridge without its ids changing or its versions
starting again. Everything is validated here first, with the shared type module and this frontend's
limits; then Redis is written by scripts that check every precondition before their first write:

* an import of at most `import_chunk_size` variables is one script (`import_session.lua`, mode
  'inline'), and its IMPORTED event carries every value (unless the values together are larger
  than half of `max_message_bytes`: then the event lists the variables without values, "read it");
* a larger import is staged, chunk by chunk, into keys named by its digest
  (`import_stage.lua`, one script per chunk, short TTL), then committed by one script that re-checks
  the preconditions and the staged count and RENAMEs the staged hashes into place. Its IMPORTED
  event lists every variable at its version, without values.

An import is identified by its digest (of the request's content). Applying the same import again
writes nothing and answers `imported=False`; an import onto a session that already holds something
else is ALREADY_EXISTS, except onto a session that was created but never written (revision 0, no
variables), which a program may well have opened before the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgpack

from bridge_server.config import Settings
from bridge_server.contracts import (
    Context,
    ImportKeys,
    ImportSessionArgs,
    ImportSessionStatus,
    ImportStageArgs,
)
from bridge_server.keys import import_staging_keys, session_keys
from bridge_server.limits import checked_description, checked_encoding, checked_metadata, checked_ttl
from bridge_server.model import Definition, SessionInfo, ValueReader, is_id_of
from bridge_server.scripts import Scripts
from unified_bridge._rules import check_not_id_like
from unified_bridge.errors import BridgeError, LimitExceededError, ValidationError
from unified_bridge.types import (
    VariableType,
    normalize_value,
    validate_constraints,
    validate_name,
    validate_session_id,
)

__all__ = ["ImportedVariable", "PreparedVariable", "SessionImporter", "prepare_variables"]

log = logging.getLogger(__name__)

# Staged chunks of an import that was abandoned half-way disappear after this long (each chunk
# staged refreshes it, so only the gap between two chunks of one import must fit).
STAGING_TTL_SECONDS: Final = 120
# Versions and revisions go through Lua numbers (doubles): keep them exact.
_MAX_COUNTER: Final = 2**53 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedVariable:
    """One variable of an import as the caller sent it, not yet validated."""

    id: str
    name: str
    type_number: int  # the proto's VariableType number
    read_value: ValueReader | None  # None: no value was sent
    constraints: Mapping[str, Any]
    metadata: Mapping[str, str]
    description: str
    version: int
    created_at_ms: int | None  # None: not given, now
    updated_at_ms: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedVariable:
    """A validated variable of an import, as the scripts store it."""

    definition: Definition
    encoded: bytes
    version: int
    updated_at_ms: int

    def script_args(self) -> list[Any]:
        """id, name, type, definition_blob, value_blob, version, updated_at (the scripts' order)."""
        d = self.definition
        return [d.id, d.name, d.type.value, d.to_blob(), self.encoded, self.version, self.updated_at_ms]


def _rejected(what: str, error: BridgeError) -> BridgeError:
    """The same class of error, saying which part of the import it is about."""
    return type(error)(f"import rejected: {what}: {error.message}")


def _label(index: int, variable: ImportedVariable) -> str:
    if variable.name:
        return f"variable {variable.name!r}"
    if variable.id:
        return f"variable {variable.id!r}"
    return f"variable #{index}"


async def prepare_variables(
    settings: Settings, variables: Sequence[ImportedVariable], now_ms: int
) -> list[PreparedVariable]:
    """Validate every variable of an import (all of them, before anything is written).

    Lets other tasks run after every `import_chunk_size` variables: validating 10,000 takes tens of
    milliseconds, longer than one request may hold the event loop.
    """
    if len(variables) > settings.max_variables_per_session:
        raise LimitExceededError(
            f"import rejected: {len(variables)} variables, above the limit of "
            f"{settings.max_variables_per_session} per session"
        )
    prepared: list[PreparedVariable] = []
    names: set[str] = set()
    ids: set[str] = set()
    for index, variable in enumerate(variables):
        if index and index % settings.import_chunk_size == 0:
            await asyncio.sleep(0)
        try:
            item = _prepare(settings, variable, now_ms)
        except BridgeError as error:
            raise _rejected(_label(index, variable), error) from error
        # An id holds its name, so a repeated id is also a repeated name: say the more precise one.
        if item.definition.id in ids:
            raise ValidationError(
                f"import rejected: {_label(index, variable)}: id {variable.id!r} appears twice"
            )
        if item.definition.name in names:
            raise ValidationError(
                f"import rejected: {_label(index, variable)}: the name appears twice (with different ids)"
            )
        names.add(item.definition.name)
        ids.add(item.definition.id)
        prepared.append(item)
    return prepared


def _prepare(settings: Settings, variable: ImportedVariable, now_ms: int) -> PreparedVariable:
    name = validate_name(variable.name, settings.max_name_length)
    check_not_id_like(name)
    if not variable.id:
        raise ValidationError("an id is required")
    if not is_id_of(variable.id, name):
        raise ValidationError(
            f"id {variable.id!r} is not an id of this variable: it must be var_{name}_<8 hex digits>"
        )
    var_type = VariableType.from_proto(variable.type_number)
    constraints = validate_constraints(var_type, variable.constraints)
    if variable.read_value is None:
        raise ValidationError("value is required")
    value = normalize_value(var_type, variable.read_value(var_type), constraints)
    if variable.version > _MAX_COUNTER:
        raise ValidationError(f"version {variable.version} is above the maximum of {_MAX_COUNTER}")
    for what, time_ms in (("created_at", variable.created_at_ms), ("updated_at", variable.updated_at_ms)):
        if time_ms is not None and time_ms < 0:
            raise ValidationError(f"{what} is before 1970 ({time_ms} ms)")
    definition = Definition(
        id=variable.id,
        name=name,
        type=var_type,
        constraints=constraints,
        metadata=checked_metadata(settings, variable.metadata),
        description=checked_description(settings, variable.description),
        created_at_ms=now_ms if variable.created_at_ms is None else variable.created_at_ms,
    )
    return PreparedVariable(
        definition=definition,
        encoded=checked_encoding(settings, name, var_type, value, constraints),
        version=variable.version,
        updated_at_ms=now_ms if variable.updated_at_ms is None else variable.updated_at_ms,
    )


class SessionImporter:
    """Writes validated imports to Redis: inline, or staged in chunks and committed."""

    def __init__(self, redis: Any, scripts: Scripts, settings: Settings) -> None:
        self._redis = redis
        self._scripts = scripts
        self._settings = settings

    async def import_session(
        self,
        session_id: str,
        ttl_seconds: int | None,
        metadata: Mapping[str, str] | None,
        revision: int,
        variables: Sequence[ImportedVariable],
        digest: str,
    ) -> tuple[SessionInfo, bool, list[Definition]]:
        """Create the session; returns its info, whether this call imported it, and the definitions."""
        settings = self._settings
        if not session_id:
            raise ValidationError("import rejected: a session id is required")
        try:
            session_id = validate_session_id(session_id, settings.max_session_id_length)
            ttl = checked_ttl(settings, ttl_seconds)
            session_metadata = checked_metadata(settings, metadata)
        except BridgeError as error:
            raise _rejected(f"session {session_id!r}", error) from error
        if revision >= _MAX_COUNTER:
            raise ValidationError(
                f"import rejected: session {session_id!r}: revision {revision} is above the maximum of "
                f"{_MAX_COUNTER - 1}"
            )
        now = int(time.time() * 1000)
        prepared = await prepare_variables(settings, variables, now)

        staging = import_staging_keys(settings.key_prefix, session_id, digest)
        keys = ImportKeys.of(session_keys(settings.key_prefix, session_id), staging)
        common = ImportSessionArgs(
            now_ms=now,
            ttl_seconds=ttl,
            metadata_blob=msgpack.packb(session_metadata),
            revision=revision + 1,
            digest=digest,
            log_max_len=settings.change_log_length,
            variable_count=len(prepared),
            mode="check",
            event_part_fields="",
            include_values=0,
        )
        size = settings.import_chunk_size
        if len(prepared) <= size:
            value_bytes = sum(len(item.encoded) for item in prepared)
            include_values = int(value_bytes <= settings.max_message_bytes // 2)
            rest: list[Any] = []
            for item in prepared:
                rest += item.script_args()
            reply = await self._scripts.import_session(
                keys, common._replace(mode="inline", include_values=include_values), rest
            )
        else:
            reply = await self._scripts.import_session(keys, common)
            if reply.status is ImportSessionStatus.IMPORTED:
                chunks = [prepared[start : start + size] for start in range(0, len(prepared), size)]
                fields = [f"{size}:{index}" for index in range(len(chunks))]
                try:
                    # Staged data may expire before the commit (a very slow import): stage again, once.
                    for _attempt in range(2):
                        for field, chunk in zip(fields, chunks, strict=True):
                            items: list[Any] = []
                            for item in chunk:
                                items += item.script_args()
                            staged = await self._scripts.import_stage(
                                keys, ImportStageArgs(STAGING_TTL_SECONDS, field), items
                            )
                            staged.result(Context(session_id))
                        reply = await self._scripts.import_session(
                            keys, common._replace(mode="staged", event_part_fields=" ".join(fields))
                        )
                        if reply.status is not ImportSessionStatus.STAGING_INCOMPLETE:
                            break
                except BaseException:
                    with contextlib.suppress(Exception):
                        await self._redis.delete(*staging.all)
                    raise
        info = SessionInfo.from_reply(session_id, reply.result(Context(session_id)))
        return info, reply.status is ImportSessionStatus.IMPORTED, [item.definition for item in prepared]
