"""`bridge-server` / `python -m bridge_server`: run one frontend."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from bridge_server.app import serve
from bridge_server.config import Settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_args(argv)
    except ValueError as exc:
        print(f"bridge-server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
