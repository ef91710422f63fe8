"""``bridge export SESSION > file.json`` and ``bridge import file.json``: a session moved whole,
ids and versions kept (the file format is in :mod:`unified_bridge.cli._format`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO

import click

from unified_bridge._switch import import_request
from unified_bridge.cli._errors import CliError, ExitCode, fail
from unified_bridge.cli._format import export_document, read_document
from unified_bridge.cli._options import ConnectOptions, pass_options
from unified_bridge.cli._output import to_json
from unified_bridge.cli._remote import import_request_as_is, read_session
from unified_bridge.cli._sessions import session_summary
from unified_bridge.errors import AlreadyExistsError, ValidationError

__all__ = ["export_session", "import_session"]

#: What the importer writes under ``migrated_from`` on the session and on every variable.
MIGRATED_FROM = "import"


@click.command("export")
@click.argument("session")
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8", atomic=True),
    default="-",
    help="Write here instead of standard output.",
)
@pass_options
def export_session(options: ConnectOptions, session: str, output: IO[str]) -> None:
    """Write the whole session as JSON: variable ids, versions, types, constraints, metadata, values,
    timestamps, and the session's metadata and ttl, all at one revision."""
    with options.connect() as client:
        state = read_session(client, session)
    document = export_document(session_summary(state.info), state.variables, datetime.now(UTC))
    output.write(to_json(document, indent=2) + "\n")


@click.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--session", "session_id", help="Import under this session id instead of the file's.")
@click.option(
    "--ttl",
    type=click.IntRange(min=0),
    help="Session ttl in seconds (default: the file's; 0: the frontend's).",
)
@pass_options
def import_session(options: ConnectOptions, file: IO[str], session_id: str | None, ttl: int | None) -> None:
    """Recreate a session from an export file, variable ids and versions kept, all or nothing.

    Importing the same file again answers "already imported" (exit 0); a session that exists with
    other content is left alone (exit 6).
    """
    try:
        document = json.load(file)
    except json.JSONDecodeError as exc:
        raise CliError(f"{file.name} is not JSON: {exc}", ExitCode.USAGE) from None
    try:
        plan = read_document(document, session_id, ttl)
    except ValidationError as exc:
        raise CliError(f"{file.name}: {exc}", ExitCode.USAGE) from None
    request = import_request(
        plan.snapshot, ttl=plan.ttl_seconds, migrated_from=MIGRATED_FROM, migrated_at=plan.exported_at
    )
    target = plan.snapshot.session_id
    with options.connect() as client:
        try:
            result = import_request_as_is(client, request)
        except AlreadyExistsError as exc:
            raise fail(exc, f"cannot import session {target}") from None
    count = len(plan.snapshot.variables)
    if result.imported:
        click.echo(f"imported session {target}: {count} variable(s), revision {result.revision}")
    else:
        click.echo(f"session {target} already imported (same content): nothing written")
