"""How ``bridge`` writes: values and times as JSON (strict JSON: no NaN), plain text for people.

Values are JSON of their Python value (numbers, ``true``/``false``, strings, lists), except float
values that are not finite, which JSON cannot hold: they are written as the strings ``"nan"``,
``"inf"`` and ``"-inf"`` (which a float variable accepts back).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from unified_bridge.types import VariableType

__all__ = [
    "EPOCH",
    "echo_json",
    "format_time",
    "json_option",
    "json_value",
    "milliseconds",
    "parse_time",
    "shown_value",
    "table",
    "to_json",
]

F = TypeVar("F", bound=Callable[..., Any])

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT_TYPES = frozenset({VariableType.STRING, VariableType.CHOICE, VariableType.MODULE})


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Write JSON (for scripts).")(command)


def json_value(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string (``"nan"``, ``"inf"``, ``"-inf"``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {key: json_value(item) for key, item in value.items()}
    return value


def to_json(document: Any, *, indent: int | None = None) -> str:
    """Strict JSON (``allow_nan=False``: pass values through :func:`json_value` first)."""
    return json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False)


def echo_json(document: Any, *, indent: int | None = 2) -> None:
    click.echo(to_json(document, indent=indent))


def shown_value(value: Any, var_type: VariableType | None = None) -> str:
    """A value as one line for people and ``$(...)``: text types bare, everything else as JSON."""
    if var_type in _TEXT_TYPES and isinstance(value, str):
        return value
    return to_json(json_value(value))


def format_time(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds (the precision the bridge keeps), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def milliseconds(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float rounding)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())
