"""What a user's pattern may ask of the regex compiler: bounded, refused with a clear message."""

from __future__ import annotations

import pytest

from unified_bridge import ValidationError
from unified_bridge.types import VariableType, normalize_value, validate_constraints


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("a{1000000000}", "above the limit of 1000"),  # took a frontend to 24 GB
        ("a{10000000}", "above the limit of 1000"),  # blocked the event loop for seconds
        ("((a{1000}){1000}){1000}", "unfold into 1000000000 elements"),
        ("(a{1000}){1000}", "unfold into 1000000 elements"),
        ("(" * 499 + "a" + ")" * 499, "nests groups deeper than 100"),  # RecursionError, INTERNAL before
        ("(" * 101 + "a" + ")" * 101, "nests groups deeper than 100"),
        ("x" * 1001, "at most 1000"),
    ],
)
def test_patterns_that_would_stall_or_bloat_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(ValidationError, match="is not a valid regular expression") as refused:
        validate_constraints(VariableType.STRING, {"pattern": pattern})
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (r"^[A-Z]+[0-9]{3}$", "ABC123", "ABC12"),
        (r"^\d{3}-\d{4}$", "555-1234", "5555-123"),
        (r"^([ab]{10}){5}$", "ab" * 25, "ab" * 24),
        (r"^[{]{2}$", "{{", "{"),
    ],
)
def test_ordinary_patterns_still_work(pattern: str, good: str, bad: str) -> None:
    constraints = validate_constraints(VariableType.STRING, {"pattern": pattern})
    assert normalize_value(VariableType.STRING, good, constraints) == good
    with pytest.raises(ValidationError, match="pattern"):
        normalize_value(VariableType.STRING, bad, constraints)


def test_compiled_patterns_are_kept_within_a_byte_budget() -> None:
    from unified_bridge._patterns import _CompiledPatterns

    cache = _CompiledPatterns(budget=3 * (2048 + 256 * 10_000))  # room for three of the largest
    for n in range(10):
        cache.get(f"([ab]{{100}}){{100}}x{n}")  # each unfolds into ~10,000 elements
    assert cache.used_bytes <= 3 * (2048 + 256 * 10_000)
    assert cache.get("x{3}").search("xxx")  # small ones still fit, and work
