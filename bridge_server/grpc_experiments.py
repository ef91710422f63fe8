"""The gRPC core experiments a frontend runs with, chosen by measurement (imports nothing of grpc).

gRPC reads ``GRPC_EXPERIMENTS`` once, when its core starts, so the choice must be made before the
first ``import grpc``; importing :mod:`bridge_server` does it. With the event-engine experiments
off, a frontend used ~17 % less CPU per GetVariable and SetVariable and answered sooner, and so did
the floor server, in three alternations of ``python -m benchmarks.grpc_experiments`` (see
docs/benchmarks.md). An operator's own ``GRPC_EXPERIMENTS`` (even empty: gRPC's defaults) wins.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["EVENT_ENGINE_OFF", "prefer_measured_experiments"]

EVENT_ENGINE_OFF: Final = (
    "-event_engine_client,-event_engine_listener,"
    "-event_engine_for_all_other_endpoints,-event_engine_callback_cq"
)


def prefer_measured_experiments() -> None:
    """Unless ``GRPC_EXPERIMENTS`` is set, turn the event-engine experiments off (before grpc loads)."""
    os.environ.setdefault("GRPC_EXPERIMENTS", EVENT_ENGINE_OFF)
