"""Frontends for tests: in-process (own event loop thread) or as separate OS processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import subprocess
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from bridge_server.app import BridgeServer
from bridge_server.config import Settings

T = TypeVar("T")


class InProcessFrontend:
    """A real gRPC frontend on an ephemeral port, served from a background event loop."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="frontend-loop", daemon=True)
        self._thread.start()
        self.server: BridgeServer = self.run(self._build(settings))
        self.port = self.run(self.server.start())
        self.target = f"127.0.0.1:{self.port}"
        self._stopped = False

    @staticmethod
    async def _build(settings: Settings) -> BridgeServer:
        return BridgeServer(settings)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the frontend's loop and wait for its result."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def stop(self, grace: float | None = 0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.run(self.server.stop(grace))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


_LISTENING = re.compile(r"listening on [^ ]+:(\d+)")


class FrontendProcess:
    """`python -m bridge_server` as its own OS process, on an ephemeral port."""

    def __init__(self, redis_url: str | None, *extra_args: str) -> None:
        args = [sys.executable, "-m", "bridge_server", "--host", "127.0.0.1", "--port", "0", *extra_args]
        if redis_url:
            args += ["--redis-url", redis_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.port = self._read_port()
        self.target = f"127.0.0.1:{self.port}"
        # Keep draining the log so the process never blocks on a full pipe.
        self.log: list[str] = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _read_port(self) -> int:
        assert self.process.stderr is not None
        seen = []
        for line in self.process.stderr:
            seen.append(line)
            if match := _LISTENING.search(line):
                return int(match.group(1))
        raise RuntimeError("frontend process exited before listening:\n" + "".join(seen))

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM (graceful shutdown); returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout)
        self._close_log()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        self._drainer.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
