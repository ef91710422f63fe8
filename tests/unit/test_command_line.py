"""bridge-server as a new user meets it: --version, and startup failures as one clear line."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys

import pytest

import unified_bridge
from bridge_server.logs import configure_logging


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge_server", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    done = _run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"bridge-server {unified_bridge.__version__}"
    assert unified_bridge.__version__ != "0+unknown"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--log-level", "LOUD"], "log level 'LOUD' is not one of"),
        (["--log-format", "xml"], "log format 'xml' is not one of"),
        (["--redis-url", "http://secret:pw@host:1"], "must start with redis://"),
        (["--port", "eighty"], "invalid int value"),
        (["--watch-idle-check-seconds", "0"], "watch_idle_check_seconds must be above 0"),
        (["--watch-own-writes-flush-seconds", "inf"], "watch_own_writes_flush_seconds must be at most 60"),
        (["--watch-own-writes-flush-seconds", "61"], "watch_own_writes_flush_seconds must be at most 60"),
    ],
)
def test_bad_settings_are_one_line(args: list[str], says: str) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert "pw" not in done.stderr  # a password in a URL is never echoed


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 1
    assert f"bridge-server: cannot start on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", "json")
    try:
        logging.getLogger("bridge_server.test").info("hello %s", "there")
        entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert entry["level"] == "INFO"
        assert (entry["logger"], entry["message"]) == ("bridge_server.test", "hello there")
    finally:
        root.handlers[:] = saved[0]  # pytest's own capture handlers included
        root.setLevel(saved[1])


def test_help_describes_every_flag_and_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from bridge_server.config import HELP, Settings

    fields = {field.name for field in dataclasses.fields(Settings)}
    assert set(HELP) == fields  # a new setting without a description fails here
    with pytest.raises(SystemExit):
        Settings.from_args(["--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
    for name in fields:
        assert f"--{name.replace('_', '-')}" in text
        assert "".join(HELP[name].split()) in text
        assert f"$BRIDGE_{name.upper()}" in text
