"""In-process frontends for tests (own event loop thread); OS processes come from bridge_server.testing."""

from __future__ import annotations

import asyncio
import concurrent.futures
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
