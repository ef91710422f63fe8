"""The Unified Bridge gRPC frontend: stateless, every byte of state lives in Redis."""

from bridge_server.grpc_experiments import prefer_measured_experiments

prefer_measured_experiments()  # before anything imports grpc

from bridge_server.config import Settings  # noqa: E402

__all__ = ["Settings"]
