"""The transport floor: a bare grpc.aio server on the same grpcio stack as the frontend.

`python -m benchmarks._echo_server` listens on a free loopback port and logs "listening on
127.0.0.1:PORT" on stderr. Generic handlers with bytes in and out, so no proto is needed:

- `/bench.Echo/Unary`: returns the request bytes.
- `/bench.Echo/Push`: the request is an ASCII count and gap in microseconds ("200 2000"); the server
  streams that many messages, each carrying `time.time_ns()` at send as 8 big-endian bytes, so the
  client can compute one-way push latency (both processes read the same system clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import sys
import time
from collections.abc import AsyncIterator

import grpc

SERVICE = "bench.Echo"
UNARY_METHOD = f"/{SERVICE}/Unary"
PUSH_METHOD = f"/{SERVICE}/Push"

log = logging.getLogger("benchmarks.echo_server")


def identity(data: bytes) -> bytes:
    """The (de)serializer of raw bytes messages, shared with the client side in baselines."""
    return data


async def _unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _push(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
    count, gap_us = (int(part) for part in request.decode().split())
    for _ in range(count):
        await asyncio.sleep(gap_us / 1e6)
        yield struct.pack(">q", time.time_ns())


async def _serve() -> None:
    server = grpc.aio.server()
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(
            _unary, request_deserializer=identity, response_serializer=identity
        ),
        "Push": grpc.unary_stream_rpc_method_handler(
            _push, request_deserializer=identity, response_serializer=identity
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    log.info("listening on 127.0.0.1:%d", port)
    await server.wait_for_termination()


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
