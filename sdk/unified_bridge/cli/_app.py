"""The ``bridge`` command group: global options, ``--version``, and errors turned into exit codes."""

from __future__ import annotations

from typing import Any

import click

import unified_bridge
from unified_bridge.cli._errors import ExitCode, fail
from unified_bridge.cli._health import health
from unified_bridge.cli._options import ConnectOptions, global_options
from unified_bridge.cli._sessions import sessions
from unified_bridge.cli._transfer import export_session, import_session
from unified_bridge.cli._vars import variables
from unified_bridge.cli._watch import watch
from unified_bridge.errors import BridgeError, BridgeUnavailableError

__all__ = ["cli", "main"]


class _BridgeGroup(click.Group):
    """Turns the SDK's errors into one line on stderr and a documented exit code, and Ctrl-C into
    130, here rather than in ``main()``, so that click's test runner sees what a shell sees."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BridgeUnavailableError as exc:
            target = ctx.obj.target if isinstance(ctx.obj, ConnectOptions) else "?"
            raise fail(exc, f"the bridge at {target} is unavailable") from None
        except BridgeError as exc:
            raise fail(exc) from None
        except KeyboardInterrupt:
            click.echo("bridge: interrupted", err=True)
            raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None


@click.group(cls=_BridgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(
    unified_bridge.__version__, "--version", prog_name="bridge", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(
    ctx: click.Context,
    target: str,
    token: str | None,
    timeout: float,
    tls: bool,
    tls_ca: Any,
    tls_cert: Any,
    tls_key: Any,
) -> None:
    """Inspect and operate a Unified Bridge: sessions, variables, change streams, export and import.

    \b
    Exit codes: 0 ok, 1 error, 2 bad usage or value, 3 not found, 4 unavailable,
    5 authentication, 6 conflict / already exists, 7 limit exceeded, 130 interrupted.
    """
    ctx.obj = ConnectOptions(target, token or None, timeout, tls, tls_ca, tls_cert, tls_key)


cli.add_command(sessions)
cli.add_command(variables)
cli.add_command(watch)
cli.add_command(export_session)
cli.add_command(import_session)
cli.add_command(health)


def main() -> None:
    """The ``bridge`` console script."""
    cli(prog_name="bridge")
