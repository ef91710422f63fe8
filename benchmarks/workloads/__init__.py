"""The benchmark workloads. Each module has `run(env) -> dict` returning JSON-ready results.

Workloads that need the client SDK import `unified_bridge` lazily (inside `run`), so the rest of the
suite works while the SDK is being written; `sdk_missing()` tells the runner to skip them.
"""

from __future__ import annotations

import importlib.util

__all__ = ["sdk_missing"]


def sdk_missing() -> str | None:
    """Why the SDK workloads cannot run, or None when `unified_bridge.SessionContext` exists."""
    if importlib.util.find_spec("unified_bridge") is None:
        return "unified_bridge is not installed"
    try:
        from unified_bridge import SessionContext, connect  # noqa: F401
    except ImportError as exc:
        return f"the client SDK is not available yet ({exc})"
    return None
