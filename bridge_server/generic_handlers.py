"""A grpc.aio server seen as one that takes generic handlers only.

Generated ``add_*Servicer_to_server`` functions (grpcio-health-checking's, grpcio-reflection's, and
our own generated one, which the frontend replaces with `bridge_server.handlers.add_servicer`) add a
service twice: as a generic handler, and as registered methods. A grpc.aio server keeps one
pending request per registered method and waits on all of them (``asyncio.wait``) for every call it
accepts, which cost a GetVariable ~13 us more frontend CPU (3 %, lower in 7 of 7 interleaved
rounds, grpcio 1.85 with 25 methods) than the generic lookup that registration saves. Through
:class:`GenericHandlersOnly` a service is served by its generic handler alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

__all__ = ["GenericHandlersOnly"]


class GenericHandlersOnly:
    """The part of a ``grpc.aio.Server`` that generated ``add_*Servicer_to_server`` functions use,
    keeping the generic handlers and dropping the same methods' registration."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Nothing: the service's generic handler, added just before, serves these methods."""
