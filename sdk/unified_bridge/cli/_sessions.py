"""``bridge sessions list | show | delete``."""

from __future__ import annotations

import itertools
from typing import Any

import click

from unified_bridge.cli._errors import CliError, ExitCode
from unified_bridge.cli._options import ConnectOptions, pass_options
from unified_bridge.cli._output import echo_json, format_time, json_option, table
from unified_bridge.cli._remote import SessionInfo, get_session, iter_session_ids

__all__ = ["session_summary", "sessions"]


def session_summary(info: SessionInfo) -> dict[str, Any]:
    """A session as ``bridge sessions show --json`` and ``bridge export`` write it."""
    return {
        "id": info.session_id,
        "metadata": dict(sorted(info.metadata.items())),
        "ttl_seconds": info.ttl_seconds,
        "revision": info.revision,
        "variable_count": info.variable_count,
        "created_at": format_time(info.created_at),
        "last_active": format_time(info.last_active),
    }


@click.group()
def sessions() -> None:
    """List, inspect and delete sessions."""


@sessions.command("list")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Stop after this many sessions (default: all of them)."
)
@click.option(
    "--page-size",
    type=click.IntRange(min=0, max=1000),
    default=0,
    help="Sessions asked per call (0: the frontend's default, 100).",
)
@json_option
@pass_options
def list_sessions(options: ConnectOptions, limit: int | None, page_size: int, as_json: bool) -> None:
    """Every session id, one per line, following every page of the listing."""
    with options.connect() as client:
        ids = iter_session_ids(client, min(page_size or limit or 0, 1000))
        if as_json:
            echo_json(list(itertools.islice(ids, limit)))
            return
        for session_id in itertools.islice(ids, limit):
            click.echo(session_id)


@sessions.command("show")
@click.argument("session")
@json_option
@pass_options
def show_session(options: ConnectOptions, session: str, as_json: bool) -> None:
    """A session's metadata, ttl, revision and variable count."""
    with options.connect() as client:
        info = get_session(client, session)
    summary = session_summary(info)
    if as_json:
        echo_json(summary)
        return
    metadata = summary.pop("metadata")
    rows = [[key, str(value)] for key, value in summary.items()]
    rows += [[f"metadata.{key}", value] for key, value in metadata.items()]
    table(["field", "value"], rows)


@sessions.command("delete")
@click.argument("session")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_options
def delete_session(options: ConnectOptions, session: str, yes: bool) -> None:
    """Delete a session and all its variables (asks first unless --yes)."""
    with options.connect() as client:
        info = get_session(client, session)
        if not yes:
            question = f"Delete session {session} and its {info.variable_count} variable(s)?"
            try:
                confirmed = click.confirm(question, err=True)
            except click.Abort:  # end of input or Ctrl-C at the prompt
                confirmed = False
            if not confirmed:
                raise CliError(f"session {session} not deleted (pass --yes to skip the question)")
        if not client.delete_session(session):
            raise CliError(f"Session not found: {session}", ExitCode.NOT_FOUND)
    click.echo(f"deleted session {session}")
