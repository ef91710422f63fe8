"""bridge watch: one line per change with old and new value, version and revision; Ctrl-C ends it
with exit 0. Run as the installed console script, the way a person or a script runs it."""

from __future__ import annotations

import json
import signal

from tests.cli.conftest import script_popen
from unified_bridge import connect


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


def _watch_an_import(bridge, frontend, session_id, lines: int, edit=None) -> list[str]:
    """The first ``lines`` lines a watch of a created, never written session prints when an export
    of another session (holding a = 1 and b = "two") is imported into it, and the line that follows
    when the session is then deleted; ``edit`` may change the file first."""
    with connect(frontend.target) as client, client.session(session_id, cache=False) as source:
        source.register_variable("a", "integer", 1)
        source.register_variable("b", "string", "two")
        document = json.loads(bridge("--target", frontend.target, "export", session_id, target=False).stdout)
        if edit is not None:
            edit(document)
        target_id = f"{session_id}_copy"
        client.session(target_id, cache=False).close()  # created, never written: may be imported into
        process = script_popen("--target", frontend.target, "watch", target_id)
        try:
            _started(process)
            imported = bridge(
                "--target", frontend.target, "import", "-", "--session", target_id,
                input=json.dumps(document), target=False,
            )  # fmt: skip
            assert imported.exit_code == 0, imported.output
            seen = [process.stdout.readline().rstrip("\n") for _ in range(lines)]
            client.delete_session(target_id)
            out, err = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    (last,) = out.splitlines()
    assert last.endswith("session_deleted: the session was deleted")
    return seen


def test_watch_of_an_import_that_skips_revisions_resyncs(bridge, frontend, session_id):
    # The import lands at its file's revision + 1 (3): the watch, at 0, missed 1 and 2.
    assert _watch_an_import(bridge, frontend, session_id, 3) == [
        "revision 2 history_gone: events were lost to this watch; reading the session again",
        "revision 3 resynced a: (none) -> 1 (version 0)",
        'revision 3 resynced b: (none) -> "two" (version 0)',
    ]


def test_watch_of_an_import_event_reads_the_values_it_leaves_out(bridge, frontend_factory, session_id):
    # import_chunk_size=1: a staged import, whose event lists the variables without their values.
    staged = frontend_factory(import_chunk_size=1)

    def from_revision_0(document):  # the import is then revision 1: the very next event
        document["session"]["revision"] = 0

    assert _watch_an_import(bridge, staged, session_id, 2, from_revision_0) == [
        "revision 1 imported a: (none) -> 1 (version 0)",
        'revision 1 imported b: (none) -> "two" (version 0)',
    ]


def test_watch_reads_the_session_again_when_events_were_lost(
    bridge, frontend_factory, session_id, monkeypatch
):
    from unified_bridge.cli import _watch

    short = frontend_factory(change_log_length=2)
    client = connect(short.target)
    ctx = client.session(session_id, cache=False)
    ctx.register_variable("n", "integer", 0)
    real_read = _watch.read_session
    reads = []

    def read_then_write(*args, **kwargs):
        state = real_read(*args, **kwargs)
        reads.append(state.info.revision)
        if len(reads) == 1:  # more changes than the log keeps, before the stream opens
            for n in range(1, 6):
                ctx.update_variable("n", n)
        else:  # the second read: end the watch
            client.delete_session(session_id)
        return state

    monkeypatch.setattr(_watch, "read_session", read_then_write)
    try:
        result = bridge("--target", short.target, "watch", session_id, target=False)
    finally:
        ctx.close()
        client.close()
    assert result.exit_code == 0, result.output
    assert reads == [1, 6]
    history_gone, *rest = result.stdout.splitlines()
    assert history_gone.endswith(" history_gone: events were lost to this watch; reading the session again")
    assert rest == [
        "revision 6 resynced n: 0 -> 5 (version 5)",
        "session_deleted: the session was deleted",  # deleted before the second stream opened
    ]
