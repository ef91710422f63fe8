"""The Unified Bridge gRPC frontend: stateless, every byte of state lives in Redis."""

from bridge_server.config import Settings

__all__ = ["Settings"]
