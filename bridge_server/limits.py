"""The frontend's limits on what one request may hold, shared by every store operation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge_server.config import Settings
from unified_bridge._rules import check_description, check_encoded_size
from unified_bridge.errors import ValidationError
from unified_bridge.types import VariableType, encode_value, validate_metadata

__all__ = ["checked_description", "checked_encoding", "checked_metadata", "checked_ttl"]


def checked_ttl(settings: Settings, ttl_seconds: int | None) -> int:
    """The session TTL to use: the default when none is given, never above the maximum."""
    ttl = ttl_seconds or settings.default_ttl_seconds
    if ttl > settings.max_ttl_seconds:
        raise ValidationError(f"ttl {ttl} s is above the maximum of {settings.max_ttl_seconds} s")
    return ttl


def checked_metadata(settings: Settings, metadata: Mapping[str, str] | None) -> dict[str, str]:
    return validate_metadata(metadata, settings.max_metadata_entries, settings.max_metadata_bytes)


def checked_description(settings: Settings, description: str) -> str:
    check_description(description, settings.max_description_length)
    return description


def checked_encoding(
    settings: Settings, name: str, var_type: VariableType, value: object, constraints: Mapping[str, Any]
) -> bytes:
    """The stored bytes of a normalized value, within the value size limit."""
    encoded = encode_value(var_type, value, constraints)
    check_encoded_size(name, len(encoded), settings.max_value_bytes)
    return encoded
