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
    # A client program installs the SDK's dependencies only; the frontend's come with [server].
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    always = {_project(r) for r in requires if "extra ==" not in r}
    server = {_project(r) for r in requires if 'extra == "server"' in r}
    assert always == {"grpcio", "protobuf", "msgpack", "regex", "click"}
    # The `bridge` command line ships in the wheel, with its console script.
    assert {"unified_bridge/cli/__init__.py", "unified_bridge/cli/__main__.py"} <= names
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "bridge = unified_bridge.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert {
        "redis",
        "fakeredis",
        "prometheus-client",
        "grpcio-health-checking",
        "grpcio-reflection",
    } <= server


def _project(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()


def test_the_sdk_imports_without_the_servers_dependencies():
    """A client program without the [server] extra: redis, fakeredis and prometheus are not needed."""
    script = (
        "import sys\n"
        "for name in ('redis', 'fakeredis', 'prometheus_client', 'grpc_health', 'grpc_reflection'):\n"
        "    sys.modules[name] = None  # as if not installed\n"
        "import unified_bridge\n"
        "from unified_bridge import LocalFirstContext, connect\n"
        "import unified_bridge.cli\n"
        "with LocalFirstContext() as ctx:\n"
        "    ctx['x'] = 1\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_bridge_server_without_its_extra_names_it():
    script = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from bridge_server.__main__ import main\n"
        "sys.exit(main(['--port', '0']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pip install 'unified-bridge[server]'" in done.stderr


def test_every_script_is_loaded_by_the_store():
    from bridge_server.scripts import Scripts

    on_disk = {path.stem for path in (ROOT / "lua").glob("*.lua")}
    assert on_disk == set(Scripts.__dataclass_fields__)
