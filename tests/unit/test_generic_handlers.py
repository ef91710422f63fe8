"""A service added through GenericHandlersOnly is served by its generic handler alone (health and
reflection answering through it: tests/integration/test_frontends.py)."""

from typing import Any

from grpc_health.v1 import health, health_pb2_grpc

from bridge_server.generic_handlers import GenericHandlersOnly
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


class RecordingServer:
    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service_name: str, handlers: Any) -> None:
        self.registered.append(service_name)


def test_generated_adders_leave_the_generic_handlers_and_register_no_method():
    server = RecordingServer()
    view: Any = GenericHandlersOnly(server)  # type: ignore[arg-type]
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), view)
    pb_grpc.add_UnifiedBridgeServicer_to_server(pb_grpc.UnifiedBridgeServicer(), view)
    assert [handler.service_name() for handler in server.generic] == [
        "grpc.health.v1.Health",
        "unified_bridge.v1.UnifiedBridge",
    ]
    assert server.registered == []
