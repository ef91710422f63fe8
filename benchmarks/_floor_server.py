"""The floor of a frontend: the same gRPC service, server settings and Redis client, doing only the
Redis command each call needs and nothing of the frontend's own work.

`python -m benchmarks._floor_server REDIS_URL` registers one integer variable `x` in a session of its
own (through the real store, untimed), logs "listening on 127.0.0.1:PORT ..." on stderr, and serves
the UnifiedBridge service's:

- `GetVariable`: one HGET of the variable's value; the reply is the variable as read at start.
- `SetVariable`: the frontend's real update script (EVALSHA of set_variables.lua, through the same
  script wrapper) with the request's integer value; the reply is built from the script's answer.

A frontend's GetVariable / SetVariable divided by these is what the frontend's own code costs
(validation, definition lookup, conversion, errors, metrics), against the same transport and storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

import grpc

from bridge_server.app import server_options
from bridge_server.config import Settings
from bridge_server.contracts import SetVariablesArgs, set_items
from bridge_server.convert import variable_to_proto
from bridge_server.scripts import flags_supported, load_scripts, preload_scripts
from bridge_server.storage import connect_storage
from bridge_server.store import VariableStore
from unified_bridge._codec import encode_value
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.types import VariableType

__all__ = ["FLOOR_SESSION", "FLOOR_VARIABLE"]

FLOOR_SESSION = "bench_floor"
FLOOR_VARIABLE = "x"

log = logging.getLogger("benchmarks.floor_server")


class FloorServicer:
    def __init__(self, redis: Any, settings: Settings, scripts: Any, reply: pb.Variable) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = VariableStore(redis, settings).keys(FLOOR_SESSION)
        self._id = reply.id
        self._value_field = reply.id  # the variable's record (bridge_server/records.py)
        self._reply = reply
        self._log_length = settings.change_log_length
        self._event_budget = settings.max_message_bytes // 2

    async def GetVariable(
        self, request: pb.GetVariableRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Variable:
        await self._redis.hget(self._keys.vars, self._value_field)
        return self._reply

    async def SetVariable(
        self, request: pb.SetVariableRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SetVariableResponse:
        encoded = encode_value(VariableType.INTEGER, request.value.integer_value)
        reply = await self._scripts.set_variables(
            self._keys,
            # No touch: the frontend refreshes a session's TTL only when due, not on every write.
            SetVariablesArgs(
                int(time.time() * 1000),
                1,
                self._log_length,
                self._event_budget,
                0,
                "",
                set_items([(self._id, None, encoded)]),
            ),
        )
        revision, _ttl, _status, version = reply.values[:4]
        return pb.SetVariableResponse(id=self._id, version=int(version), revision=int(revision))


async def _serve(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url)
    redis = connect_storage(settings)
    store = VariableStore(redis, settings)
    await store.preload_scripts()
    with contextlib.suppress(Exception):
        await store.delete_session(FLOOR_SESSION)
    await store.create_session(FLOOR_SESSION, None, None)
    await store.register(FLOOR_SESSION, FLOOR_VARIABLE, VariableType.INTEGER, lambda _: 0, {}, {}, "")
    reply = variable_to_proto(await store.get(FLOOR_SESSION, FLOOR_VARIABLE))
    scripts = load_scripts(redis, flags=await flags_supported(redis), log_max_bytes=settings.change_log_bytes)
    await preload_scripts(redis, scripts)

    server = grpc.aio.server(options=server_options(settings))
    floor = FloorServicer(redis, settings, scripts, reply)
    handlers = {
        "GetVariable": grpc.unary_unary_rpc_method_handler(
            floor.GetVariable,
            request_deserializer=pb.GetVariableRequest.FromString,
            response_serializer=pb.Variable.SerializeToString,
        ),
        "SetVariable": grpc.unary_unary_rpc_method_handler(
            floor.SetVariable,
            request_deserializer=pb.SetVariableRequest.FromString,
            response_serializer=pb.SetVariableResponse.SerializeToString,
        ),
    }
    service = pb.DESCRIPTOR.services_by_name["UnifiedBridge"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    log.info("listening on 127.0.0.1:%d (floor of session %s)", port, FLOOR_SESSION)
    await server.wait_for_termination()


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
