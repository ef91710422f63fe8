"""``bridge vars set``: the text of VALUE read as the variable's declared type.

The SDK's own validation (:func:`unified_bridge.types.normalize_value`) then checks the value against
the type and the constraints, so the command line accepts exactly what a program may write.

========== ===================================================================================
type       VALUE
========== ===================================================================================
float      a number (``0.5``, ``1e-3``, ``nan``, ``inf``)
integer    a whole number (``42``, ``-7``)
boolean    ``true`` or ``false`` (any case)
string     the text as it is
choice     the text as it is (one of the variable's choices)
module     the text as it is (a module name)
embedding  a JSON list of numbers: ``[0.1, 0.2, 0.3]``
tensor     JSON: nested lists ``[[1, 2], [3, 4]]`` or ``{"shape": [2, 2], "values": [1, 2, 3, 4]}``
========== ===================================================================================
"""

from __future__ import annotations

import json
from typing import Any

from unified_bridge.errors import ValidationError
from unified_bridge.types import Constraints, VariableType, normalize_value

__all__ = ["parse_value"]

_JSON_TYPES = frozenset({VariableType.EMBEDDING, VariableType.TENSOR})
_ARTICLE = {VariableType.EMBEDDING: "an", VariableType.TENSOR: "a"}


def parse_value(var_type: VariableType, text: str, constraints: Constraints) -> Any:
    """The value ``text`` stands for, checked like any write; ValidationError says what is wrong."""
    raw: Any = text
    if var_type in _JSON_TYPES:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            example = "[0.1, 0.2]" if var_type is VariableType.EMBEDDING else "[[1, 2], [3, 4]]"
            raise ValidationError(
                f"{_ARTICLE[var_type]} {var_type} value is written as JSON, e.g. {example!r}; "
                f"{text!r} is not JSON ({exc.msg})"
            ) from None
    elif var_type in (VariableType.FLOAT, VariableType.INTEGER):
        raw = text.strip()
    return normalize_value(var_type, raw, constraints)
