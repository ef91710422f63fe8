"""``bridge``: the command line of Unified Bridge, built on the SDK (``pip install unified-bridge``).

    bridge sessions list [--limit N]          bridge vars list SESSION [--pattern GLOB]
    bridge sessions show SESSION              bridge vars get SESSION NAME
    bridge sessions delete SESSION [--yes]    bridge vars set SESSION NAME VALUE [--if-version V]
    bridge watch SESSION [--json]             bridge vars delete SESSION NAME
    bridge export SESSION > file.json         bridge import file.json [--session NEW_ID]
    bridge health [--service NAME]            bridge --version

Global options (before the command): ``--target`` (``BRIDGE_TARGET``, default ``127.0.0.1:50051``),
``--token`` (``BRIDGE_TOKEN``), ``--timeout`` (``BRIDGE_TIMEOUT``), ``--tls`` / ``--tls-ca`` /
``--tls-cert`` / ``--tls-key`` (``BRIDGE_TLS``, ``BRIDGE_TLS_CA``, ...). Reading commands take
``--json``. An expected error is one line on stderr, ``bridge: error: <message>``, and an exit code:

    ====  ==========================================================================
    0     success (also: ``bridge import`` of a session already imported from the same file;
          ``bridge watch`` ended by Ctrl-C, SIGTERM or the session's deletion)
    1     any other error; ``sessions delete`` not confirmed
    2     bad usage, a value the variable's type or constraints refuse, a bad export file
    3     no such session or variable
    4     unavailable: no frontend answered in time, Redis unreachable, health not SERVING
    5     authentication: missing or refused token
    6     conflict: the session exists with other content, a ``--if-version`` mismatch
    7     a limit of the frontend was reached (value size, variables per session, ...)
    130   interrupted (Ctrl-C)
    ====  ==========================================================================
"""

from unified_bridge.cli._app import cli, main
from unified_bridge.cli._errors import ExitCode

__all__ = ["ExitCode", "cli", "main"]
