"""`bridge-server` / `python -m bridge_server`: run one frontend.

Startup failures (a bad flag, a port in use, an unknown log level, an unusable TLS file) are one
line on stderr and exit code 2 (bad settings) or 1 (could not start), never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from unified_bridge import __version__


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--version" in arguments:
        print(f"bridge-server {__version__}")
        return 0
    try:
        from bridge_server.app import TlsFileError, serve
        from bridge_server.config import Settings
        from bridge_server.logs import configure_logging
    except ImportError as exc:  # the SDK alone is installed
        print(
            f"bridge-server: the frontend's dependencies are missing ({exc}): "
            "pip install 'unified-bridge[server]'",
            file=sys.stderr,
        )
        return 2
    try:
        settings = Settings.from_args(arguments)
    except ValueError as exc:
        print(f"bridge-server: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings))
    except TlsFileError as exc:  # a certificate or key that cannot be read or used is a bad setting
        print(f"bridge-server: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the address is not this host's, ...
        print(f"bridge-server: cannot start on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
