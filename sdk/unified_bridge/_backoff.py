"""Capped exponential backoff with jitter: the one formula behind every wait between attempts
(retried calls, reconnecting watch streams, compare-and-set conflicts)."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(
    attempt: int, initial: float, maximum: float, multiplier: float = 2.0, *, full_jitter: bool = False
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): up to
    ``min(maximum, initial * multiplier ** (attempt - 1))``, jittered over its upper half, or over all
    of it with ``full_jitter`` (contenders for one thing spread out instead of colliding again)."""
    exponent = min(max(attempt - 1, 0), 64)  # no float overflow however many attempts
    cap = min(maximum, initial * multiplier**exponent)
    return random.uniform(0 if full_jitter else cap / 2, cap)
