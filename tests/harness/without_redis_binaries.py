"""A pytest plugin that hides redis-server and redis-cli, to exercise the harness's last resort.

`make test-fallback` runs the suite with it: the tests then run on fakeredis's TCP server, and every
test that needs real Redis behaviour must skip, saying why.
"""

from __future__ import annotations

import shutil
from typing import Any

_which = shutil.which


def _which_without_redis(cmd: Any, *args: Any, **kwargs: Any) -> str | None:
    if str(cmd).startswith("redis-"):
        return None
    return _which(cmd, *args, **kwargs)


shutil.which = _which_without_redis  # type: ignore[assignment]
