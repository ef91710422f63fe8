"""bridge watch: one line per change with old and new value, version and revision; Ctrl-C ends it
with exit 0. Run as the installed console script, the way a person or a script runs it."""

from __future__ import annotations

import json
import signal

from tests.cli.conftest import script_popen


def _started(process) -> str:
    """Wait for the watch to say it follows the session (the session was read: later changes show)."""
    line = process.stderr.readline()
    assert line.startswith("watching session "), line
    return line


def test_watch_prints_each_change_and_ends_on_ctrl_c(frontend, populated, session_id):
    process = script_popen("--target", frontend.target, "watch", session_id)
    try:
        assert _started(process).strip() == (
            f"watching session {session_id} from revision 8 (Ctrl-C to stop)"
        )
        populated.update_variable("lr", 0.5)
        assert process.stdout.readline() == "revision 9 updated lr: 0.25 -> 0.5 (version 1)\n"
        populated.update_variable("title", "bye")
        assert process.stdout.readline() == 'revision 10 updated title: "hello" -> "bye" (version 1)\n'
        populated.register_variable("fresh", "integer", 1)
        assert process.stdout.readline() == "revision 11 registered fresh: (none) -> 1 (version 0)\n"
        populated.delete_variable("fresh")
        assert process.stdout.readline() == "revision 12 deleted fresh: 1 -> (deleted) (version 0)\n"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate()
    assert process.returncode == 0, err
    assert out == ""
    assert "Traceback" not in err


def test_watch_json_lines_and_sigterm(frontend, populated, session_id):
    process = script_popen("--target", frontend.target, "watch", session_id, "--json", "--name", "vec")
    try:
        _started(process)
        populated.update_variable("lr", 0.5)  # filtered out by --name
        populated.update_variable("vec", [2, 3])
        record = json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate()
    assert process.returncode == 0, err
    assert out == ""
    assert record["time"].endswith("+00:00")
    del record["time"]
    assert record == {
        "revision": 10,
        "kind": "updated",
        "id": populated.get_variable_info("vec")["id"],
        "name": "vec",
        "version": 1,
        "old": [0.5, 1.5],
        "new": [2.0, 3.0],
    }


def test_watch_ends_when_the_session_is_deleted(frontend, client, populated, session_id):
    process = script_popen("--target", frontend.target, "watch", session_id)
    _started(process)
    populated.update_variable("steps", 4)
    first = process.stdout.readline()  # the stream is open: the deletion arrives as an event
    client.delete_session(session_id)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert first == "revision 9 updated steps: 3 -> 4 (version 1)\n"
    assert out == "revision 10 session_deleted: the session was deleted\n"


def test_watch_of_a_session_deleted_before_its_stream_opens(
    bridge, client, populated, session_id, monkeypatch
):
    """Deleted between the read and the stream: the same end, without a revision."""
    from unified_bridge.cli import _watch

    real_read = _watch.read_session

    def read_then_delete(*args, **kwargs):
        state = real_read(*args, **kwargs)
        client.delete_session(session_id)
        return state

    monkeypatch.setattr(_watch, "read_session", read_then_delete)
    result = bridge("watch", session_id, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"revision": None, "kind": "session_deleted", "time": None}


def test_watch_of_a_missing_session_is_exit_3(bridge, session_id):
    result = bridge("watch", session_id)
    assert result.exit_code == 3
    assert result.stderr.strip() == f"bridge: error: Session not found: {session_id}"
