"""``bridge vars list | get | set | delete``."""

from __future__ import annotations

from typing import Any

import click

from unified_bridge.cli._errors import CliError, ExitCode
from unified_bridge.cli._format import variable_document
from unified_bridge.cli._options import ConnectOptions, pass_options
from unified_bridge.cli._output import echo_json, json_option, json_value, shown_value, table, to_json
from unified_bridge.cli._remote import get_session, open_session
from unified_bridge.cli._values import parse_value
from unified_bridge.errors import ValidationError

__all__ = ["variables"]


@click.group("vars")
def variables() -> None:
    """Read and write the variables of a session."""


@variables.command("list")
@click.argument("session")
@click.option("--pattern", help="Only names matching this glob, e.g. 'model.*'.")
@json_option
@pass_options
def list_variables(options: ConnectOptions, session: str, pattern: str | None, as_json: bool) -> None:
    """The session's variables, sorted by name: name, type, version and value."""
    with options.connect() as client, open_session(client, get_session(client, session)) as ctx:
        listed = ctx.list_variables(pattern)
    if as_json:
        echo_json([variable_document(v) for v in listed])
        return
    rows = [
        [v["name"], str(v["type"]), str(v["version"]), shown_value(v["value"], v["type"])] for v in listed
    ]
    table(["NAME", "TYPE", "VERSION", "VALUE"], rows)


@variables.command("get")
@click.argument("session")
@click.argument("name")
@json_option
@pass_options
def get_variable(options: ConnectOptions, session: str, name: str, as_json: bool) -> None:
    """The variable's value (strings bare, other types as JSON); --json: everything about it."""
    with options.connect() as client, open_session(client, get_session(client, session)) as ctx:
        info = ctx.get_variable_info(name)
    if as_json:
        echo_json(variable_document(info))
    else:
        click.echo(shown_value(info["value"], info["type"]))


def _describe(info: dict[str, Any]) -> str:
    constraints = ", ".join(
        f"{key} {to_json(json_value(value))}" for key, value in sorted(info["constraints"].items())
    )
    return f"{info['name']} ({info['type']}{': ' + constraints if constraints else ''})"


# ignore_unknown_options: a negative VALUE ("-1") is a value, not an option.
@variables.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("session")
@click.argument("name")
@click.argument("value")
@click.option(
    "--if-version",
    type=click.IntRange(min=0),
    help="Write only if the variable is still at this version (else exit 6).",
)
@pass_options
def set_variable(
    options: ConnectOptions, session: str, name: str, value: str, if_version: int | None
) -> None:
    """Set a variable; VALUE is read as the variable's declared type.

    \b
    float      0.5, 1e-3, nan, inf
    integer    42
    boolean    true | false
    string, choice, module: the text as it is
    embedding  JSON list: '[0.1, 0.2]'
    tensor     JSON: '[[1, 2], [3, 4]]' or '{"shape": [2, 2], "values": [1, 2, 3, 4]}'
    """
    with options.connect() as client, open_session(client, get_session(client, session)) as ctx:
        info = ctx.get_variable_info(name)
        try:
            parsed = parse_value(info["type"], value, info["constraints"])
        except ValidationError as exc:
            raise CliError(f"bad value for {_describe(info)}: {exc}", ExitCode.USAGE) from None
        version = ctx.update_variable(info["id"], parsed, expected_version=if_version)
    click.echo(f"{name} = {shown_value(parsed, info['type'])} (version {version})")


@variables.command("delete")
@click.argument("session")
@click.argument("name")
@pass_options
def delete_variable(options: ConnectOptions, session: str, name: str) -> None:
    """Delete one variable."""
    with options.connect() as client, open_session(client, get_session(client, session)) as ctx:
        ctx.delete_variable(name)
    click.echo(f"deleted {name} from session {session}")
