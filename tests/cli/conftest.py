"""Fixtures of the command-line tests: ``bridge`` run in-process (click's runner) or as the installed
console script, against the shared in-process frontend over a private Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from unified_bridge import SessionContext, VariableType, connect
from unified_bridge.cli import cli

#: The console script pip installed next to this interpreter.
SCRIPT = Path(sys.executable).parent / "bridge"

# One variable of every type, with constraints where the type has them.
VARIABLES: tuple[tuple[str, VariableType, Any, dict[str, Any]], ...] = (
    ("lr", VariableType.FLOAT, 0.25, {"min": 0, "max": 1}),
    ("steps", VariableType.INTEGER, 3, {"min": 0, "max": 100}),
    ("title", VariableType.STRING, "hello", {"max_length": 10, "pattern": "^[a-z ]+$"}),
    ("enabled", VariableType.BOOLEAN, True, {}),
    ("optimizer", VariableType.CHOICE, "adam", {"choices": ["adam", "sgd"]}),
    ("module", VariableType.MODULE, "torch.nn", {"allowed_modules": ["torch.nn", "numpy"]}),
    ("vec", VariableType.EMBEDDING, [0.5, 1.5], {"dimensions": 2}),
    ("grid", VariableType.TENSOR, [[1, 2], [3, 4]], {"shape": [2, 2], "dtype": "int32"}),
)


def _clean_environment() -> dict[str, str]:
    """This process's environment without BRIDGE_* settings, so only what a test sets applies."""
    return {key: value for key, value in os.environ.items() if not key.startswith("BRIDGE_")}


@pytest.fixture
def bridge(frontend) -> Callable[..., Result]:
    """``bridge --target <frontend> ARGS`` in this process; returns click's Result."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None, target: bool = True):
        argv = ["--target", frontend.target, *args] if target else list(args)
        cleared = {key: None for key in os.environ if key.startswith("BRIDGE_")}
        return runner.invoke(cli, argv, input=input, env={**cleared, **(env or {})}, catch_exceptions=False)

    return run


@pytest.fixture
def script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The installed ``bridge`` console script as a subprocess (its environment: this one's, minus
    BRIDGE_* variables, plus ``env``)."""
    assert SCRIPT.exists(), f"the console script is not installed at {SCRIPT}"

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        return subprocess.run(
            [str(SCRIPT), *args],
            capture_output=True,
            text=True,
            input=input,
            env={**_clean_environment(), **(env or {})},
            check=False,
        )

    return run


def script_popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**_clean_environment(), **(env or {})},
    )


@pytest.fixture
def client(frontend) -> Iterator[Any]:
    with connect(frontend.target) as bridge_client:
        yield bridge_client


@pytest.fixture
def populated(client, session_id) -> Iterator[SessionContext]:
    """A session holding one variable of every type (see VARIABLES), with session metadata."""
    with client.session(session_id, metadata={"owner": "ana", "purpose": "cli tests"}) as ctx:
        for name, var_type, value, constraints in VARIABLES:
            ctx.register_variable(name, var_type, value, constraints=constraints, description=f"the {name}")
        yield ctx


def one_error_line(result: Any) -> str:
    """The stderr of a failed command: exactly one line starting 'bridge: error:' (no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bridge: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
