"""The wheel alone makes a working server: it carries the Lua scripts and the generated code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_carries_scripts_generated_code_and_type_markers(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            tmp_path,
            ROOT,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("unified_bridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    scripts = {path.name for path in (ROOT / "lua").glob("*.lua")}
    assert scripts, "no Lua scripts in the source tree"
    assert {f"bridge_server/lua/{name}" for name in scripts} <= names
    assert {
        "unified_bridge/proto/unified_bridge_pb2.py",
        "unified_bridge/proto/unified_bridge_pb2.pyi",
        "unified_bridge/proto/unified_bridge_pb2_grpc.py",
        "unified_bridge/proto/unified_bridge_pb2_grpc.pyi",
        "unified_bridge/proto/unified_bridge.proto",
        "unified_bridge/py.typed",
        "bridge_server/py.typed",
    } <= names


def test_every_script_is_loaded_by_the_store():
    from bridge_server.scripts import Scripts

    on_disk = {path.stem for path in (ROOT / "lua").glob("*.lua")}
    assert on_disk == set(Scripts.__dataclass_fields__)
