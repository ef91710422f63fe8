"""``bridge watch SESSION``: one line per change, as it happens, until Ctrl-C.

The session is read at one revision first (so every change can show the value it replaced), then
followed from that revision with the SDK's ``watch()``, which reconnects by itself. When the frontend
no longer has the events the watch missed (``history_gone``: its change log is capped, and an import
jumps the revision), the session is read again, every variable that differs from what the watch
knew is printed as ``resynced``, and the watch goes on from there: no change goes unseen, though
several may show as one. The watch ends with exit 0 on Ctrl-C or SIGTERM, and when the session is
deleted (after a ``session_deleted`` line).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Collection, Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import click

from unified_bridge import BridgeClient, Change, ChangeEvent, SessionNotFoundError
from unified_bridge.cli._options import ConnectOptions, pass_options
from unified_bridge.cli._output import format_time, json_value, to_json
from unified_bridge.cli._remote import SessionState, open_session, read_session

__all__ = ["watch"]


@dataclass(slots=True)
class _Known:
    name: str
    version: int
    value: Any


class _Values:
    """What the watch knows of every variable, by id, to show what a change replaced."""

    def __init__(self, state: SessionState) -> None:
        self.by_id = {v["id"]: _Known(v["name"], v["version"], v["value"]) for v in state.variables}

    def apply(self, kind: str, change: Change) -> tuple[Any, Any]:
        """(old, new) for ``change``; None where there is no value (before a registration, after a
        deletion)."""
        known = self.by_id.pop(change.id, None)
        old = None if known is None else known.value
        if kind == "deleted":
            return old, None
        self.by_id[change.id] = _Known(change.name, change.version, change.value)
        return old, change.value

    def differences(self, newer: _Values) -> Iterator[tuple[Change, Any, Any]]:
        """(change, old, new) for every variable that ``newer`` holds otherwise (new ones, changed
        ones, and deleted ones with new None)."""
        for var_id, now in newer.by_id.items():
            before = self.by_id.get(var_id)
            if before is None or before.version != now.version:
                old = None if before is None else before.value
                yield Change(var_id, now.name, now.version, now.value), old, now.value
        for var_id, before in self.by_id.items():
            if var_id not in newer.by_id:
                yield Change(var_id, before.name, before.version), before.value, None


def _selected(change: Change, names: Collection[str]) -> bool:
    return not names or change.name in names or change.id in names


def _change_record(event: ChangeEvent, change: Change, old: Any, new: Any) -> dict[str, Any]:
    return {
        "revision": event.revision,
        "kind": event.kind,
        "time": format_time(event.time),
        "id": change.id,
        "name": change.name,
        "version": change.version,
        "old": json_value(old),
        "new": json_value(new),
    }


def _change_line(record: dict[str, Any]) -> str:
    # Values as JSON (strings quoted): an event does not say the type, and quotes keep "" visible.
    # No variable holds None: None is "no variable" (before a registration, after a deletion).
    old = "(none)" if record["old"] is None else to_json(record["old"])
    new = "(deleted)" if record["new"] is None else to_json(record["new"])
    return (
        f"revision {record['revision']} {record['kind']} {record['name']}: {old} -> {new} "
        f"(version {record['version']})"
    )


def _print_change(as_json: bool, event: ChangeEvent, change: Change, old: Any, new: Any) -> None:
    record = _change_record(event, change, old, new)
    click.echo(to_json(record) if as_json else _change_line(record))


def _note(as_json: bool, event: ChangeEvent | None, text: str) -> None:
    """A line about the stream rather than a variable; ``event`` None: a deletion seen only as the
    session's absence (its revision is not known)."""
    kind = "session_deleted" if event is None else event.kind
    revision = None if event is None else event.revision
    if as_json:
        time = None if event is None else format_time(event.time)
        click.echo(to_json({"revision": revision, "kind": kind, "time": time}))
    elif revision is None:
        click.echo(f"{kind}: {text}")
    else:
        click.echo(f"revision {revision} {kind}: {text}")


def _fill_missing_values(client: BridgeClient, state: SessionState, event: ChangeEvent) -> ChangeEvent:
    """An import's event may list variables without values ("read it"): read them."""
    missing = [c for c in event.changes if c.value is None and event.kind != "deleted"]
    if not missing:
        return event
    with open_session(client, state.info) as ctx:
        values = ctx.get_variables([c.id for c in missing])
    changes = tuple(
        Change(c.id, c.name, c.version, values[c.id]) if c.id in values else c for c in event.changes
    )
    return ChangeEvent(event.kind, event.revision, changes, event.time)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the watch like Ctrl-C (when running in the main thread, where signals land)."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.argument("session")
@click.option("--name", "names", multiple=True, help="Only this variable (name or id); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_options
def watch(options: ConnectOptions, session: str, names: tuple[str, ...], as_json: bool) -> None:
    """Follow a session's changes: one line per change with the old and new value, the variable's
    version and the session revision. Ctrl-C ends it (exit 0).

    \b
    revision 7 updated lr: 0.1 -> 0.05 (version 3)
    --json: {"revision": 7, "kind": "updated", "time": "...", "id": "var_lr_...", "name": "lr",
             "version": 3, "old": 0.1, "new": 0.05}
    """
    # Ctrl-C (or SIGTERM) is the normal way to stop a watch: exit 0.
    with options.connect() as client, _sigterm_as_interrupt(), contextlib.suppress(KeyboardInterrupt):
        _follow(client, session, frozenset(names), as_json)


def _follow(client: BridgeClient, session: str, names: frozenset[str], as_json: bool) -> None:
    known: _Values | None = None
    while True:
        try:
            state = read_session(client, session)
        except SessionNotFoundError:
            if known is None:
                raise  # never there: exit 3
            _note(as_json, None, "the session was deleted")  # deleted while being read again
            return
        current = _Values(state)
        if known is not None:  # events were lost: show where each variable got to meanwhile
            resync = ChangeEvent("resynced", state.info.revision)
            for change, old, new in known.differences(current):
                if _selected(change, names):
                    _print_change(as_json, resync, change, old, new)
        known = current
        if not _follow_from(client, state, known, names, as_json):
            return


def _follow_from(
    client: BridgeClient, state: SessionState, values: _Values, names: frozenset[str], as_json: bool
) -> bool:
    """Print the changes after ``state``; True when the watch must start again from a new read."""
    revision = state.info.revision
    session = state.info.session_id
    click.echo(f"watching session {session} from revision {revision} (Ctrl-C to stop)", err=True)
    with open_session(client, state.info) as ctx:
        # watch() is a generator: closing it cancels the stream at once.
        events = cast("Generator[ChangeEvent, None, None]", ctx.watch(names or None, from_revision=revision))
        with contextlib.closing(events):
            try:
                for event in events:
                    if event.kind == "history_gone":
                        _note(as_json, event, "events were lost to this watch; reading the session again")
                        return True
                    if event.kind == "session_deleted":
                        _note(as_json, event, "the session was deleted")
                        return False
                    for change in _fill_missing_values(client, state, event).changes:
                        _print_change(as_json, event, change, *values.apply(event.kind, change))
            except SessionNotFoundError:  # deleted between the read and the stream's opening
                _note(as_json, None, "the session was deleted")
    return False
