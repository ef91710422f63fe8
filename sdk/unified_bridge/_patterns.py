"""The `pattern` constraint: regular expressions from users, matched with a time limit.

A pattern such as ``(a+)+$`` can take exponential time on a crafted value; with the standard `re`
module one such update would freeze a frontend's event loop for every client. The `regex` module
(same syntax) stops a match after a timeout, and the value is refused with a clear message.
"""

from __future__ import annotations

import functools

import regex

__all__ = ["PATTERN_TIMEOUT_SECONDS", "PatternTooSlowError", "check_pattern_syntax", "pattern_matches"]

PATTERN_TIMEOUT_SECONDS = 0.05


class PatternTooSlowError(Exception):
    """The match did not finish within PATTERN_TIMEOUT_SECONDS."""


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, flags=regex.VERSION0)


def check_pattern_syntax(pattern: str) -> None:
    """Raise ValueError with the parser's explanation when the pattern does not compile."""
    try:
        _compiled(pattern)
    except regex.error as exc:
        raise ValueError(str(exc)) from None


def pattern_matches(pattern: str, text: str) -> bool:
    """`re.search` semantics: the pattern may match anywhere unless it is anchored."""
    try:
        return _compiled(pattern).search(text, timeout=PATTERN_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        raise PatternTooSlowError(pattern) from None
