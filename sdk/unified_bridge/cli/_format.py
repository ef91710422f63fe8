"""The export file of ``bridge export`` / ``bridge import``: one session as a JSON document.

Format version 1::

    {
      "format": "unified-bridge-session",
      "format_version": 1,
      "exported_at": "2026-12-04T18:00:07.123+00:00",
      "session": {
        "id": "run-1",
        "metadata": {"owner": "ana"},
        "ttl_seconds": 3600,
        "revision": 12,             # the session revision the variables were read at
        "variable_count": 2,
        "created_at": "...", "last_active": "..."
      },
      "variables": [              # sorted by name
        {"id": "var_lr_0a1b2c3d", "name": "lr", "type": "float", "value": 0.01, "version": 4,
         "constraints": {"min": 0, "max": 1}, "metadata": {}, "description": "",
         "created_at": "...", "updated_at": "..."}
      ]
    }

Times are ISO 8601 in UTC with milliseconds (the precision the bridge keeps). A file written by hand
needs, per variable, ``id`` (``var_<name>_<8 hex digits>``), ``name``, ``type``, ``value`` and
``version``; ``constraints`` and ``metadata`` default to ``{}``, ``description`` to ``""``, times to
``exported_at``, the session's ``metadata`` to ``{}`` and ``ttl_seconds`` to 0 (the frontend's).
Values are JSON of the Python value (see :mod:`unified_bridge.cli._output` for non-finite floats).
A reader rejects another ``format``, and a ``format_version`` above the one it knows; a later
version only adds fields.

Importing keeps every variable's id, version, value, constraints, metadata, description and
timestamps, and the session's metadata and ttl. The import itself is one mutation, so the new
session's revision is ``session.revision + 1``, and the importer adds ``migrated_from`` and
``migrated_at`` to the metadata of the session and of every variable (``migrated_at`` is the file's
``exported_at``: importing the same file twice is the same import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from unified_bridge import SessionSnapshot, ValidationError, VariableState
from unified_bridge._models import Definition
from unified_bridge.cli._output import format_time, json_value, milliseconds, parse_time
from unified_bridge.types import (
    VariableType,
    normalize_value,
    validate_constraints,
    validate_metadata,
    validate_name,
    validate_session_id,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ImportPlan",
    "export_document",
    "read_document",
    "variable_document",
]

FORMAT_NAME: Final = "unified-bridge-session"
FORMAT_VERSION: Final = 1


def _bounds_to_json(constraints: Mapping[str, Any]) -> dict[str, Any]:
    # min/max may be infinite; JSON cannot say so, the strings "inf"/"-inf" can.
    return {key: json_value(value) for key, value in sorted(constraints.items())}


def variable_document(variable: Mapping[str, Any]) -> dict[str, Any]:
    """One variable (a ``list_variables()`` dict) as the export file and ``--json`` output write it."""
    return {
        "id": variable["id"],
        "name": variable["name"],
        "type": str(variable["type"]),
        "value": json_value(variable["value"]),
        "version": variable["version"],
        "constraints": _bounds_to_json(variable["constraints"]),
        "metadata": dict(sorted(variable["metadata"].items())),
        "description": variable["description"],
        "created_at": format_time(variable["created_at"]),
        "updated_at": format_time(variable["updated_at"]),
    }


def export_document(
    session: Mapping[str, Any], variables: Sequence[Mapping[str, Any]], exported_at: datetime
) -> dict[str, Any]:
    """The whole file: ``session`` as ``session_summary`` gives it, ``variables`` as listed."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "exported_at": format_time(exported_at),
        "session": dict(session),
        "variables": [variable_document(v) for v in sorted(variables, key=lambda v: str(v["name"]))],
    }


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What a file asks to import."""

    snapshot: SessionSnapshot
    ttl_seconds: int
    exported_at: datetime


def _bad(where: str, problem: str) -> ValidationError:
    return ValidationError(f"not a valid export file: {where}: {problem}")


def _field(document: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in document:
        raise _bad(where, f"{key!r} is missing")
    value = document[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _bad(where, f"{key!r} must be {expected}, got {type(value).__name__}")
    return value


def _optional(document: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    return _field(document, key, kind, where) if key in document else default


def _count(document: Mapping[str, Any], key: str, where: str) -> int:
    value: int = _field(document, key, int, where)
    if value < 0:
        raise _bad(where, f"{key!r} must not be negative, got {value}")
    return value


def _time_ms(document: Mapping[str, Any], key: str, where: str, default: int) -> int:
    """The time under ``key`` in milliseconds; ``default`` when the file gives none."""
    text = document.get(key)
    if text is None:
        return default
    if not isinstance(text, str):
        raise _bad(where, f"{key!r} must be an ISO 8601 time, got {type(text).__name__}")
    try:
        return milliseconds(parse_time(text))
    except ValueError:
        raise _bad(where, f"{key!r} is not an ISO 8601 time: {text!r}") from None


def _constraints(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Bounds written as "inf" / "-inf" (JSON has no infinity) back as floats."""
    restored = dict(raw)
    for key in ("min", "max"):
        if restored.get(key) in ("inf", "-inf"):
            restored[key] = float(restored[key])
    return restored


