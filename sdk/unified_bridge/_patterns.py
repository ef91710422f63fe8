"""The `pattern` constraint: regular expressions from users, matched with a time limit.

A pattern such as ``(a+)+$`` can take exponential time on a crafted value; with the standard `re`
module one such update would freeze a frontend's event loop for every client. The `regex` module
(same syntax) stops a match after a timeout, and the value is refused with a clear message.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import regex

__all__ = [
    "MAX_NESTING",
    "MAX_PATTERN_LENGTH",
    "MAX_REPETITION",
    "PATTERN_CACHE_BYTES",
    "PATTERN_TIMEOUT_SECONDS",
    "PatternTooSlowError",
    "check_pattern_syntax",
    "pattern_matches",
]

PATTERN_TIMEOUT_SECONDS = 0.05
#: Compiling is not covered by the match timeout, so what a pattern may ask of the compiler is capped:
#: its length, and counted repetitions (``a{1000000000}`` took a frontend to 24 GB), as RE2 caps them.
MAX_PATTERN_LENGTH = 1000
MAX_REPETITION = 1000
#: How many pattern elements the repetitions may unfold into: ``((a{1000}){1000}){1000}`` passes the
#: per-repetition cap, but would compile for minutes. 10,000 compiles in milliseconds.
MAX_UNFOLDED_SIZE = 10_000
#: Groups nested deeper than this are refused: the compiler recurses per level, and whether it ran out
#: of stack would otherwise depend on the thread it ran on.
MAX_NESTING = 100
_COUNTED = regex.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


class PatternTooSlowError(Exception):
    """The match did not finish within PATTERN_TIMEOUT_SECONDS."""


#: What the compiled patterns kept for reuse may take, in (estimated) bytes. A compiled pattern takes
#: about 250 bytes per element its repetitions unfold into (measured with tracemalloc: 2.5 MB for
#: ``([ab]{100}){100}``), so a cap by count alone (1024 of those: 2.5 GB) would not bound memory.
PATTERN_CACHE_BYTES = 64 * 1024 * 1024


class _CompiledPatterns:
    """Compiled patterns, least recently used dropped first, bounded by estimated bytes."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._entries: OrderedDict[str, tuple[regex.Pattern[str], int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pattern: str) -> regex.Pattern[str]:
        with self._lock:
            found = self._entries.get(pattern)
            if found is not None:
                self._entries.move_to_end(pattern)
                return found[0]
        compiled = regex.compile(pattern, flags=regex.VERSION0)
        cost = 2048 + 256 * _unfolded_size(pattern)
        with self._lock:
            if pattern not in self._entries and cost <= self._budget:
                self._entries[pattern] = (compiled, cost)
                self._used += cost
                while self._used > self._budget:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._used -= dropped
        return compiled

    @property
    def used_bytes(self) -> int:
        return self._used


_CACHE = _CompiledPatterns(PATTERN_CACHE_BYTES)


def _compiled(pattern: str) -> regex.Pattern[str]:
    return _CACHE.get(pattern)


def check_pattern_syntax(pattern: str) -> None:
    """Raise ValueError with the parser's explanation when the pattern does not compile, or asks more
    of the compiler than the caps allow."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"the pattern is {len(pattern)} characters, at most {MAX_PATTERN_LENGTH}")
    size = _unfolded_size(pattern)
    if size > MAX_UNFOLDED_SIZE:
        raise ValueError(
            f"its repetitions unfold into {size} elements, above the limit of {MAX_UNFOLDED_SIZE}"
        )
    try:
        _compiled(pattern)
    except regex.error as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError("the pattern nests too deeply") from None


def _unfolded_size(pattern: str) -> int:
    """About how many elements the compiler builds: each counted repetition multiplies what it
    repeats (a group's content included). One linear pass; escapes and classes count as one."""
    sizes = [0]  # the size of each open group's content so far
    last = 0  # the size of the element a quantifier would repeat
    i = 0
    while i < len(pattern):
        char = pattern[i]
        counted = _COUNTED.match(pattern, i) if char == "{" else None
        if counted is not None:
            count = max(int(number) for number in counted.groups() if number)
            if count > MAX_REPETITION:
                raise ValueError(f"repetition {counted.group(0)} is above the limit of {MAX_REPETITION}")
            sizes[-1] += last * (count - 1)
            last *= count
            i = counted.end()
            continue
        if char == "(":
            sizes.append(0)
            if len(sizes) > MAX_NESTING + 1:
                raise ValueError(f"the pattern nests groups deeper than {MAX_NESTING}")
            i += 1
            continue
        if char == ")" and len(sizes) > 1:
            last = max(sizes.pop(), 1)
            sizes[-1] += last
            i += 1
            continue
        if char == "\\":
            i += 2
        elif char == "[":
            i = _class_end(pattern, i)
        else:
            i += 1
        last = 1
        sizes[-1] += 1
    return sum(sizes)


def _class_end(pattern: str, start: int) -> int:
    """The index after the character class opening at ``start`` (or the end of the pattern)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def pattern_matches(pattern: str, text: str) -> bool:
    """`re.search` semantics: the pattern may match anywhere unless it is anchored."""
    try:
        return _compiled(pattern).search(text, timeout=PATTERN_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        raise PatternTooSlowError(pattern) from None
