"""The public surface: a sorted, complete __all__ and a typed package."""

from __future__ import annotations

from pathlib import Path

import unified_bridge


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(unified_bridge) if not name.startswith("_")}
    # dspy: the optional integration, and cli: the command line, once imported
    modules = {"cli", "dspy", "errors", "proto", "types"}
    assert set(unified_bridge.__all__) == public - modules
    constants = [n for n in unified_bridge.__all__ if n.isupper()]
    others = [n for n in unified_bridge.__all__ if not n.isupper()]
    assert unified_bridge.__all__ == sorted(constants) + sorted(others)


def test_required_names_are_exported() -> None:
    for name in (
        "SessionContext",
        "AsyncSessionContext",
        "VariableType",
        "connect",
        "BridgeError",
        "VariableNotFoundError",
        "ValidationError",
        "VersionConflictError",
        "SessionNotFoundError",
        "AlreadyExistsError",
        "BridgeUnavailableError",
        "AuthenticationError",
    ):
        assert name in unified_bridge.__all__


def test_internal_helpers_are_not_exported() -> None:
    # cache_stats() returns a plain dict, so the class behind it stays private.
    assert "CacheStats" not in unified_bridge.__all__
    assert not hasattr(unified_bridge, "CacheStats")


def test_error_tree() -> None:
    assert issubclass(unified_bridge.VariableNotFoundError, KeyError)
    assert issubclass(unified_bridge.ValidationError, ValueError)
    assert all(
        issubclass(getattr(unified_bridge, n), unified_bridge.BridgeError)
        for n in unified_bridge.__all__
        if n.endswith("Error")
    )


def test_py_typed_ships() -> None:
    assert (Path(unified_bridge.__file__).parent / "py.typed").exists()