def _variable(raw: Any, index: int, exported_ms: int) -> VariableState:
    where = f"variables[{index}]"
    if not isinstance(raw, Mapping):
        raise _bad(where, f"must be an object, got {type(raw).__name__}")
    name = _field(raw, "name", str, where)
    where = f"variable {name!r}"
    try:
        validate_name(name)
        var_type = VariableType.parse(_field(raw, "type", str, where))
        constraints = validate_constraints(
            var_type, _constraints(_optional(raw, "constraints", dict, where, {}))
        )
        if "value" not in raw:
            raise _bad(where, "'value' is missing")
        value = normalize_value(var_type, raw["value"], constraints)
        metadata = validate_metadata(_optional(raw, "metadata", dict, where, {}))
    except ValidationError as exc:
        raise _bad(where, str(exc)) from None
    definition = Definition(
        id=_field(raw, "id", str, where),
        name=name,
        type=var_type,
        constraints=constraints,
        metadata=metadata,
        description=_optional(raw, "description", str, where, ""),
    )
    return VariableState(
        definition=definition,
        value=value,
        version=_count(raw, "version", where),
        created_at_ms=_time_ms(raw, "created_at", where, exported_ms),
        updated_at_ms=_time_ms(raw, "updated_at", where, exported_ms),
    )


def read_document(document: Any, session_id: str | None = None, ttl_seconds: int | None = None) -> ImportPlan:
    """The import a parsed export file describes (into ``session_id`` when given, else the file's
    session id); ValidationError names the first problem found."""
    if not isinstance(document, Mapping):
        raise _bad("the file", f"must hold a JSON object, got {type(document).__name__}")
    if document.get("format") != FORMAT_NAME:
        raise _bad("the file", f"'format' must be {FORMAT_NAME!r}, got {document.get('format')!r}")
    version = _count(document, "format_version", "the file")
    if version < 1:
        raise _bad("the file", f"format_version must be at least 1, got {version}")
    if version > FORMAT_VERSION:
        raise _bad(
            "the file",
            f"format_version {version} is newer than this bridge reads ({FORMAT_VERSION}): upgrade it",
        )
    exported_text = _field(document, "exported_at", str, "the file")
    try:
        exported_at = parse_time(exported_text)
    except ValueError:
        raise _bad("the file", f"'exported_at' is not an ISO 8601 time: {exported_text!r}") from None
    exported_ms = milliseconds(exported_at)
    session = _field(document, "session", dict, "the file")
    raw_variables = _field(document, "variables", list, "the file")
    target = session_id if session_id is not None else _field(session, "id", str, "session")
    try:
        validate_session_id(target)
        metadata = validate_metadata(_optional(session, "metadata", dict, "session", {}))
    except ValidationError as exc:
        raise _bad("session", str(exc)) from None
    snapshot = SessionSnapshot(
        session_id=target,
        metadata=metadata,
        revision=_count(session, "revision", "session"),
        created_at_ms=_time_ms(session, "created_at", "session", exported_ms),
        variables=tuple(_variable(raw, index, exported_ms) for index, raw in enumerate(raw_variables)),
    )
    ttl = ttl_seconds if ttl_seconds is not None else _optional(session, "ttl_seconds", int, "session", 0)
    if ttl < 0:
        raise _bad("session", f"'ttl_seconds' must not be negative, got {ttl}")
    return ImportPlan(snapshot, ttl, exported_at)
