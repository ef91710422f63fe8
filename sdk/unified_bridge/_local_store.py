"""A session held in process: the local backend behind the local and local-first contexts.

Plain dicts, at dictionary speed, with the rules of the bridge: the same validators and messages
(:mod:`unified_bridge.types`, :mod:`unified_bridge._rules`), ids ``var_<name>_<suffix>``, versions
from 0 growing by one, a revision growing by one per mutation, atomic batches that change all or
nothing, and a capped change log that ``watch`` replays from.

Concurrency: writers take one lock (re-entrant, so an ``update`` function may write); readers take
none. A single read sees a variable either before or after a write. A read of several variables
(:meth:`LocalStore.get_many`) is one consistent snapshot: a sequence counter, odd while a mutation is
being applied, tells the reader to try again (under the lock) if a mutation overlapped it.

Immutable values (numbers, strings, booleans) are served straight from ``fast``, a name-and-id ->
value dict; mutable ones (embeddings, tensors) are copied on the way out, so no caller can change
a stored value in place.
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from unified_bridge._models import (
    Change,
    ChangeEvent,
    Definition,
    SessionSnapshot,
    VariableInfo,
    VariableState,
)
from unified_bridge._rules import (
    SessionLimits,
    already_exists,
    as_stored,
    batch_too_large,
    check_description,
    check_encoded_size,
    check_expected_version,
    check_not_id_like,
    check_ref,
    in_atomic_batch,
    name_matcher,
    same_definition,
    too_many_variables,
    version_conflict,
)
from unified_bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    LimitExceededError,
    ValidationError,
    VariableNotFoundError,
)
from unified_bridge.types import (
    VariableType,
    encode_value,
    infer_type,
    new_variable_id,
    normalize_value,
    validate_constraints,
    validate_metadata,
    validate_name,
    validate_session_id,
)

__all__ = ["LocalStore", "WatchPosition", "new_session_id"]

_IMMUTABLE: Final = (int, float, str, bool, type(None))
_NUMBERS: Final = (int, float, bool)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Kinds of log entries, as ChangeEvent.kind says them.
REGISTERED, UPDATED, DELETED, SESSION_DELETED, HISTORY_GONE = (
    "registered",
    "updated",
    "deleted",
    "session_deleted",
    "history_gone",
)


def new_session_id() -> str:
    """A fresh session id, of the form a frontend picks."""
    return f"session_{secrets.token_hex(8)}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _datetime(ms: int) -> datetime:
    # Exact, like a protobuf Timestamp read back (a float division could be off by a microsecond).
    return _EPOCH + timedelta(milliseconds=ms)


def _copied(value: Any) -> Any:
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


@dataclass(slots=True)
class _Record:
    definition: Definition
    value: Any
    version: int
    created_at_ms: int
    updated_at_ms: int

    def info(self) -> VariableInfo:
        return VariableInfo(
            definition=self.definition,
            value=_copied(self.value),
            version=self.version,
            created_at=_datetime(self.created_at_ms),
            updated_at=_datetime(self.updated_at_ms),
        )


# A log entry: (revision, kind, time_ms, changes), each change (id, name, version, value or None). A
# plain tuple, because one is built on every write (a named tuple costs 0.2 µs more, a dataclass 1 µs).
_LogEntry = tuple[int, str, int, tuple[tuple[str, str, int, Any], ...]]


def _event(entry: _LogEntry) -> ChangeEvent:
    revision, kind, time_ms, changes = entry
    return ChangeEvent(
        kind,
        revision,
        tuple(Change(i, n, v, _copied(value)) for i, n, v, value in changes),
        _datetime(time_ms),
    )


@dataclass(slots=True)
class WatchPosition:
    """Where a watcher of the local log stands: the last revision it has *scanned* (delivered or
    filtered out), so that it can resume elsewhere (on the bridge) without a gap."""

    revision: int
    names: frozenset[str] | None = None
    wakeup: threading.Event = field(default_factory=threading.Event)


class LocalStore:
    """The variables of one session, in process. Every method is safe from any thread."""

    def __init__(
        self,
        session_id: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self.limits = limits or SessionLimits()
        self.session_id = validate_session_id(session_id) if session_id else new_session_id()
        self.metadata = validate_metadata(
            metadata, self.limits.max_metadata_entries, self.limits.max_metadata_bytes
        )
        self.created_at_ms = _now_ms()
        #: name or id -> value, for immutable values only: the read path.
        self.fast: dict[str, Any] = {}
        self._records: dict[str, _Record] = {}  # id -> record
        self._ids: dict[str, str] = {}  # name -> id
        self._log: deque[_LogEntry] = deque(maxlen=self.limits.change_log_length)
        self._lock = threading.RLock()
        self._sequence = 0  # odd while a mutation is being applied
        self.revision = 0
        self._listeners: list[Callable[[], None]] = []
        #: Set once the store is closed or handed over to the bridge: no more writes; watchers drain and stop.
        self.retired = False
        #: Set once the store is closed: no more reads either.
        self.closed = False

    # --- reads (no lock) -------------------------------------------------------------------------

    def _record(self, ref: str) -> _Record | None:
        var_id = self._ids.get(ref)
        return self._records.get(ref if var_id is None else var_id)

    def check_readable(self) -> None:
        if self.closed:
            raise BridgeError("This session context is closed")

    def _found(self, ref: str) -> _Record:
        record = self._record(ref)
        self.check_readable()
        if record is None:
            check_ref(ref, self.limits.max_name_length)
            raise VariableNotFoundError.for_ref(ref)
        return record

    def get(self, ref: str) -> Any:
        try:
            return self.fast[ref]
        except KeyError:
            return _copied(self._found(ref).value)

    def info(self, ref: str) -> VariableInfo:
        return self._found(ref).info()

    def contains(self, ref: str) -> bool:
        self.check_readable()
        if self._record(ref) is not None:
            return True
        check_ref(ref, self.limits.max_name_length)
        return False

    def get_many(self, refs: Iterable[str]) -> dict[str, Any]:
        """``{ref: value}`` at one revision; VariableNotFoundError naming every missing ref."""
        refs = list(refs)
        for _ in range(3):
            before = self._sequence
            if before % 2 == 0:
                records = [self._record(ref) for ref in refs]
                if self._sequence == before:
                    break
        else:
            with self._lock:  # writers kept overlapping: read with them held off
                records = [self._record(ref) for ref in refs]
        self.check_readable()
        if None in records:
            if len(refs) > self.limits.max_batch_size:
                raise batch_too_large(len(refs), self.limits.max_batch_size)
            missing = [ref for ref, record in zip(refs, records, strict=True) if record is None]
            for ref in missing:
                check_ref(ref, self.limits.max_name_length)
            raise VariableNotFoundError.for_ref(", ".join(missing))
        return {ref: _copied(record.value) for ref, record in zip(refs, records, strict=True)}  # type: ignore[union-attr]

    def listing(self, pattern: str | None = None) -> list[VariableInfo]:
        matches = name_matcher(pattern)
        self.check_readable()
        with self._lock:
            records = list(self._records.values())
        return sorted(
            (record.info() for record in records if matches(record.definition.name)),
            key=lambda info: info.name,
        )

    def snapshot(self) -> SessionSnapshot:
        with self._lock:
            return SessionSnapshot(
                session_id=self.session_id,
                metadata=dict(self.metadata),
                revision=self.revision,
                created_at_ms=self.created_at_ms,
                variables=tuple(
                    VariableState(r.definition, _copied(r.value), r.version, r.created_at_ms, r.updated_at_ms)
                    for r in sorted(self._records.values(), key=lambda r: r.definition.name)
                ),
            )

    # --- writes ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.retired or self.closed:
            raise BridgeError("This session context is closed")

    def _normalized(self, definition: Definition, value: Any) -> Any:
        normalized = normalize_value(definition.type, value, definition.constraints)
        self._check_size(definition, normalized)
        return normalized

    def _check_size(self, definition: Definition, normalized: Any) -> None:
        # Encoding costs more than the rest of a write: skip it where the size cannot be near the limit.
        limit = self.limits.max_value_bytes
        if isinstance(normalized, _NUMBERS) or (
            isinstance(normalized, str) and len(normalized) * 4 + 16 <= limit
        ):
            return
        size = len(encode_value(definition.type, normalized, definition.constraints))
        check_encoded_size(definition.name, size, limit)

    def _commit(self, kind: str, changes: tuple[tuple[str, str, int, Any], ...], now: int) -> None:
        """Record one mutation (the caller holds the lock and has bumped ``_sequence`` once)."""
        self.revision += 1
        self._log.append((self.revision, kind, now, changes))
        self._sequence += 1
        if self._listeners:
            for listener in list(self._listeners):
                listener()

    def _store(self, record: _Record) -> None:
        definition = record.definition
        self._records[definition.id] = record
        self._ids[definition.name] = definition.id
        self._publish_fast(definition, record.value)

    def _publish_fast(self, definition: Definition, value: Any) -> None:
        """What lock-free reads see: the value itself when immutable, else nothing (they copy)."""
        if isinstance(value, _IMMUTABLE):
            self.fast[definition.name] = self.fast[definition.id] = value
        else:
            self.fast.pop(definition.name, None)
            self.fast.pop(definition.id, None)

    def register(
        self,
        name: str,
        var_type: VariableType | str,
        value: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> tuple[VariableInfo, bool]:
        """(the variable, whether it was created); the same definition again is a repeat."""
        limits = self.limits
        validate_name(name, limits.max_name_length)
        vtype = VariableType.parse(var_type)
        checked = validate_constraints(vtype, constraints)
        normalized = normalize_value(vtype, value, checked)
        checked_metadata = validate_metadata(metadata, limits.max_metadata_entries, limits.max_metadata_bytes)
        check_not_id_like(name)
        # From here on, as a frontend does: with the constraints as the request carried them.
        stored = as_stored(checked)
        if stored != checked:  # a bound no double holds exactly, or an empty shape (sent as none)
            normalized = normalize_value(vtype, value, stored)
        checked = stored
        description = description or ""
        check_description(description, limits.max_description_length)
        check_encoded_size(name, len(encode_value(vtype, normalized, checked)), limits.max_value_bytes)
        with self._lock:
            self._check_open()
            existing = self._record(name)
            if existing is not None:
                known = existing.definition
                if same_definition(
                    (known.type, known.constraints, known.metadata, known.description),
                    (vtype, checked, checked_metadata, description),
                ):
                    return existing.info(), False
                raise already_exists(name)
            if len(self._records) >= limits.max_variables:
                raise too_many_variables(self.session_id, limits.max_variables)
            definition = Definition(
                new_variable_id(name), name, vtype, dict(checked), checked_metadata, description
            )
            now = _now_ms()
            record = _Record(definition, normalized, 0, now, now)
            self._sequence += 1
            self._store(record)
            self._commit(REGISTERED, ((definition.id, name, 0, normalized),), now)
            return record.info(), True

    def set(self, ref: str, value: Any, expected_version: int | None = None) -> int:
        """Write a value; returns the new version. With ``expected_version``: compare-and-set."""
        check_expected_version(expected_version)
        return self._set_found(ref, self._found(ref).definition, value, expected_version)

    def _set_found(self, ref: str, definition: Definition, value: Any, expected_version: int | None) -> int:
        normalized = self._normalized(definition, value)
        with self._lock:
            self._check_open()
            record = self._records.get(definition.id)
            if record is None:  # deleted since we looked
                raise VariableNotFoundError.for_ref(ref)
            if expected_version is not None and expected_version != record.version:
                raise version_conflict(definition.id, expected_version, record.version)
            return self._write(record, normalized)

    def _write(self, record: _Record, normalized: Any) -> int:
        now = _now_ms()
        definition = record.definition
        version = record.version + 1
        self._sequence += 1
        # _store without the name -> id entry, which an update leaves as it is.
        self._records[definition.id] = _Record(definition, normalized, version, record.created_at_ms, now)
        self._publish_fast(definition, normalized)
        self._commit(UPDATED, ((definition.id, definition.name, version, normalized),), now)
        return version

    def set_item(self, name: str, value: Any) -> None:
        """``ctx[name] = value``: write, or register with an inferred type when the name is new."""
        found = self._record(name)
        if found is not None and not self.closed:
            self._set_found(name, found.definition, value, None)  # the hot path: one lookup
            return
        if found is None:
            self._check_open()
            check_ref(name, self.limits.max_name_length)
            try:
                info, created = self.register(name, infer_type(value), value)
            except AlreadyExistsError:
                created = False  # registered meanwhile with another type: write to it
            else:
                if created or info.value == value:
                    return
        self.set(name, value)

    def update(self, ref: str, fn: Callable[[Any], Any]) -> Any:
        """``fn(current)`` written in one step (writers wait); returns the value written."""
        with self._lock:
            record = self._found(ref)
            self._check_open()
            new_value = fn(_copied(record.value))
            normalized = self._normalized(record.definition, new_value)
            self._write(record, normalized)
            return new_value

    def set_many(self, updates: Mapping[str, Any], atomic: bool) -> dict[str, bool | str]:
        """``{ref: True | message}``; atomic raises the first problem and changes nothing."""
        refs = list(updates)
        if not refs:
            return {}
        if len(refs) > self.limits.max_batch_size:
            raise batch_too_large(len(refs), self.limits.max_batch_size)
        for ref in refs:
            if self._record(ref) is None:
                check_ref(ref, self.limits.max_name_length)
        with self._lock:
            self._check_open()
            results: dict[str, bool | str] = {}
            checked: list[tuple[str, _Record, Any]] = []
            # As a frontend does: every value is checked first, then sizes (an atomic batch names its
            # oversized item by id, as the request to a frontend does).
            for ref in refs:
                try:
                    record = self._found(ref)
                    normalized = normalize_value(
                        record.definition.type, updates[ref], record.definition.constraints
                    )
                except (ValidationError, VariableNotFoundError) as exc:
                    if atomic:
                        raise
                    results[ref] = str(exc)
                    continue
                checked.append((ref, record, normalized))
            planned: list[tuple[str, _Record, Any]] = []
            for ref, record, normalized in checked:
                try:
                    self._check_size(record.definition, normalized)
                except LimitExceededError as exc:
                    if atomic:
                        raise in_atomic_batch(record.definition.id, exc, len(refs)) from None
                    results[ref] = str(exc)
                    continue
                planned.append((ref, record, normalized))
            if planned:
                now = _now_ms()
                changes = []
                self._sequence += 1
                for ref, record, normalized in planned:
                    current = self._records[record.definition.id]
                    version = current.version + 1
                    self._store(_Record(record.definition, normalized, version, current.created_at_ms, now))
                    changes.append((record.definition.id, record.definition.name, version, normalized))
                    results[ref] = True
                self._commit(UPDATED, tuple(changes), now)
            return {ref: results[ref] for ref in refs}

    def delete(self, ref: str) -> None:
        with self._lock:
            record = self._found(ref)
            definition = record.definition
            self._sequence += 1
            del self._records[definition.id]
            if self._ids.get(definition.name) == definition.id:
                del self._ids[definition.name]
            self.fast.pop(definition.name, None)
            self.fast.pop(definition.id, None)
            self._commit(DELETED, ((definition.id, definition.name, record.version, None),), _now_ms())

    def retire(self, *, close: bool, deleted: bool = False) -> None:
        """No more writes: the session moved to the bridge, or (``close``) the context was closed, and
        then reads stop too. Watchers get everything logged so far (and, when ``deleted``, a final
        session_deleted event), then stop."""
        with self._lock:
            if deleted and not self.retired:
                self._sequence += 1
                self._commit(SESSION_DELETED, (), _now_ms())
            self.retired = True
            if close:
                self.closed = True
                self.fast.clear()
            for listener in list(self._listeners):
                listener()

    # --- the change log --------------------------------------------------------------------------

    def events_after(self, position: WatchPosition) -> list[ChangeEvent]:
        """Events after ``position`` (advancing it), with a history_gone first when the capped log no
        longer reaches back that far."""
        with self._lock:
            entries = list(self._log)
            current = self.revision
        if position.revision > current:
            # A revision this session never reached: start over, as the bridge does.
            position.revision = 0
        events: list[ChangeEvent] = []
        oldest = entries[0][0] if entries else 0
        if oldest > position.revision + 1:
            events.append(ChangeEvent(HISTORY_GONE, oldest - 1))
            position.revision = oldest - 1
        for entry in entries:
            if entry[0] <= position.revision:
                continue
            position.revision = entry[0]
            event = _event(entry)
            names = position.names
            if names is not None and event.changes:
                changes = tuple(c for c in event.changes if c.name in names or c.id in names)
                if not changes:
                    continue
                event = ChangeEvent(event.kind, event.revision, changes, event.time)
            events.append(event)
        return events

    def pending_events(self, position: WatchPosition) -> tuple[list[ChangeEvent], bool]:
        """What a watcher delivers next: the events after ``position`` (advancing it), up to and
        including a session_deleted, and whether the watch ends with them (deleted, or retired)."""
        retired = self.retired  # read first: a retired store logs nothing more
        events = self.events_after(position)
        for index, event in enumerate(events):
            if event.kind == SESSION_DELETED:
                return events[: index + 1], True
        return events, retired

    def listen(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)
